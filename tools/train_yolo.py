#!/usr/bin/python3
"""Train a small YOLO-style single-stage detector and a crop classifier.

    /usr/bin/python3 tools/train_yolo.py --data /tmp/qs-data --out tools/weights \\
        [--epochs E] [--threads 1] [--crops-epochs E] [--skip-yolo] [--skip-crops]

YOLO part (anchor-free, YOLOv5-like box parametrisation):
  net: conv-BN-ReLU backbone (strides 8/16/32) + top-down FPN neck + one
  3x3 conv + 1x1 prediction conv per level, 5 + C raw channels per cell
  (tx, ty, tw, th, objectness, C class logits). The exported modules add a
  fixed decode of every cell (sigmoid, grid offset, stride scaling) but no
  thresholding and no NMS; see demo_yolo.json ("output") for the exact
  meaning of every value. Losses: 1 - GIoU for boxes, BCE for objectness
  (target = IoU of the positive's box, YOLOv5 style) and classes; each
  object is assigned to one level by its size and to its centre cell plus
  the two nearest neighbour cells.

  demo_yolo_v5.pt          [N, 2100, 5 + C]
  demo_yolo_v8.pt          [N, 4 + C, 2100]
  demo_yolo_v5_int8_fx.pt / demo_yolo_v8_int8_fx.pt
                           net FX-quantized (onednn PTQ, 32 train images),
                           decode float
  demo_yolo.json           output layout, decoding recipe, training log,
                           test mAP of float and int8
  demo_yolo_loss.png       loss curves
  (+ a make_models-style sidecar X.json for every X.pt)

Crop classifier part: 64x64 crops (box enlarged by 15%, made square,
resized) of the 4 classes cut from the train split (objects with occlusion
< 0.4), make_models.DemoCNN architecture with 4 outputs, evaluated on crops
from the test split:
  demo_crops_float.pt, demo_crops_int8_fx.pt (FX PTQ), demo_crops.json
  images/crop_<class>.png  one reference crop per class (test split)

Inputs: 1 x 3 x 320 x 320 (YOLO) or N x 3 x 64 x 64 (crops) float RGB in
[0, 1], no mean/std normalisation.
"""

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import coco_eval  # noqa: E402
import det_common as dc  # noqa: E402
import make_models as mm  # noqa: E402

CLASS_NAMES = ["car", "pedestrian", "round_sign", "triangle_sign"]
NC = len(CLASS_NAMES)
SIZE = 320
STRIDES = (8, 16, 32)
BASE_MULT = 4.0            # box size base of a level = BASE_MULT * stride
LEVEL_MAX_SIDE = (40.0, 80.0)   # objects with max side <= 40 -> P3, <= 80 -> P4, else P5
OBJ_BALANCE = (4.0, 1.0, 0.4)
CONF_THRESH = 0.001
NMS_IOU = 0.6
MAX_DET = 100


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def cbr(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class YoloNet(nn.Module):
    """Raw prediction maps only: tuple of 3 tensors [N, 5 + C, H/s, W/s]."""

    def __init__(self, nc=NC, widths=(16, 32, 64, 96, 128), neck=64):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(cbr(3, w0, 3, 2), cbr(w0, w1, 3, 2))                # /4
        self.c3 = nn.Sequential(cbr(w1, w2, 3, 2), cbr(w2, w2))                       # /8
        self.c4 = nn.Sequential(cbr(w2, w3, 3, 2), cbr(w3, w3))                       # /16
        self.c5 = nn.Sequential(cbr(w3, w4, 3, 2), cbr(w4, w4))                       # /32
        self.lat3 = cbr(w2, neck, 1)
        self.lat4 = cbr(w3, neck, 1)
        self.lat5 = cbr(w4, neck, 1)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.out3 = cbr(neck, neck)
        self.out4 = cbr(neck, neck)
        self.out5 = cbr(neck, neck)
        self.pred3 = nn.Conv2d(neck, 5 + nc, 1)
        self.pred4 = nn.Conv2d(neck, 5 + nc, 1)
        self.pred5 = nn.Conv2d(neck, 5 + nc, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for p, s in zip((self.pred3, self.pred4, self.pred5), STRIDES):
            nn.init.normal_(p.weight, std=0.01)
            b = p.bias.data
            b.zero_()
            b[4] = math.log(8.0 / (SIZE / s) ** 2)          # objectness prior
            b[5:] = math.log(0.6 / (nc - 0.99))             # class prior

    def forward(self, x):
        x = self.stem(x)
        c3 = self.c3(x)
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p5 = self.lat5(c5)
        p4 = self.lat4(c4) + self.up(p5)
        p3 = self.lat3(c3) + self.up(p4)
        return (self.pred3(self.out3(p3)), self.pred4(self.out4(p4)),
                self.pred5(self.out5(p5)))


def make_grids(size=SIZE):
    """Per level: gx, gy (cell indices, row-major) and stride/base tensors."""
    gx, gy, st = [], [], []
    for s in STRIDES:
        n = size // s
        yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float32),
                                torch.arange(n, dtype=torch.float32), indexing="ij")
        gx.append(xx.reshape(-1))
        gy.append(yy.reshape(-1))
        st.append(torch.full((n * n,), float(s)))
    return torch.cat(gx), torch.cat(gy), torch.cat(st)


