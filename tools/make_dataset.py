#!/usr/bin/python3
"""Deterministic synthetic traffic scenes with COCO-format box annotations.

    /usr/bin/python3 tools/make_dataset.py --out /tmp/qs-data
    /usr/bin/python3 tools/make_dataset.py --out DIR --seed 0 \\
        --train 2000 --val 200 --test 300 --size 320

Writes DIR/{train,val,test}/NNNNNN.png (RGB, size x size) and
DIR/annotations/{train,val,test}.json (COCO "instances" layout):

  images:      id (1-based), file_name ("NNNNNN.png", relative to the split
               folder), width, height
  annotations: id (1-based, unique within the file), image_id, category_id,
               bbox [x, y, w, h] (integer pixels, x/y of the top-left pixel,
               w/h counted in pixels, i.e. the full painted extent of the
               object whether occluded or not), area (= w * h), iscrowd (0),
               and two extras that COCO tools ignore: "occlusion" (fraction of
               the object's own pixels hidden by objects painted on top of
               it, 0..1) and "heavy_occlusion" (occlusion >= 0.4)
  categories:  1 car, 2 pedestrian, 3 round_sign, 4 triangle_sign

Scenes: a sky gradient (day / dusk / overcast), clouds, building blocks with
window grids and wall textures, a road with perspective lane markings,
sidewalk and grass, poles / trees / boxes as distractors, shadows, a global
lighting change (gain, gamma, a brightness gradient) and sensor noise.
Objects: cars (side view: body, cabin, windows, wheels), pedestrians (head,
torso, arms, legs in a walking pose), round signs (red ring prohibitory or
blue mandatory disc) and triangular warning / yield signs, with colour and
scale variation (about 14 px to 130 px) and overlaps. Every object lies fully
inside the image; an object that would be hidden by more than MAX_OCCLUSION
of its pixels is dropped and redrawn elsewhere, so every box is learnable.

Each image is drawn from its own numpy RandomState seeded from
(seed, split, index): the same arguments give byte-identical files (PNG
written by PIL without timestamps, JSON with fixed key order).
"""

import argparse
import json
import math
import os
import sys
import time
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CATEGORIES = [
    {"id": 1, "name": "car", "supercategory": "vehicle"},
    {"id": 2, "name": "pedestrian", "supercategory": "person"},
    {"id": 3, "name": "round_sign", "supercategory": "sign"},
    {"id": 4, "name": "triangle_sign", "supercategory": "sign"},
]
CLASS_NAMES = [c["name"] for c in CATEGORIES]
SPLITS = ("train", "val", "test")
SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
MAX_OCCLUSION = 0.6       # objects hidden more than this are redrawn
HEAVY_OCCLUSION = 0.4     # flag threshold written into the annotations
MIN_OBJ, MAX_OBJ = 2, 7   # objects per image


# Standard normal quantiles of 256 equiprobable bins: sensor noise is drawn as
# NORMAL_TABLE[uniform uint8] (much cheaper than RandomState.normal).
NORMAL_TABLE = np.array([NormalDist().inv_cdf((i + 0.5) / 256.0) for i in range(256)],
                        dtype=np.float32)


def log(msg):
    print(msg, flush=True)


def image_rng(seed, split, index):
    # Independent stream per image so any subset can be regenerated alone.
    return np.random.RandomState(
        (seed * 1000003 + SPLIT_CODE[split] * 7919 + index * 104729) % (2 ** 32))


def rgb(a):
    return tuple(int(max(0, min(255, round(v)))) for v in a)


def jitter(rng, base, amount):
    return rgb(np.asarray(base, dtype=np.float64) + rng.uniform(-amount, amount, 3))


# --------------------------------------------------------------------------
# Background
# --------------------------------------------------------------------------

