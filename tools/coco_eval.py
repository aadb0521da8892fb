#!/usr/bin/python3
"""Independent COCO box mAP evaluator (numpy only; no pycocotools).

    /usr/bin/python3 tools/coco_eval.py GT.json DETS.json [--per-image]

GT.json is a COCO instances file (images, annotations, categories).
DETS.json is a COCO results list [{"image_id", "category_id", "bbox":
[x, y, w, h], "score"}, ...] (a dict with an "annotations" list is accepted
too). Prints one JSON object:

  map      AP averaged over IoU .50:.05:.95 (pycocotools stats[0])
  map50    AP at IoU .50                    (stats[1])
  map75    AP at IoU .75                    (stats[2])
  map_small / map_medium / map_large        (stats[3..5])
  mar1 / mar10 / mar100                     (stats[6..8])
  mar_small / mar_medium / mar_large        (stats[9..11])
  per_class  {name: {category_id, ap, ap50, ap75, recall, recall50,
                     num_gt, num_dets}}
             ap* = AP of that class (area all, maxDets 100), recall = mean
             over the 10 IoU thresholds of the final recall (area all,
             maxDets 100), recall50 = that recall at IoU .50; -1 where the
             class has no non-ignored ground truth (as pycocotools).
  stats    the 12 numbers in pycocotools' order
  num_images, num_gt, num_dets

What it implements, following pycocotools' COCOeval (iouType "bbox") step
by step:

* Parameters: imgIds = all GT image ids sorted; catIds = all GT category
  ids sorted; iouThrs = np.linspace(.5, .95, 10); recThrs =
  np.linspace(0, 1, 101) (numpy's values, e.g. recThrs[i] is not always
  bit-equal to i/100); maxDets [1, 10, 100]; areaRng all [0, 1e10],
  small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10] (inclusive
  bounds on both ends, as pycocotools' comparisons).
* Detections: area = w*h of the box; iscrowd 0. GT: "ignore" = iscrowd
  (pycocotools overwrites any "ignore" field with iscrowd); a GT is ignored
  in an area range when ignore or its "area" field is outside the range.
* Per image and category: detections sorted by score, descending, stable
  (mergesort: ties keep file order), cut to maxDets[-1] = 100 *per image and
  category* (pycocotools' behaviour, not per image); GT sorted non-ignored
  first (stable).
* IoU: box IoU without the +1 pixel convention; against a crowd GT the
  union is the detection's area (intersection / area(det)).
* Greedy matching per IoU threshold t in score order: each detection takes
  the not-yet-matched GT (crowd GTs may be matched repeatedly) with the
  highest IoU >= t (a later GT with an equal IoU wins, as in pycocotools'
  "< iou: continue" test); once it holds a non-ignored GT it stops at the
  first ignored one. A detection matched to an ignored GT is ignored; an
  unmatched detection whose area is outside the area range is ignored.
* Accumulation per category / area / maxDet: every image's first maxDet
  detections concatenated in image-id order, stable-sorted by score; TP /
  FP cumulative sums; recall = tp / #non-ignored GT; precision = tp / (tp +
  fp + eps) made monotone from the right; precision sampled at the 101
  recall thresholds with searchsorted(side="left"), 0 past the last
  reached recall. A category with no non-ignored GT gets -1 and is left
  out of the means.

Deviations from pycocotools (none change the numbers for valid input):
* pycocotools records matches by GT annotation id, so a GT whose "id" is 0
  is silently counted as unmatched; here matches are booleans, so id 0 is
  not special.
* A GT annotation without "area" uses w*h here (pycocotools raises
  KeyError); one without "iscrowd" counts as not crowd (same as
  pycocotools).
* Detections on image ids absent from the GT raise an error (pycocotools
  asserts too); detections of category ids absent from the GT are
  ignored (not evaluated), as pycocotools.
* Against a crowd GT whose detection has zero area pycocotools' C code
  divides by zero; here that IoU is 0.
"""

import argparse
import json
import sys

import numpy as np

IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = [1, 10, 100]
AREA_RNG = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
AREA_LBL = ["all", "small", "medium", "large"]


