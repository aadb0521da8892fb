#!/usr/bin/python3
"""The calibration images PyTorch's FX route used for demo_frcnn_int8_fx.pt.

    /usr/bin/python3 tools/make_calib_set.py --out DIR [--count 32]

tools/train_detector.py calibrated the FX INT8 detector on 32 train images picked
with torch.randperm(2000, generator seeded 0 + 7). The train split is not generated
at build time (2000 images), so this renders just those images with make_dataset.py's
own per-image generator (seed 0, split "train", size 320): byte-identical to the
files `make_dataset.py --train 2000` writes, under the same names (NNNNNN.png).
`quantscope-cli quantize --calib DIR` then calibrates on exactly the FX route's set.
DIR/calib.json holds their boxes (COCO layout, as make_dataset.py writes), for
`quantize --calib-coco DIR/calib.json --images DIR --max-drop X`.
"""
import argparse
import json
import os
import sys

import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dataset  # noqa: E402

TRAIN_IMAGES = 2000   # tools/weights/demo_frcnn_train.json: data.train_images
TRAIN_SEED = 0        # ... seed
SIZE = 320


def calibration_indices(count):
    g = torch.Generator().manual_seed(TRAIN_SEED + 7)
    return torch.randperm(TRAIN_IMAGES, generator=g)[:count].tolist()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=32)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    images, annotations = [], []
    for i in calibration_indices(args.count):
        fname = "%06d.png" % i
        arr, anns = make_dataset.render_image(make_dataset.image_rng(TRAIN_SEED, "train", i), SIZE)
        path = os.path.join(args.out, fname)
        if not os.path.exists(path):
            Image.fromarray(arr, "RGB").save(path, compress_level=1)
        images.append({"id": i + 1, "file_name": fname, "width": SIZE, "height": SIZE})
        for cat, bbox, _ in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    with open(os.path.join(args.out, "calib.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": make_dataset.CATEGORIES}, f)
    print("wrote %d calibration images to %s" % (args.count, args.out))


if __name__ == "__main__":
    main()