def draw_background(rng, size):
    s = size
    arr = np.zeros((s, s, 3), dtype=np.float64)
    horizon = int(rng.uniform(0.28, 0.55) * s)
    # Sky gradient.
    mood = rng.choice(["day", "dusk", "overcast"], p=[0.55, 0.2, 0.25])
    if mood == "day":
        top, bot = np.array([60, 110, 200]), np.array([170, 205, 240])
    elif mood == "dusk":
        top, bot = np.array([70, 60, 120]), np.array([240, 150, 90])
    else:
        top, bot = np.array([120, 125, 135]), np.array([190, 190, 195])
    top = top + rng.uniform(-25, 25, 3)
    bot = bot + rng.uniform(-25, 25, 3)
    t = np.linspace(0.0, 1.0, max(horizon, 1))[:, None]
    arr[:horizon] = (top[None, :] * (1 - t) + bot[None, :] * t)[:, None, :]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    # Clouds.
    for _ in range(rng.randint(0, 4)):
        cx, cy = rng.uniform(0, s), rng.uniform(0, horizon * 0.7)
        shade = jitter(rng, (235, 235, 240), 15)
        for _ in range(rng.randint(2, 5)):
            rx, ry = rng.uniform(8, 30), rng.uniform(5, 12)
            ox, oy = rng.uniform(-25, 25), rng.uniform(-6, 6)
            d.ellipse([cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry],
                      fill=shade)
    # Buildings standing on the horizon.
    x = rng.uniform(-30, 0)
    while x < s:
        bw = rng.uniform(25, 90)
        bh = rng.uniform(0.15, 0.9) * horizon + 10
        if rng.rand() < 0.8:
            wall = jitter(rng, rng.choice([90, 130, 170, 200]) * np.ones(3), 40)
            x0, y0, x1, y1 = x, horizon - bh, x + bw, horizon + 2
            d.rectangle([x0, y0, x1, y1], fill=wall)
            tex = rng.randint(0, 3)
            if tex == 1:      # horizontal siding lines
                step = rng.uniform(3, 7)
                line = rgb(np.asarray(wall) * 0.8)
                yy = y0
                while yy < y1:
                    d.line([x0, yy, x1, yy], fill=line)
                    yy += step
            elif tex == 2:    # brick-like checker
                cw, ch = rng.uniform(4, 9), rng.uniform(3, 6)
                alt = rgb(np.asarray(wall) * rng.uniform(0.75, 0.9))
                r = 0
                yy = y0
                while yy < y1:
                    xx = x0 + (cw / 2 if r % 2 else 0)
                    while xx < x1:
                        if rng.rand() < 0.5:
                            d.rectangle([xx, yy, min(xx + cw - 1, x1), min(yy + ch - 1, y1)],
                                        fill=alt)
                        xx += cw
                    yy += ch
                    r += 1
            # Window grid.
            if rng.rand() < 0.85:
                ww, wh = rng.uniform(4, 10), rng.uniform(5, 12)
                gx, gy = ww + rng.uniform(3, 8), wh + rng.uniform(4, 9)
                glass = jitter(rng, rng.choice([40, 120, 200]) * np.array([0.8, 0.9, 1.0]), 30)
                yy = y0 + 5
                while yy + wh < y1 - 5:
                    xx = x0 + 4
                    while xx + ww < x1 - 3:
                        d.rectangle([xx, yy, xx + ww, yy + wh], fill=glass)
                        xx += gx
                    yy += gy
        x += bw + rng.uniform(-5, 15)
    # Ground: grass / sidewalk / road with perspective lanes.
    grass = jitter(rng, (80, 120, 60), 25)
    d.rectangle([0, horizon, s, s], fill=grass)
    vx = rng.uniform(0.3, 0.7) * s                   # vanishing point x
    half_bottom = rng.uniform(0.55, 1.1) * s
    road = jitter(rng, (95, 95, 100), 25)
    side = jitter(rng, (165, 160, 150), 20)
    d.polygon([(vx - 6, horizon), (vx + 6, horizon),
               (vx + half_bottom * 1.25, s), (vx - half_bottom * 1.25, s)], fill=side)
    d.polygon([(vx - 4, horizon), (vx + 4, horizon),
               (vx + half_bottom, s), (vx - half_bottom, s)], fill=road)
    # Lane markings: dashed lines converging at the vanishing point.
    paint = jitter(rng, [(235, 235, 235), (230, 200, 60)][int(rng.rand() < 0.3)], 15)
    for frac in (-0.5, 0.0, 0.5):
        bx = vx + frac * half_bottom
        n_dash = 9
        for k in range(n_dash):
            t0 = (k + 0.3) / n_dash
            t1 = (k + 0.75) / n_dash
            if frac != 0.0 and rng.rand() < 0.3:
                continue
            # perspective: t^2 spacing, width grows towards the viewer
            a, b = t0 ** 2, t1 ** 2
            y0 = horizon + a * (s - horizon)
            y1 = horizon + b * (s - horizon)
            x0 = vx + (bx - vx) * a
            x1 = vx + (bx - vx) * b
            w0, w1 = 0.5 + 3 * a, 0.5 + 3 * b
            d.polygon([(x0 - w0, y0), (x0 + w0, y0), (x1 + w1, y1), (x1 - w1, y1)],
                      fill=paint)
    # Distractors: poles, trees, boxes.
    for _ in range(rng.randint(0, 4)):
        kind = rng.randint(0, 3)
        px = rng.uniform(0, s)
        base = rng.uniform(horizon, s)
        hgt = rng.uniform(0.2, 0.6) * s * (0.3 + (base - horizon) / max(s - horizon, 1))
        if kind == 0:
            w = max(1.0, hgt * 0.03)
            d.rectangle([px - w, base - hgt, px + w, base], fill=jitter(rng, (110, 110, 115), 30))
        elif kind == 1:
            w = max(1.0, hgt * 0.05)
            d.rectangle([px - w, base - hgt * 0.5, px + w, base], fill=jitter(rng, (100, 70, 40), 20))
            r = hgt * rng.uniform(0.2, 0.35)
            d.ellipse([px - r, base - hgt * 0.5 - 1.6 * r, px + r, base - hgt * 0.5 + 0.2 * r],
                      fill=jitter(rng, (50, 110, 45), 30))
        else:
            w = hgt * rng.uniform(0.2, 0.5)
            d.rectangle([px - w, base - w * 1.2, px + w, base], fill=jitter(rng, (140, 110, 80), 50))
    # Shadows: translucent dark polygons on the ground.
    for _ in range(rng.randint(0, 3)):
        m = Image.new("L", (s, s), 0)
        cx, cy = rng.uniform(0, s), rng.uniform(horizon, s)
        pts = [(cx + rng.uniform(-60, 60), cy + rng.uniform(-25, 25)) for _ in range(5)]
        ImageDraw.Draw(m).polygon(pts, fill=255)
        k = 1.0 - rng.uniform(0.2, 0.45)
        dark = img.point([int(v * k) for v in range(256)] * 3)
        img = Image.composite(dark, img, m)
    arr = np.array(img)
    return arr, horizon