def box_iou_xywh(d, g, crowd):
    """IoU matrix (len(d) x len(g)) of xywh boxes; crowd: bool per GT."""
    d = np.asarray(d, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(g, dtype=np.float64).reshape(-1, 4)
    if len(d) == 0 or len(g) == 0:
        return np.zeros((len(d), len(g)))
    iw = (np.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
          - np.maximum(d[:, None, 0], g[None, :, 0]))
    ih = (np.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
          - np.maximum(d[:, None, 1], g[None, :, 1]))
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    da = (d[:, 2] * d[:, 3])[:, None]
    ga = (g[:, 2] * g[:, 3])[None, :]
    union = np.where(np.asarray(crowd, dtype=bool)[None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def _load(x):
    if isinstance(x, (dict, list)):
        return x
    with open(x) as f:
        return json.load(f)


def evaluate_image(gts, dts, area_rng, max_det):
    """pycocotools' evaluateImg for one image / category / area range.

    gts: list of dicts with bbox, area, iscrowd; dts: list of dicts with
    bbox, score (any order). Returns None or a dict of numpy arrays.
    """
    if not gts and not dts:
        return None
    g_ignore = np.array([1 if (int(bool(g.get("iscrowd", 0))) or g["_area"] < area_rng[0]
                               or g["_area"] > area_rng[1]) else 0 for g in gts], dtype=np.int64)
    gtind = np.argsort(g_ignore, kind="mergesort")
    gts = [gts[i] for i in gtind]
    g_ignore = g_ignore[gtind]
    dtind = np.argsort([-d["score"] for d in dts], kind="mergesort")
    dts = [dts[i] for i in dtind[0:max_det]]
    crowd = [int(bool(g.get("iscrowd", 0))) for g in gts]
    ious = box_iou_xywh([d["bbox"] for d in dts], [g["bbox"] for g in gts], crowd)
    T, G, D = len(IOU_THRS), len(gts), len(dts)
    gtm = np.zeros((T, G), dtype=bool)
    dtm = np.zeros((T, D), dtype=bool)
    dt_ig = np.zeros((T, D), dtype=bool)
    if G and D:
        for tind, t in enumerate(IOU_THRS):
            for dind in range(D):
                iou = min([t, 1 - 1e-10])
                m = -1
                for gind in range(G):
                    if gtm[tind, gind] and not crowd[gind]:
                        continue
                    if m > -1 and g_ignore[m] == 0 and g_ignore[gind] == 1:
                        break
                    if ious[dind, gind] < iou:
                        continue
                    iou = ious[dind, gind]
                    m = gind
                if m == -1:
                    continue
                dt_ig[tind, dind] = bool(g_ignore[m])
                dtm[tind, dind] = True
                gtm[tind, m] = True
    d_area = np.array([d["bbox"][2] * d["bbox"][3] for d in dts], dtype=np.float64)
    out_rng = (d_area < area_rng[0]) | (d_area > area_rng[1])
    dt_ig = dt_ig | (~dtm & out_rng[None, :])
    return {
        "dtMatches": dtm,
        "dtScores": np.array([d["score"] for d in dts], dtype=np.float64),
        "gtIgnore": g_ignore.astype(bool),
        "dtIgnore": dt_ig,
    }


def accumulate(evals, num_cats):
    """evals[k][a] = list over images (id order) of evaluate_image results."""
    T, R, K, A, M = len(IOU_THRS), len(REC_THRS), num_cats, len(AREA_RNG), len(MAX_DETS)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k in range(K):
        for a in range(A):
            E = [e for e in evals[k][a] if e is not None]
            if not E:
                continue
            for m, max_det in enumerate(MAX_DETS):
                dt_scores = np.concatenate([e["dtScores"][0:max_det] for e in E])
                inds = np.argsort(-dt_scores, kind="mergesort")
                dtm = np.concatenate([e["dtMatches"][:, 0:max_det] for e in E], axis=1)[:, inds]
                dt_ig = np.concatenate([e["dtIgnore"][:, 0:max_det] for e in E], axis=1)[:, inds]
                gt_ig = np.concatenate([e["gtIgnore"] for e in E])
                npig = np.count_nonzero(gt_ig == 0)
                if npig == 0:
                    continue
                tps = np.logical_and(dtm, np.logical_not(dt_ig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                    tp = np.array(tp)
                    fp = np.array(fp)
                    nd = len(tp)
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    q = np.zeros((R,))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    pr = pr.tolist()
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    ridx = np.searchsorted(rc, REC_THRS, side="left")
                    for ri, pi in enumerate(ridx):
                        if pi >= nd:
                            break
                        q[ri] = pr[pi]
                    precision[t, :, k, a, m] = q
    return precision, recall


def _mean_valid(x):
    x = x[x > -1]
    return float(np.mean(x)) if x.size else -1.0


def summarize(precision, recall):
    """pycocotools' 12 bbox stats."""
    def ap(iou=None, area="all", max_det=100):
        a = AREA_LBL.index(area)
        m = MAX_DETS.index(max_det)
        s = precision[:, :, :, a, m]
        if iou is not None:
            s = s[np.where(iou == IOU_THRS)[0]]
        return _mean_valid(s)

    def ar(area="all", max_det=100):
        a = AREA_LBL.index(area)
        m = MAX_DETS.index(max_det)
        return _mean_valid(recall[:, :, a, m])

    return [ap(), ap(iou=.5), ap(iou=.75), ap(area="small"), ap(area="medium"),
            ap(area="large"), ar(max_det=1), ar(max_det=10), ar(), ar(area="small"),
            ar(area="medium"), ar(area="large")]


def evaluate(gt, dets):
    """gt: COCO dict or path; dets: results list / dict / path. Returns dict."""
    gt = _load(gt)
    dets = _load(dets)
    if isinstance(dets, dict):
        dets = dets.get("annotations", [])
    img_ids = sorted(im["id"] for im in gt["images"])
    img_set = set(img_ids)
    cats = sorted(gt.get("categories", []), key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    cat_names = {c["id"]: c.get("name", str(c["id"])) for c in cats}
    gts_by = {}
    for g in gt.get("annotations", []):
        g = dict(g)
        g["_area"] = float(g["area"]) if "area" in g else float(g["bbox"][2] * g["bbox"][3])
        gts_by.setdefault((g["image_id"], g["category_id"]), []).append(g)
    dts_by = {}
    for d in dets:
        if d["image_id"] not in img_set:
            raise ValueError("detection on image_id %r, which is not in the ground truth"
                             % (d["image_id"],))
        dts_by.setdefault((d["image_id"], d["category_id"]), []).append(d)
    max_det = MAX_DETS[-1]
    evals = []
    for c in cat_ids:
        per_area = []
        for rng in AREA_RNG:
            per_area.append([evaluate_image(gts_by.get((i, c), []), dts_by.get((i, c), []),
                                            rng, max_det) for i in img_ids])
        evals.append(per_area)
    precision, recall = accumulate(evals, len(cat_ids))
    stats = summarize(precision, recall)
    per_class = {}
    t50 = int(np.where(IOU_THRS == .5)[0][0])
    t75 = int(np.where(IOU_THRS == .75)[0][0])
    for k, c in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        r = recall[:, k, 0, -1]
        per_class[cat_names[c]] = {
            "category_id": c,
            "ap": _mean_valid(p),
            "ap50": _mean_valid(p[t50]),
            "ap75": _mean_valid(p[t75]),
            "recall": _mean_valid(r),
            "recall50": float(r[t50]),
            "num_gt": sum(len(v) for (i, cc), v in gts_by.items() if cc == c),
            "num_dets": sum(len(v) for (i, cc), v in dts_by.items() if cc == c),
        }
    keys = ["map", "map50", "map75", "map_small", "map_medium", "map_large",
            "mar1", "mar10", "mar100", "mar_small", "mar_medium", "mar_large"]
    res = dict(zip(keys, stats))
    res["per_class"] = per_class
    res["stats"] = stats
    res["num_images"] = len(img_ids)
    res["num_gt"] = sum(len(v) for v in gts_by.values())
    res["num_dets"] = len(dets)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt", help="COCO ground-truth JSON")
    ap.add_argument("dets", help="COCO results JSON (list of detections)")
    ap.add_argument("--indent", type=int, default=1)
    args = ap.parse_args(argv)
    res = evaluate(args.gt, args.dets)
    json.dump(res, sys.stdout, indent=args.indent if args.indent > 0 else None)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