class YoloDecode(nn.Module):
    """Shared decode: raw maps -> (boxes cxcywh px [N,B,4], obj logit [N,B], cls logits [N,B,C])."""

    def __init__(self, size=SIZE):
        super().__init__()
        gx, gy, st = make_grids(size)
        self.register_buffer("gx", gx)
        self.register_buffer("gy", gy)
        self.register_buffer("stride", st)
        self.register_buffer("base", (st * BASE_MULT).unsqueeze(1))

    def forward(self, p3, p4, p5):
        n = p3.shape[0]
        raw = torch.cat([p3.reshape(n, p3.shape[1], -1), p4.reshape(n, p4.shape[1], -1),
                         p5.reshape(n, p5.shape[1], -1)], dim=2).permute(0, 2, 1)  # N,B,5+C
        xy = torch.sigmoid(raw[:, :, 0:2]) * 2.0 - 0.5
        cx = (xy[:, :, 0] + self.gx) * self.stride
        cy = (xy[:, :, 1] + self.gy) * self.stride
        wh = (torch.sigmoid(raw[:, :, 2:4]) * 2.0) ** 2 * self.base
        boxes = torch.stack([cx, cy, wh[:, :, 0], wh[:, :, 1]], dim=2)
        return boxes, raw[:, :, 4], raw[:, :, 5:]


class YoloV5Out(nn.Module):
    """[N, B, 5 + C]: cx, cy, w, h (px), sigmoid(obj), sigmoid(cls_i)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.decode = YoloDecode()

    def forward(self, x):
        p3, p4, p5 = self.net(x)
        boxes, obj, cls = self.decode(p3, p4, p5)
        return torch.cat([boxes, torch.sigmoid(obj).unsqueeze(2), torch.sigmoid(cls)], dim=2)


class YoloV8Out(nn.Module):
    """[N, 4 + C, B]: cx, cy, w, h (px), sigmoid(obj) * sigmoid(cls_i)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.decode = YoloDecode()

    def forward(self, x):
        p3, p4, p5 = self.net(x)
        boxes, obj, cls = self.decode(p3, p4, p5)
        scores = torch.sigmoid(obj).unsqueeze(2) * torch.sigmoid(cls)
        return torch.cat([boxes, scores], dim=2).permute(0, 2, 1)


# --------------------------------------------------------------------------
# Targets and loss
# --------------------------------------------------------------------------

def level_of(maxside):
    if maxside <= LEVEL_MAX_SIDE[0]:
        return 0
    if maxside <= LEVEL_MAX_SIDE[1]:
        return 1
    return 2