# --------------------------------------------------------------------------
# Objects: each draws onto an RGB image and into its own L-mode mask
# --------------------------------------------------------------------------

# ``draws`` = (ImageDraw of the RGB layer, of the object mask, of the paint
# mask). The object mask defines the box; the paint mask (object + sign pole)
# is what hides things behind.

def _poly(draws, pts, colour):
    img_d, mask_d, paint_d = draws
    img_d.polygon(pts, fill=colour)
    mask_d.polygon(pts, fill=255)
    paint_d.polygon(pts, fill=255)


def _ellipse(draws, box, colour, outline=None, width=1):
    img_d, mask_d, paint_d = draws
    if outline is None:
        img_d.ellipse(box, fill=colour)
    else:
        img_d.ellipse(box, fill=colour, outline=outline, width=width)
    mask_d.ellipse(box, fill=255)
    paint_d.ellipse(box, fill=255)


def _rect(draws, box, colour):
    img_d, mask_d, paint_d = draws
    img_d.rectangle(box, fill=colour)
    mask_d.rectangle(box, fill=255)
    paint_d.rectangle(box, fill=255)


def draw_car(rng, draws, x, y, w):
    """Side view car; (x, y) top-left of its extent, width w."""
    h = w * rng.uniform(0.45, 0.6)
    body = jitter(rng, [(200, 30, 30), (30, 60, 180), (230, 230, 230), (30, 30, 30),
                        (200, 190, 40), (40, 140, 60), (150, 150, 160)][rng.randint(7)], 30)
    wheel_r = h * 0.2
    body_top = y + h * 0.42
    body_bot = y + h - wheel_r * 0.8
    flip = rng.rand() < 0.5
    # cabin trapezoid
    c0, c1 = (0.22, 0.78) if not flip else (0.22, 0.78)
    cab = [(x + w * (c0 + 0.06), y), (x + w * (c1 - 0.08), y),
           (x + w * (c1 + 0.05), body_top + 1), (x + w * (c0 - 0.05), body_top + 1)]
    _poly(draws, cab, body)
    glass = jitter(rng, (120, 170, 210), 30)
    img_d = draws[0]
    inset = max(1.0, h * 0.06)
    mid = x + w * 0.5
    img_d.polygon([(x + w * (c0 + 0.06) + inset, y + inset), (mid - inset * 0.5, y + inset),
                   (mid - inset * 0.5, body_top - 1),
                   (x + w * (c0 - 0.05) + inset * 1.5, body_top - 1)], fill=glass)
    img_d.polygon([(mid + inset * 0.5, y + inset), (x + w * (c1 - 0.08) - inset, y + inset),
                   (x + w * (c1 + 0.05) - inset * 1.5, body_top - 1),
                   (mid + inset * 0.5, body_top - 1)], fill=glass)
    # body with slightly rounded front/back
    _rect(draws, [x, body_top, x + w - 1, body_bot], body)
    dark = rgb(np.asarray(body) * 0.6)
    img_d.line([x + 2, (body_top + body_bot) / 2, x + w - 3, (body_top + body_bot) / 2],
               fill=dark, width=max(1, int(h * 0.03)))
    # lights
    lw = max(2.0, w * 0.05)
    front_x = x + w - 1 - lw if not flip else x
    back_x = x if not flip else x + w - 1 - lw
    img_d.rectangle([front_x, body_top + 2, front_x + lw, body_top + 2 + h * 0.1],
                    fill=(250, 240, 180))
    img_d.rectangle([back_x, body_top + 2, back_x + lw, body_top + 2 + h * 0.1],
                    fill=(200, 20, 20))
    # wheels
    for fx in (0.2, 0.8):
        cx = x + w * fx
        cy = y + h - wheel_r - 0.5
        _ellipse(draws, [cx - wheel_r, cy - wheel_r, cx + wheel_r, cy + wheel_r], (20, 20, 20))
        hr = wheel_r * 0.45
        img_d.ellipse([cx - hr, cy - hr, cx + hr, cy + hr], fill=jitter(rng, (170, 170, 170), 20))


