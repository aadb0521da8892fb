"""Shared helpers for tools/train_detector.py and tools/train_yolo.py.

Data loading from a tools/make_dataset.py folder, torch setup, COCO result
conversion, a PIL line plot (matplotlib is not installed for Debian's
python3 here) and file-size helpers.
"""

import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_models as mm  # noqa: E402

ENGINE = mm.ENGINE
log = mm.log


def setup_torch(threads):
    torch.set_num_threads(threads)
    if ENGINE not in torch.backends.quantized.supported_engines:
        sys.exit("quantized engine %r not available" % ENGINE)
    torch.backends.quantized.engine = ENGINE


def load_split(data_dir, split, limit=None):
    """Images as one uint8 N x 3 x H x W tensor, COCO dict, per-image targets.

    targets[i] = {"boxes": float K x 4 (x1, y1, x2, y2; x2 = x + w),
                  "labels": int64 K (category ids 1..4)}.
    """
    with open(os.path.join(data_dir, "annotations", split + ".json")) as f:
        coco = json.load(f)
    images = sorted(coco["images"], key=lambda im: im["id"])
    if limit:
        images = images[:limit]
        keep = {im["id"] for im in images}
        coco = dict(coco, images=images,
                    annotations=[a for a in coco["annotations"] if a["image_id"] in keep])
    by_img = {im["id"]: [] for im in images}
    for a in coco["annotations"]:
        by_img[a["image_id"]].append(a)
    h, w = images[0]["height"], images[0]["width"]
    arr = np.empty((len(images), 3, h, w), dtype=np.uint8)
    targets = []
    for i, im in enumerate(images):
        px = np.asarray(Image.open(os.path.join(data_dir, split, im["file_name"])).convert("RGB"))
        arr[i] = px.transpose(2, 0, 1)
        anns = by_img[im["id"]]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in anns],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        targets.append({"boxes": boxes, "labels": labels})
    ids = [im["id"] for im in images]
    return torch.from_numpy(arr), coco, targets, ids


def warmup_cosine(base_lr, warm, total):
    """Learning rate at a step: linear warm-up from 5 % over `warm` steps, then a cosine
    decay to 2 % of base_lr at step `total` (both training scripts use it)."""
    import math

    def lr_at(step):
        if step < warm:
            return base_lr * (0.05 + 0.95 * step / warm)
        p = (step - warm) / max(1, total - warm)
        return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))
    return lr_at


def to_float01(u8):
    return u8.float().div_(255.0)


def xyxy_to_coco(boxes, scores, labels, image_id):
    out = []
    b = boxes.tolist()
    s = scores.tolist()
    lab = labels.tolist()
    for (x1, y1, x2, y2), sc, c in zip(b, s, lab):
        out.append({"image_id": int(image_id), "category_id": int(c),
                    "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                    "score": round(float(sc), 6)})
    return out


def file_mb(path):
    return round(os.path.getsize(path) / 1e6, 3)


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __call__(self):
        return time.time() - self.t0


# --------------------------------------------------------------------------
# PIL line plot
# --------------------------------------------------------------------------

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def _font(size):
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    return ImageFont.load_default()


def _nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = np.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + 1e-9:
        ticks.append(round(float(v), 10))
        v += step
    return ticks


def line_plot(path, series, title, xlabel, ylabel, log_y=False, size=(900, 560)):
    """series: list of (label, xs, ys). Writes a PNG with PIL."""
    W, H = size
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f_small, f_mid = _font(13), _font(16)
    left, right, top, bottom = 80, 200, 45, 60
    pw, ph = W - left - right, H - top - bottom
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys if np.isfinite(y) and (y > 0 or not log_y)]
    if not xs_all or not ys_all:
        img.save(path)
        return
    x0, x1 = min(xs_all), max(xs_all)
    if x1 == x0:
        x1 = x0 + 1
    tf = (lambda v: np.log10(v)) if log_y else (lambda v: v)
    y0, y1 = tf(min(ys_all)), tf(max(ys_all))
    if y1 == y0:
        y1 = y0 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x):
        return left + (x - x0) / (x1 - x0) * pw

    def py(y):
        return top + ph - (tf(y) - y0) / (y1 - y0) * ph

    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    # y ticks
    if log_y:
        ticks = [10 ** e for e in range(int(np.floor(y0)), int(np.ceil(y1)) + 1)]
        sub = [m * t for t in ticks for m in (2, 5)]
        ticks = sorted(t for t in ticks + sub if y0 <= np.log10(t) <= y1)
    else:
        ticks = [t for t in _nice_ticks(y0, y1) if y0 <= t <= y1]
    for t in ticks:
        yy = py(t)
        d.line([left, yy, left + pw, yy], fill=(225, 225, 225))
        d.text((left - 8, yy), ("%g" % t), fill=(0, 0, 0), font=f_small, anchor="rm")
    for t in _nice_ticks(x0, x1):
        if x0 <= t <= x1:
            xx = px(t)
            d.line([xx, top, xx, top + ph], fill=(235, 235, 235))
            d.text((xx, top + ph + 6), "%g" % t, fill=(0, 0, 0), font=f_small, anchor="mt")
    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for i, (label, xs, ys) in enumerate(series):
        col = PALETTE[i % len(PALETTE)]
        pts = [(px(x), py(y)) for x, y in zip(xs, ys) if np.isfinite(y) and (y > 0 or not log_y)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        if len(pts) <= 30:
            for p in pts:
                d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=col)
        ly = top + 10 + 22 * i
        d.line([left + pw + 15, ly, left + pw + 40, ly], fill=col, width=3)
        d.text((left + pw + 46, ly), label, fill=(0, 0, 0), font=f_small, anchor="lm")
    d.text((left + pw / 2, 12), title, fill=(0, 0, 0), font=f_mid, anchor="mt")
    d.text((left + pw / 2, H - 18), xlabel, fill=(0, 0, 0), font=f_small, anchor="mm")
    lab = Image.new("RGB", (ph, 20), "white")
    ImageDraw.Draw(lab).text((ph / 2, 10), ylabel, fill=(0, 0, 0), font=f_small, anchor="mm")
    img.paste(lab.rotate(90, expand=True), (8, top))
    img.save(path)


def smooth(values, k):
    """Trailing moving average (window k) of a list."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out