def build_targets(targets, size=SIZE):
    """Dense targets over all B cells of every image.

    Returns pos [N,B] bool, tbox [N,B,4] (cx,cy,w,h px), tcls [N,B] int64.
    Each GT goes to its level's centre cell and the two neighbours nearest
    to its centre; where GTs compete for a cell the smaller one wins.
    """
    offs, start = [], 0
    for s in STRIDES:
        offs.append(start)
        start += (size // s) ** 2
    B = start
    N = len(targets)
    pos = torch.zeros(N, B, dtype=torch.bool)
    tbox = torch.zeros(N, B, 4)
    tcls = torch.zeros(N, B, dtype=torch.int64)
    for i, t in enumerate(targets):
        b = t["boxes"]
        if len(b) == 0:
            continue
        wh = b[:, 2:] - b[:, :2]
        ctr = (b[:, :2] + b[:, 2:]) / 2
        area = wh[:, 0] * wh[:, 1]
        for j in torch.argsort(area, descending=True).tolist():
            lv = level_of(float(wh[j].max()))
            s = STRIDES[lv]
            n = size // s
            cx, cy = float(ctr[j, 0]) / s, float(ctr[j, 1]) / s
            gi, gj = min(int(cx), n - 1), min(int(cy), n - 1)
            cells = [(gi, gj)]
            fx, fy = cx - gi, cy - gj
            ni = gi - 1 if fx < 0.5 else gi + 1
            nj = gj - 1 if fy < 0.5 else gj + 1
            if 0 <= ni < n:
                cells.append((ni, gj))
            if 0 <= nj < n:
                cells.append((gi, nj))
            for ci, cj in cells:
                k = offs[lv] + cj * n + ci
                pos[i, k] = True
                tbox[i, k] = torch.tensor([float(ctr[j, 0]), float(ctr[j, 1]),
                                           float(wh[j, 0]), float(wh[j, 1])])
                tcls[i, k] = int(t["labels"][j]) - 1
    return pos, tbox, tcls


def giou_cxcywh(a, b):
    """GIoU and IoU of matching rows of two [K,4] cxcywh tensors."""
    ax1, ay1 = a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2
    ax2, ay2 = a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2
    bx1, by1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
    bx2, by2 = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    iw = (torch.min(ax2, bx2) - torch.max(ax1, bx1)).clamp(min=0)
    ih = (torch.min(ay2, by2) - torch.max(ay1, by1)).clamp(min=0)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter + 1e-7
    iou = inter / union
    cw = torch.max(ax2, bx2) - torch.min(ax1, bx1)
    ch = torch.max(ay2, by2) - torch.min(ay1, by1)
    carea = cw * ch + 1e-7
    return iou - (carea - union) / carea, iou


def level_slices(size=SIZE):
    out, start = [], 0
    for s in STRIDES:
        n = (size // s) ** 2
        out.append(slice(start, start + n))
        start += n
    return out


LEVELS = level_slices()


def yolo_loss(boxes, obj, cls, pos, tbox, tcls):
    if pos.any():
        giou, iou = giou_cxcywh(boxes[pos], tbox[pos])
        l_box = (1.0 - giou).mean()
        t_obj = torch.zeros_like(obj)
        t_obj[pos] = iou.detach().clamp(min=0)
        tc = torch.zeros_like(cls[pos])
        tc[torch.arange(tc.shape[0]), tcls[pos]] = 1.0
        l_cls = F.binary_cross_entropy_with_logits(cls[pos], tc)
    else:
        l_box = boxes.sum() * 0
        l_cls = cls.sum() * 0
        t_obj = torch.zeros_like(obj)
    l_obj = sum(w * F.binary_cross_entropy_with_logits(obj[:, sl], t_obj[:, sl])
                for w, sl in zip(OBJ_BALANCE, LEVELS))
    return {"box": l_box * 5.0, "obj": l_obj, "cls": l_cls}


# --------------------------------------------------------------------------
# Post-processing (the recipe written into demo_yolo.json)
# --------------------------------------------------------------------------

def postprocess_v5(out, conf=CONF_THRESH, iou=NMS_IOU, max_det=MAX_DET):
    """out: [N, B, 5 + C] -> list of (boxes xyxy, scores, labels 1..C)."""
    import torchvision
    res = []
    for o in out:
        scores = o[:, 4:5] * o[:, 5:]                       # B, C
        bi, ci = (scores > conf).nonzero(as_tuple=True)
        sc = scores[bi, ci]
        b = o[bi, :4]
        xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], dim=1)
        keep = torchvision.ops.batched_nms(xyxy, sc, ci, iou)[:max_det]
        res.append((xyxy[keep], sc[keep], ci[keep] + 1))
    return res


def postprocess_v8(out, conf=CONF_THRESH, iou=NMS_IOU, max_det=MAX_DET):
    """out: [N, 4 + C, B] -> same as postprocess_v5."""
    import torchvision
    res = []
    for o in out:
        o = o.t()                                            # B, 4 + C
        scores = o[:, 4:]
        bi, ci = (scores > conf).nonzero(as_tuple=True)
        sc = scores[bi, ci]
        b = o[bi, :4]
        xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], dim=1)
        keep = torchvision.ops.batched_nms(xyxy, sc, ci, iou)[:max_det]
        res.append((xyxy[keep], sc[keep], ci[keep] + 1))
    return res


def eval_yolo(model, post, imgs_u8, coco, ids, batch=16):
    t = time.time()
    model.eval()
    dets = []
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            out = model(dc.to_float01(imgs_u8[i:i + batch]))
            for (b, s, l), iid in zip(post(out), ids[i:i + batch]):
                dets += dc.xyxy_to_coco(b, s, l, iid)
    res = coco_eval.evaluate(coco, dets)
    res["seconds"] = round(time.time() - t, 1)
    return res, dets