def draw_pedestrian(rng, draws, x, y, h):
    """Standing / walking person; (x, y) top-left, height h."""
    w = h * rng.uniform(0.32, 0.42)
    cx = x + w / 2
    skin = jitter(rng, [(240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40)][rng.randint(4)], 15)
    shirt = jitter(rng, rng.randint(30, 230, 3), 20)
    pants = jitter(rng, [(40, 50, 90), (30, 30, 30), (110, 90, 70), (140, 140, 150)][rng.randint(4)], 20)
    head_r = h * 0.09
    _ellipse(draws, [cx - head_r, y, cx + head_r, y + 2 * head_r], skin)
    hair = jitter(rng, (50, 35, 20), 30)
    draws[0].chord([cx - head_r, y, cx + head_r, y + 2 * head_r], 180, 360, fill=hair)
    neck = y + 2 * head_r
    torso_b = y + h * 0.55
    sw = w * 0.3
    _poly(draws, [(cx - sw, neck), (cx + sw, neck), (cx + sw * 0.9, torso_b),
                  (cx - sw * 0.9, torso_b)], shirt)
    # arms reach the box sides
    stride = rng.uniform(0.0, 1.0)
    arm_w = max(1.5, w * 0.09)
    for side in (-1, 1):
        hand_x = cx + side * (w / 2 - arm_w * 0.5)
        hand_y = neck + (torso_b - neck) * (0.9 + 0.2 * stride * side)
        sx = cx + side * sw * 0.9
        _poly(draws, [(sx - arm_w, neck + 1), (sx + arm_w, neck + 1),
                      (hand_x + arm_w * 0.5, hand_y), (hand_x - arm_w * 0.5, hand_y)], shirt)
        _ellipse(draws, [hand_x - arm_w * 0.6, hand_y - arm_w * 0.6,
                         hand_x + arm_w * 0.6, hand_y + arm_w * 0.6], skin)
    # legs: spread by the walking stride, feet on the bottom edge
    leg_w = max(1.5, w * 0.13)
    foot_y = y + h - 1
    spread = (w / 2 - leg_w) * (0.3 + 0.7 * stride)
    for side in (-1, 1):
        hip = cx + side * leg_w * 0.7
        foot = cx + side * spread
        _poly(draws, [(hip - leg_w, torso_b - 1), (hip + leg_w, torso_b - 1),
                      (foot + leg_w * 0.8, foot_y), (foot - leg_w * 0.8, foot_y)], pants)
    return w


def draw_round_sign(rng, draws, x, y, d, pole_to):
    img_d = draws[0]
    cx, cy, r = x + d / 2, y + d / 2, d / 2
    if pole_to is not None and pole_to > y + d:
        pw = max(1.0, d * 0.05)
        img_d.rectangle([cx - pw, cy, cx + pw, pole_to], fill=jitter(rng, (130, 130, 135), 20))
        draws[2].rectangle([cx - pw, cy, cx + pw, pole_to], fill=255)
    if rng.rand() < 0.7:   # prohibitory: red ring, white face, black glyph
        ring = jitter(rng, (210, 25, 30), 25)
        _ellipse(draws, [x, y, x + d - 1, y + d - 1], ring)
        ri = r * rng.uniform(0.68, 0.78)
        face = jitter(rng, (245, 245, 240), 10)
        img_d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=face)
        g = rng.randint(3)
        ink = (20, 20, 20)
        if g == 0:   # speed-limit like digits
            bw, bh = ri * 0.28, ri * 0.9
            for ox in (-0.45, 0.15):
                img_d.rectangle([cx + ox * ri, cy - bh / 2, cx + ox * ri + bw, cy + bh / 2], fill=ink)
        elif g == 1:  # horizontal bar (no entry style, on red)
            img_d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=ring)
            img_d.rectangle([cx - ri * 0.8, cy - ri * 0.2, cx + ri * 0.8, cy + ri * 0.2], fill=face)
        else:        # diagonal slash
            img_d.line([cx - ri * 0.7, cy + ri * 0.7, cx + ri * 0.7, cy - ri * 0.7],
                       fill=ring, width=max(1, int(ri * 0.25)))
    else:                  # mandatory: blue disc, white arrow
        blue = jitter(rng, (30, 80, 190), 25)
        _ellipse(draws, [x, y, x + d - 1, y + d - 1], blue)
        a = r * 0.55
        white = (245, 245, 245)
        img_d.polygon([(cx, cy - a), (cx + a * 0.7, cy), (cx + a * 0.25, cy),
                       (cx + a * 0.25, cy + a), (cx - a * 0.25, cy + a),
                       (cx - a * 0.25, cy), (cx - a * 0.7, cy)], fill=white)


def draw_triangle_sign(rng, draws, x, y, d, pole_to):
    img_d = draws[0]
    h = d * math.sqrt(3) / 2
    cx = x + d / 2
    up = rng.rand() < 0.75
    if pole_to is not None and pole_to > y + h:
        pw = max(1.0, d * 0.05)
        img_d.rectangle([cx - pw, y + h / 2, cx + pw, pole_to], fill=jitter(rng, (130, 130, 135), 20))
        draws[2].rectangle([cx - pw, y + h / 2, cx + pw, pole_to], fill=255)
    if up:
        outer = [(cx, y), (x + d - 1, y + h - 1), (x, y + h - 1)]
    else:
        outer = [(x, y), (x + d - 1, y), (cx, y + h - 1)]
    ring = jitter(rng, (210, 25, 30), 25)
    _poly(draws, outer, ring)
    # inner triangle shrunk towards the centroid
    gx = sum(p[0] for p in outer) / 3
    gy = sum(p[1] for p in outer) / 3
    k = rng.uniform(0.55, 0.68)
    inner = [(gx + (px - gx) * k, gy + (py - gy) * k) for px, py in outer]
    face = jitter(rng, [(245, 245, 240), (245, 215, 60)][int(rng.rand() < 0.3)], 10)
    img_d.polygon(inner, fill=face)
    if up:
        ink = (20, 20, 20)
        bw = max(1.0, d * 0.05)
        img_d.rectangle([cx - bw, gy - h * 0.17, cx + bw, gy + h * 0.07], fill=ink)
        img_d.rectangle([cx - bw, gy + h * 0.11, cx + bw, gy + h * 0.15], fill=ink)
    return h


# size ranges (the characteristic dimension passed to the drawer)
SIZE_RANGE = {"car": (26, 130), "pedestrian": (22, 120),
              "round_sign": (14, 70), "triangle_sign": (16, 75)}