def brief(res):
    return {"map": round(res["map"], 4), "map50": round(res["map50"], 4),
            "map75": round(res["map75"], 4), "mar100": round(res["mar100"], 4),
            "per_class_ap50": {k: round(v["ap50"], 4) for k, v in res["per_class"].items()},
            "per_class_ap": {k: round(v["ap"], 4) for k, v in res["per_class"].items()},
            "seconds": res.get("seconds")}


# --------------------------------------------------------------------------
# YOLO training
# --------------------------------------------------------------------------

def hflip(x, targets, flags):
    x = x.clone()
    out = []
    for i, (t, f) in enumerate(zip(targets, flags)):
        if f:
            x[i] = x[i].flip(-1)
            b = t["boxes"].clone()
            b[:, 0] = SIZE - t["boxes"][:, 2]
            b[:, 2] = SIZE - t["boxes"][:, 0]
            t = {"boxes": b, "labels": t["labels"]}
        out.append(t)
    return x, out


def train_yolo(args, data):
    (xtr, ttr, ids_tr), (xva, coco_va, ids_va) = data
    mm.seed_all(args.seed)
    net = YoloNet()
    model = YoloV5Out(net)
    params = list(net.parameters())
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    n = len(ids_tr)
    spe = n // args.batch
    total = spe * args.epochs
    warm = min(300, total // 5)

    lr_at = dc.warmup_cosine(args.lr, warm, total)

    gen = torch.Generator().manual_seed(args.seed + 1)
    hist = {"iter_loss": [], "epochs": []}
    step = 0
    t0 = time.time()
    for ep in range(args.epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        sums = {}
        te = time.time()
        for bi in range(spe):
            idx = perm[bi * args.batch:(bi + 1) * args.batch].tolist()
            flags = (torch.rand(len(idx), generator=gen) < 0.5).tolist()
            x, tg = hflip(dc.to_float01(xtr[idx]), [ttr[i] for i in idx], flags)
            pos, tbox, tcls = build_targets(tg)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            boxes, obj, cls = model.decode(*net(x))
            losses = yolo_loss(boxes, obj, cls, pos, tbox, tcls)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            step += 1
            hist["iter_loss"].append(round(loss.item(), 5))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            if bi % 50 == 0:
                dc.log("  ep %d it %d/%d loss %.3f (%s) %.3fs/it"
                       % (ep + 1, bi, spe, loss.item(),
                          " ".join("%s %.3f" % (k, v.item()) for k, v in losses.items()),
                          (time.time() - te) / (bi + 1)))
            if args.bench and step >= args.bench:
                dc.log("bench: %d its of %d in %.1fs" % (step, args.batch, time.time() - t0))
                return None
        el = {k: round(v / spe, 5) for k, v in sums.items()}
        el["total"] = round(sum(el.values()), 5)
        rec = {"epoch": ep + 1, "loss": el, "seconds": round(time.time() - te, 1)}
        if args.val_every and ((ep + 1) % args.val_every == 0 or ep + 1 == args.epochs):
            res, _ = eval_yolo(model, postprocess_v5, xva, coco_va, ids_va)
            rec["val"] = {"map": round(res["map"], 4), "map50": round(res["map50"], 4),
                          "seconds": res["seconds"]}
        hist["epochs"].append(rec)
        dc.log("yolo epoch %d: %s %s (%.0fs)" % (ep + 1, el, rec.get("val", ""), rec["seconds"]))
    net.eval()
    return net, hist, time.time() - t0, {"warmup": warm, "total_steps": total}


YOLO_OUTPUT_DOC = {
    "input": {"shape": [1, 3, SIZE, SIZE], "dtype": "float32", "layout": "NCHW",
              "colour": "RGB", "range": "[0, 1] (pixel / 255)",
              "normalisation": "none (no mean / std)", "size": [SIZE, SIZE],
              "batch": "any N works; reference sidecars use N = 1"},
    "boxes": {"count": sum((SIZE // s) ** 2 for s in STRIDES),
              "order": "stride 8 cells (40 x 40, row-major: index = offset + row * 40 + col), "
                       "then stride 16 (20 x 20), then stride 32 (10 x 10); offsets 0, 1600, 2000",
              "strides": list(STRIDES)},
    "v5": {"file": "demo_yolo_v5.pt", "shape": "[N, 2100, 5 + C] = [N, 2100, 9]",
           "values": ["cx: box centre x in input pixels (0..320 scale, x to the right)",
                      "cy: box centre y in input pixels (y down)",
                      "w: box width in input pixels",
                      "h: box height in input pixels",
                      "objectness probability: sigmoid ALREADY applied, in (0, 1)",
                      "C = 4 class probabilities (car, pedestrian, round_sign, "
                      "triangle_sign): independent sigmoids ALREADY applied (not softmax), "
                      "NOT multiplied by objectness"],
           "score": "score of class c for a box = objectness * class_prob[c]"},
    "v8": {"file": "demo_yolo_v8.pt", "shape": "[N, 4 + C, 2100] = [N, 8, 2100] (channels first)",
           "values": ["row 0 cx, row 1 cy, row 2 w, row 3 h: input pixels as in v5",
                      "rows 4..7: final class scores = sigmoid(objectness) * sigmoid(class "
                      "logit), i.e. exactly v5's objectness * class_prob; no separate "
                      "objectness row"],
           "score": "score of class c for a box = row 4 + c"},
    "same_weights": "both files wrap the same trained YoloNet and the same decode; "
                    "v8[n, k, b] == v5[n, b, k] for k < 4 and v8[n, 4 + c, b] == "
                    "v5[n, b, 4] * v5[n, b, 5 + c] (up to float rounding)",
    "class_ids": {"0": "car", "1": "pedestrian", "2": "round_sign", "3": "triangle_sign",
                  "coco_category_id": "class index + 1"},
    "decode_inside_model": "for reference only (already done by the model): with raw "
                           "t = (tx, ty, tw, th) of cell (col, row) at stride s: "
                           "cx = (2 * sigmoid(tx) - 0.5 + col) * s, "
                           "cy = (2 * sigmoid(ty) - 0.5 + row) * s, "
                           "w = (2 * sigmoid(tw))^2 * 4 * s, h = (2 * sigmoid(th))^2 * 4 * s",
    "postprocess_used_for_map": {
        "per box and class": "score = objectness * class_prob (v5) or row 4 + c (v8)",
        "threshold": "keep every (box, class) pair with score > %g (multi-label: one box "
                     "may give several detections)" % CONF_THRESH,
        "corners": "x1 = cx - w / 2, y1 = cy - h / 2, x2 = cx + w / 2, y2 = cy + h / 2 "
                   "(no clipping to the image)",
        "nms": "per class, IoU > %g suppressed (torchvision.ops.batched_nms, IoU without "
               "+1)" % NMS_IOU,
        "max_det": "%d per image, highest scores first" % MAX_DET,
        "coco_bbox": "[x1, y1, x2 - x1, y2 - y1]",
        "rounding": "the scored detections were rounded (bbox to 3 decimals, score to 6; "
                    "det_common.xyxy_to_coco); an unrounded decode of the same outputs "
                    "scores within about 2e-4 mAP",
    },
}


# --------------------------------------------------------------------------
# Crop classifier
# --------------------------------------------------------------------------

def make_crops(x_u8, coco, ids, max_occ=0.4, size=64):
    """Square crops (box enlarged 15%, clipped to the image) resized to size."""
    idx = {iid: i for i, iid in enumerate(ids)}
    crops, labels = [], []
    for a in sorted(coco["annotations"], key=lambda a: a["id"]):
        if a.get("occlusion", 0.0) >= max_occ or a["image_id"] not in idx:
            continue
        x, y, w, h = a["bbox"]
        side = max(w, h) * 1.15
        cx, cy = x + w / 2, y + h / 2
        H, W = x_u8.shape[2], x_u8.shape[3]
        x0 = int(round(max(0, cx - side / 2)))
        y0 = int(round(max(0, cy - side / 2)))
        x1 = int(round(min(W, cx + side / 2)))
        y1 = int(round(min(H, cy + side / 2)))
        patch = x_u8[idx[a["image_id"]]:idx[a["image_id"]] + 1, :, y0:y1, x0:x1].float()
        patch = F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        crops.append(patch.round().clamp(0, 255).to(torch.uint8)[0])
        labels.append(a["category_id"] - 1)
    return torch.stack(crops), torch.tensor(labels, dtype=torch.int64)


def train_crops(args, xtr, coco_tr, ids_tr, xte, coco_te, ids_te):
    mm.seed_all(args.seed + 100)
    t0 = time.time()
    ctr, ltr = make_crops(xtr, coco_tr, ids_tr)
    cte, lte = make_crops(xte, coco_te, ids_te)
    dc.log("crops: %d train / %d test (%.1fs)" % (len(ltr), len(lte), time.time() - t0))
    model = mm.DemoCNN(num_classes=NC)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = 64
    spe = math.ceil(len(ltr) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.crops_epochs * spe)
    gen = torch.Generator().manual_seed(args.seed + 101)
    loss_fn = nn.CrossEntropyLoss()
    hist = []
    for ep in range(args.crops_epochs):
        model.train()
        perm = torch.randperm(len(ltr), generator=gen)
        tot = 0.0
        for i in range(0, len(ltr), batch):
            idx = perm[i:i + batch]
            xb = dc.to_float01(ctr[idx])
            if torch.rand(1, generator=gen).item() < 0.5:
                xb = xb.flip(3)
            loss = loss_fn(model(xb), ltr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        acc = mm.evaluate(model, cte, lte)
        hist.append({"epoch": ep + 1, "loss": round(tot / len(ltr), 5), "test_acc": round(acc, 4)})
        dc.log("crops epoch %d loss %.4f test acc %.4f" % (ep + 1, tot / len(ltr), acc))
    model.eval()
    return model, hist, (ctr, ltr), (cte, lte), time.time() - t0


def per_class_acc(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(dc.to_float01(x[i:i + 256])).argmax(1) for i in range(0, len(y), 256)])
    return {n: round(float((pred[y == k] == k).float().mean()), 4) for k, n in enumerate(CLASS_NAMES)}


def run_crops(args, xtr, coco_tr, ids_tr, xte, coco_te, ids_te):
    from PIL import Image
    model, hist, (ctr, ltr), (cte, lte), secs = train_crops(args, xtr, coco_tr, ids_tr,
                                                            xte, coco_te, ids_te)
    img_dir = os.path.join(args.out, "images")
    os.makedirs(img_dir, exist_ok=True)
    for k, n in enumerate(CLASS_NAMES):
        i = int((lte == k).nonzero()[0])
        Image.fromarray(cte[i].permute(1, 2, 0).numpy(), "RGB").save(
            os.path.join(img_dir, "crop_%s.png" % n), optimize=True)
    x_ref = mm.load_image_tensor(os.path.join(img_dir, "crop_car.png"))
    desc = "images/crop_car.png (a test-split car crop), RGB, 1x3x64x64 float32 in [0,1], no normalisation"
    acc = mm.evaluate(model, cte, lte)
    mm.save_model(args.out, "demo_crops_float.pt", model, torch.jit.script(model),
                  lambda: model(x_ref), desc,
                  {"kind": "float", "classes": CLASS_NAMES, "test_accuracy": round(acc, 4)})
    g = torch.Generator().manual_seed(args.seed + 102)
    ci = torch.randperm(len(ltr), generator=g)[:128]
    calib = [dc.to_float01(ctr[ci[i:i + 32]]) for i in range(0, 128, 32)]
    qm = mm.fx_ptq(model, torch.zeros(1, 3, 64, 64), calib)
    qacc = mm.evaluate(qm, cte, lte)
    mm.save_model(args.out, "demo_crops_int8_fx.pt", qm, torch.jit.script(qm),
                  lambda: qm(x_ref), desc,
                  {"kind": "int8-fx-ptq", "classes": CLASS_NAMES, "test_accuracy": round(qacc, 4),
                   "calibration": "128 train crops (randperm seed %d)" % (args.seed + 102),
                   "qconfig": "get_default_qconfig_mapping('%s')" % dc.ENGINE})
    info = {
        "model": "make_models.DemoCNN(num_classes=4) (4 conv-BN-ReLU, 2 max-pools, global "
                 "average pool, Linear 64->4)",
        "classes": CLASS_NAMES,
        "output": "[N, 4] logits (softmax not applied), index = class (car, pedestrian, "
                  "round_sign, triangle_sign)",
        "input": "N x 3 x 64 x 64 float32 RGB in [0,1], no mean/std",
        "crops": "COCO box enlarged to a square of 1.15 x max(w, h) around its centre, "
                 "clipped to the image, resized to 64x64 (bilinear, antialias); objects "
                 "with occlusion >= 0.4 skipped",
        "train_crops": len(ltr), "test_crops": len(lte),
        "epochs": hist,
        "test_accuracy_float": round(acc, 4),
        "test_accuracy_int8_fx": round(qacc, 4),
        "per_class_accuracy_float": per_class_acc(model, cte, lte),
        "per_class_accuracy_int8_fx": per_class_acc(qm, cte, lte),
        "settings": {"optimizer": "Adam + OneCycleLR", "max_lr": 3e-3, "batch": 64,
                     "augmentation": "horizontal flip of half the batches",
                     "epochs": args.crops_epochs, "seed": args.seed + 100,
                     "threads": args.threads},
        "seconds": round(secs, 1),
        "files_mb": {f: dc.file_mb(os.path.join(args.out, f))
                     for f in ("demo_crops_float.pt", "demo_crops_int8_fx.pt")},
    }
    with open(os.path.join(args.out, "demo_crops.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    dc.log("crops: float acc %.4f, int8 acc %.4f" % (acc, qacc))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def run_yolo(args, xtr, ttr, ids_tr, xva, coco_va, ids_va, xte, coco_te, ids_te):
    r = train_yolo(args, ((xtr, ttr, ids_tr), (xva, coco_va, ids_va)))
    if r is None:
        return
    net, hist, train_s, sched = r
    v5 = YoloV5Out(net).eval()
    v8 = YoloV8Out(net).eval()
    res5, dets5 = eval_yolo(v5, postprocess_v5, xte, coco_te, ids_te)
    res8, dets8 = eval_yolo(v8, postprocess_v8, xte, coco_te, ids_te)
    dc.log("yolo float test: v5 mAP %.4f mAP50 %.4f | v8 mAP %.4f mAP50 %.4f"
           % (res5["map"], res5["map50"], res8["map"], res8["map50"]))
    ref = os.path.join(args.out, "images", "scene_test_0.png")
    if not os.path.exists(ref):
        from PIL import Image
        os.makedirs(os.path.dirname(ref), exist_ok=True)
        Image.open(os.path.join(args.data, "test", "000000.png")).convert("RGB").save(ref, optimize=True)
    x_ref = mm.load_image_tensor(ref)
    desc = ("images/scene_test_0.png (= test/000000.png of make_dataset.py --seed 0), "
            "RGB, 1x3x320x320 float32 in [0,1], no normalisation")
    with torch.no_grad():
        o5, o8 = v5(x_ref), v8(x_ref)
        d = max((o8[:, :4, :] - o5[:, :, :4].permute(0, 2, 1)).abs().max().item(),
                (o8[:, 4:, :] - (o5[:, :, 4:5] * o5[:, :, 5:]).permute(0, 2, 1)).abs().max().item())
    dc.log("v5 / v8 consistency max diff %.3g" % d)
    common = {"classes": CLASS_NAMES, "output_doc": "demo_yolo.json"}
    mm.save_model(args.out, "demo_yolo_v5.pt", v5, torch.jit.script(v5), lambda: v5(x_ref), desc,
                  dict(common, kind="float", layout="v5 [N, 2100, 9]"))
    mm.save_model(args.out, "demo_yolo_v8.pt", v8, torch.jit.script(v8), lambda: v8(x_ref), desc,
                  dict(common, kind="float", layout="v8 [N, 8, 2100]"))
    # INT8: FX PTQ of the net (raw maps), decode stays float.
    t = time.time()
    g = torch.Generator().manual_seed(args.seed + 7)
    ci = torch.randperm(len(ids_tr), generator=g)[:32]
    calib = [dc.to_float01(xtr[ci[i:i + 8]]) for i in range(0, 32, 8)]
    qnet = mm.fx_ptq(net, calib[0][:1], calib)
    q5 = YoloV5Out(net).eval()
    q5.net = qnet
    q8 = YoloV8Out(net).eval()
    q8.net = qnet
    quant_s = time.time() - t
    rq5, dq5 = eval_yolo(q5, postprocess_v5, xte, coco_te, ids_te)
    rq8, _ = eval_yolo(q8, postprocess_v8, xte, coco_te, ids_te)
    dc.log("yolo int8 test: v5 mAP %.4f mAP50 %.4f | v8 mAP %.4f mAP50 %.4f"
           % (rq5["map"], rq5["map50"], rq8["map"], rq8["map50"]))
    qextra = dict(common, kind="int8-fx-ptq-net",
                  quantized_part="net (FX GraphModule: quantize_per_tensor at its input, "
                  "dequantize at the 3 raw maps); decode float",
                  calibration="32 train images (randperm seed %d)" % (args.seed + 7),
                  qconfig="get_default_qconfig_mapping('%s')" % dc.ENGINE)
    mm.save_model(args.out, "demo_yolo_v5_int8_fx.pt", q5, torch.jit.script(q5), lambda: q5(x_ref),
                  desc, dict(qextra, layout="v5 [N, 2100, 9]"))
    mm.save_model(args.out, "demo_yolo_v8_int8_fx.pt", q8, torch.jit.script(q8), lambda: q8(x_ref),
                  desc, dict(qextra, layout="v8 [N, 8, 2100]"))
    dets_dir = os.path.join(args.data, "dets")
    os.makedirs(dets_dir, exist_ok=True)
    for name, dets in (("demo_yolo_v5_float_test.json", dets5), ("demo_yolo_v5_int8_fx_test.json", dq5)):
        with open(os.path.join(dets_dir, name), "w") as f:
            json.dump(dets, f)
    spe = len(ids_tr) // args.batch
    it = hist["iter_loss"]
    xs = [(i + 1) / spe for i in range(len(it))]
    series = [("total (iter, smoothed)", xs, dc.smooth(it, max(1, spe // 10)))]
    for k in ("box", "obj", "cls"):
        series.append((k + " (epoch)", [e["epoch"] for e in hist["epochs"]],
                       [e["loss"][k] for e in hist["epochs"]]))
    dc.line_plot(os.path.join(args.out, "demo_yolo_loss.png"), series,
                 "YOLO-style detector training loss, %d epochs" % args.epochs, "epoch", "loss",
                 log_y=True)
    info = {
        "output": YOLO_OUTPUT_DOC,
        "model": "YoloNet widths 16/32/64/96/128, neck 64, 3 levels, anchor-free "
                 "(one prediction per cell), %d parameters" % sum(p.numel() for p in net.parameters()),
        "level_assignment": "GT max side <= %g px -> stride 8, <= %g -> stride 16, else 32; "
                            "centre cell + 2 nearest neighbours" % LEVEL_MAX_SIDE,
        "settings": {"epochs": args.epochs, "batch": args.batch, "optimizer": "AdamW",
                     "lr": args.lr, "weight_decay": 5e-4, "warmup_steps": sched["warmup"],
                     "total_steps": sched["total_steps"],
                     "schedule": "linear warm-up then cosine to 2% of lr",
                     "loss": "5 * (1 - GIoU) + sum_l balance_l * BCE(obj, IoU target) + "
                             "BCE(cls); balance %s" % (OBJ_BALANCE,),
                     "augmentation": "horizontal flip p=0.5", "seed": args.seed,
                     "threads": args.threads, "torch": torch.__version__},
        "epochs": hist["epochs"],
        "test_float_v5": brief(res5),
        "test_float_v8": brief(res8),
        "test_int8_fx_v5": brief(rq5),
        "test_int8_fx_v8": brief(rq8),
        "v5_v8_max_abs_diff_on_reference": d,
        "eval": "tools/coco_eval.py on the test split (%d images) after the "
                "postprocess_used_for_map recipe" % len(ids_te),
        "seconds": {"train": round(train_s, 1), "quantize": round(quant_s, 1)},
        "files_mb": {f: dc.file_mb(os.path.join(args.out, f)) for f in
                     ("demo_yolo_v5.pt", "demo_yolo_v8.pt", "demo_yolo_v5_int8_fx.pt",
                      "demo_yolo_v8_int8_fx.pt")},
    }
    with open(os.path.join(args.out, "demo_yolo.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-every", type=int, default=1)
    ap.add_argument("--crops-epochs", type=int, default=6)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--bench", type=int, default=0)
    ap.add_argument("--skip-yolo", action="store_true")
    ap.add_argument("--skip-crops", action="store_true")
    args = ap.parse_args(argv)
    wall = dc.Timer()
    dc.setup_torch(args.threads)
    os.makedirs(args.out, exist_ok=True)
    xtr, coco_tr, ttr, ids_tr = dc.load_split(args.data, "train", args.limit_train)
    xva, coco_va, _, ids_va = dc.load_split(args.data, "val")
    xte, coco_te, _, ids_te = dc.load_split(args.data, "test")
    dc.log("loaded data in %.1fs" % wall())
    if not args.skip_yolo:
        t = time.time()
        run_yolo(args, xtr, ttr, ids_tr, xva, coco_va, ids_va, xte, coco_te, ids_te)
        dc.log("yolo part done in %.0fs" % (time.time() - t))
    if not args.skip_crops:
        t = time.time()
        run_crops(args, xtr, coco_tr, ids_tr, xte, coco_te, ids_te)
        dc.log("crops part done in %.0fs" % (time.time() - t))
    dc.log("total %.0fs" % wall())
    return 0


if __name__ == "__main__":
    sys.exit(main())