def sample_size(rng, lo, hi):
    # log-uniform: as many small as large objects
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class Obj:
    """One painted object, stored cropped to the extent of its paint."""

    def __init__(self, cls, layer, mask, paint, bbox, win):
        self.cls, self.bbox = cls, bbox
        self.win = win                # (y0, y1, x0, x1) of the crops below
        self.layer = layer            # RGB crop
        self.mask = mask              # the object itself (defines the box)
        self.paint = paint            # object + its pole
        self.npix = int(np.count_nonzero(self.mask))
        self.cover = np.zeros_like(self.mask)   # pixels hidden by later objects
        self.hidden = 0                          # count of cover & mask

    def overlap(self, other, own="mask"):
        """Pixels of self.<own> covered by other.paint."""
        a, b = self.win, other.win
        y0, y1 = max(a[0], b[0]), min(a[1], b[1])
        x0, x1 = max(a[2], b[2]), min(a[3], b[3])
        if y0 >= y1 or x0 >= x1:
            return 0
        mine = getattr(self, own)[y0 - a[0]:y1 - a[0], x0 - a[2]:x1 - a[2]]
        theirs = other.paint[y0 - b[0]:y1 - b[0], x0 - b[2]:x1 - b[2]]
        return int(np.count_nonzero(mine & theirs))


def place_object(rng, cls, size, horizon, near=None):
    """Draw one object on its own layer; returns an Obj or None.

    ``near``: bbox of an earlier object to overlap with (occlusion on
    purpose), else the position is uniform over the allowed region.
    """
    s = size
    layer = Image.new("RGB", (s, s), (0, 0, 0))
    mask = Image.new("L", (s, s), 0)
    paint = Image.new("L", (s, s), 0)
    draws = (ImageDraw.Draw(layer), ImageDraw.Draw(mask), ImageDraw.Draw(paint))
    name = CLASS_NAMES[cls]
    dim = sample_size(rng, *SIZE_RANGE[name])

    def pos(w, h, ylo):
        if near is not None:
            nx, ny, nw, nh = near
            x = nx + nw / 2 + rng.uniform(-0.5, 0.5) * (nw + w) - w / 2
            y = ny + nh - h + rng.uniform(-0.25, 0.25) * (nh + h)
            x = min(max(x, 1), s - w - 1)
            y = min(max(y, 1), s - h - 1)
            return x, y
        x = rng.uniform(1, s - w - 1)
        y = rng.uniform(ylo, max(ylo + 1, s - h - 1))
        return x, y

    if name == "car":
        w, h = dim, dim * 0.6
        x, y = pos(w, h, max(horizon - h * 0.7, 1))
        if y + h > s - 1:
            return None
        draw_car(rng, draws, x, y, w)
    elif name == "pedestrian":
        h = dim
        w = h * 0.45
        x, y = pos(w, h, max(horizon - h * 0.8, 1))
        if y + h > s - 1:
            return None
        draw_pedestrian(rng, draws, x, y, h)
    else:
        d = dim
        x, y = pos(d, d, 1)
        pole = min(s - 1, y + d + rng.uniform(0.5, 3.0) * d) if rng.rand() < 0.7 else None
        if name == "round_sign":
            draw_round_sign(rng, draws, x, y, d, pole)
        else:
            draw_triangle_sign(rng, draws, x, y, d, pole)
    mb = mask.getbbox()
    if mb is None:
        return None
    bbox = [mb[0], mb[1], mb[2] - mb[0], mb[3] - mb[1]]
    if bbox[2] < 6 or bbox[3] < 6:
        return None
    pb = paint.getbbox()
    lay = np.asarray(layer.crop(pb))
    m = np.asarray(mask.crop(pb)) > 127
    pm = np.asarray(paint.crop(pb)) > 127
    return Obj(cls, lay, m, pm, bbox, (pb[1], pb[3], pb[0], pb[2]))


def box_iou(a, b):
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = min(ax1, bx1) - max(a[0], b[0])
    ih = min(ay1, by1) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def render_image(rng, size):
    """Returns (uint8 HxWx3 array, list of (category_id, bbox, occlusion))."""
    arr, horizon = draw_background(rng, size)
    n_obj = rng.randint(MIN_OBJ, MAX_OBJ + 1)
    objs = []   # painting order: later entries are on top
    tries = 0
    while len(objs) < n_obj and tries < n_obj * 6:
        tries += 1
        cls = rng.randint(len(CLASS_NAMES))
        near = None
        if objs and rng.rand() < 0.35:
            near = objs[rng.randint(len(objs))].bbox
        o = place_object(rng, cls, size, horizon, near)
        if o is None:
            continue
        # Boxes may overlap, but not so much that NMS at IoU 0.5 must fail.
        if any(box_iou(o.bbox, p.bbox) > 0.4 for p in objs):
            continue
        # No earlier object may end up hidden by more than MAX_OCCLUSION
        # (hidden + newly covered is an upper bound of the union).
        covered = [p.overlap(o) for p in objs]
        if any(c + p.hidden > MAX_OCCLUSION * p.npix for c, p in zip(covered, objs)):
            continue
        for c, p in zip(covered, objs):
            if c:
                p.cover |= _window(o, p)
                p.hidden = int(np.count_nonzero(p.cover & p.mask))
        objs.append(o)
    out = arr
    for o in objs:
        y0, y1, x0, x1 = o.win
        region = out[y0:y1, x0:x1]
        region[o.paint] = o.layer[o.paint]
    anns = []
    for o in objs:
        occ = o.hidden / float(o.npix)
        anns.append((o.cls + 1, o.bbox, occ))
    # Global lighting change: gain, gamma and a linear brightness gradient,
    # then sensor noise.
    gain = rng.uniform(0.7, 1.25)
    gamma = rng.uniform(0.8, 1.25)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = (np.arange(size, dtype=np.float32) / size - 0.5)
    grad = 1.0 + rng.uniform(0, 0.35) * (np.cos(ang) * ramp[None, :] + np.sin(ang) * ramp[:, None])
    lut = (np.arange(256, dtype=np.float64) / 255.0) ** gamma * (gain * 255.0)
    out = lut.astype(np.float32)[out] * grad[:, :, None].astype(np.float32)
    sigma = np.float32(rng.uniform(2.0, 9.0))
    out += NORMAL_TABLE[rng.randint(0, 256, size=out.shape, dtype=np.uint8)] * sigma
    np.rint(out, out=out)
    np.maximum(out, 0, out=out)
    np.minimum(out, 255, out=out)
    img = Image.fromarray(out.astype(np.uint8), "RGB")
    if rng.rand() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.8)))
    return np.asarray(img), anns


def _window(src, dst):
    """src.paint placed into dst's window (boolean array of dst.mask shape)."""
    out = np.zeros_like(dst.mask)
    a, b = dst.win, src.win
    y0, y1 = max(a[0], b[0]), min(a[1], b[1])
    x0, x1 = max(a[2], b[2]), min(a[3], b[3])
    if y0 < y1 and x0 < x1:
        out[y0 - a[0]:y1 - a[0], x0 - a[2]:x1 - a[2]] = \
            src.paint[y0 - b[0]:y1 - b[0], x0 - b[2]:x1 - b[2]]
    return out


def make_split(out_dir, split, n, seed, size):
    img_dir = os.path.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    ann_id = 1
    for i in range(n):
        rng = image_rng(seed, split, i)
        arr, anns = render_image(rng, size)
        fname = "%06d.png" % i
        Image.fromarray(arr, "RGB").save(os.path.join(img_dir, fname), compress_level=1)
        images.append({"id": i + 1, "file_name": fname, "width": size, "height": size})
        for cat, bbox, occ in anns:
            annotations.append({
                "id": ann_id, "image_id": i + 1, "category_id": cat,
                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
                "occlusion": round(occ, 4),
                "heavy_occlusion": bool(occ >= HEAVY_OCCLUSION)})
            ann_id += 1
    coco = {
        "info": {"description": "QuantScope synthetic traffic scenes (%s)" % split,
                 "version": "1", "seed": seed, "split": split, "size": size},
        "images": images, "annotations": annotations, "categories": CATEGORIES,
    }
    ann_dir = os.path.join(out_dir, "annotations")
    os.makedirs(ann_dir, exist_ok=True)
    with open(os.path.join(ann_dir, split + ".json"), "w") as f:
        json.dump(coco, f, indent=None, separators=(",", ":"))
        f.write("\n")
    return coco


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--size", type=int, default=320)
    args = ap.parse_args(argv)
    t0 = time.time()
    for split in SPLITS:
        n = getattr(args, split)
        coco = make_split(args.out, split, n, args.seed, args.size)
        counts = [0] * len(CLASS_NAMES)
        heavy = 0
        for a in coco["annotations"]:
            counts[a["category_id"] - 1] += 1
            heavy += a["heavy_occlusion"]
        log("%s: %d images, %d boxes (%s), %d heavily occluded  [%.1fs]"
            % (split, n, len(coco["annotations"]),
               ", ".join("%s %d" % kv for kv in zip(CLASS_NAMES, counts)),
               heavy, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
