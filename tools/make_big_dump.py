#!/usr/bin/python3
"""Writes a large synthetic dump in the documented format (docs/dump-format.md) for the
GUI benchmark: LAYERS layers of [1, 256, 200, 272] float16 activations per side, ~2 GB.
The values are random; the structure, chunking and attributes are those of a real dump.

usage: make_big_dump.py OUT.h5 [--layers 37] [--images 1] [--shape C,H,W]

With several images, every layer holds each image's activations ([N, C, H, W]), and the
per-image metrics, histograms and graph edges (a chain with a skip every third layer)
that compare writes are there too, so the GUI's image switch and graph view can be timed.
"""
import argparse
import datetime

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=37)
    ap.add_argument("--shape", default="256,200,272")
    ap.add_argument("--images", type=int, default=1)
    args = ap.parse_args()
    c, h, w = (int(v) for v in args.shape.split(","))
    rng = np.random.default_rng(0)
    with h5py.File(args.out, "w") as f:
        f.attrs.update({"format": "quantscope-dump", "version": 1, "complete": 0, "dtype": "f16",
                        "image_count": args.images, "layer_count": args.layers, "created": datetime.datetime.utcnow().isoformat() + "Z",
                        "producer": "tools/make_big_dump.py", "unmatched_original": 0, "unmatched_quantized": 0,
                        "tap_point": "block", "ops": "conv", "input_width": w * 4, "input_height": h * 4})
        for side in ("original", "quantized"):
            g = f.create_group(f"models/{side}")
            g.attrs.update({"path": f"synthetic-{side}.pt", "format": "torchscript", "sha256": "0" * 64,
                            "file_bytes": 1, "parameter_bytes": 1, "input": "image-list",
                            "quantized": int(side == "quantized"), "tap_sites": args.layers, "tapped_calls": args.layers})
        n = args.images
        for i in range(n):
            img = f.create_group(f"inputs/{i:04d}")
            img.attrs["source"] = f"synthetic_{i}.png"
            img.create_dataset("image", data=rng.integers(0, 256, size=(h * 4, w * 4, 3), dtype=np.uint8))
        base = rng.standard_normal((c, h, w), dtype=np.float32)
        image_sqnr = np.zeros((n, args.layers))
        for k in range(args.layers):
            g = f.create_group(f"layers/{k:04d}")
            layer = f"backbone.stage{k // 25}.block{(k // 5) % 5}.conv{k % 5}"  # a detector-like hierarchy
            o = np.stack([np.roll(base, k + i, axis=0) for i in range(n)]).astype(np.float16)
            q = (o.astype(np.float32) + 0.05 * rng.standard_normal(o.shape, dtype=np.float32)).astype(np.float16)
            for name, data in (("original", o), ("quantized", q)):
                d = g.create_dataset(name, data=data, chunks=(1, 1, h, w))
                d.attrs.update({"module": layer, "call": 0, "op": "aten::conv2d", "epilogue": ""})
            o32, q32 = o.astype(np.float32), q.astype(np.float32)
            err = np.abs(q32 - o32)
            g.create_dataset("abs_diff", data=err.mean(axis=1))
            g.create_dataset("mean_original", data=o32.mean(axis=1))
            g.create_dataset("mean_quantized", data=q32.mean(axis=1))
            g.create_dataset("rel_diff", data=(err / np.maximum(np.abs(o32), 0.04)).mean(axis=1))
            ch = g.create_group("channels")
            for m in ("sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"):
                ch.create_dataset(m, data=rng.random(c, dtype=np.float32) * 30)
            lo, hi = float(min(o32.min(), q32.min())), float(max(o32.max(), q32.max()))
            hist = g.create_group("histogram")
            hist.attrs.update({"low": lo, "bin_width": (hi - lo) / 256})
            for name, data in (("original", o32), ("quantized", q32)):
                hist.create_dataset(name, data=np.histogram(data, bins=256, range=(lo, hi))[0].astype(np.int64))
            for i in range(n):
                image_sqnr[i, k] = 10 * np.log10(np.sum(o32[i].astype(np.float64) ** 2) / np.sum(err[i].astype(np.float64) ** 2))
            inputs = [k - 1] + ([k - 3] if k >= 3 and k % 3 == 0 else []) if k > 0 else []
            g.attrs.update({"index": k, "name": layer, "module": layer,
                            "call": 0, "op": "aten::conv2d", "quantized_name": layer,
                            "quantized_op": "quantized::conv2d", "match": "path", "shape": np.array([c, h, w], dtype=np.int64),
                            "original_index": k, "quantized_index": k, "sqnr_db": 26.0, "mse": 0.0025,
                            "max_abs": 0.2, "mean_abs": 0.04, "rel_err": 0.05, "cosine": 0.999})
            if inputs:
                g.attrs["inputs"] = np.array(inputs, dtype=np.int64)
        im = f.create_group("image_metrics")
        for m in ("sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"):
            im.create_dataset(m, data=image_sqnr if m == "sqnr_db" else np.zeros((n, args.layers)))
        f.attrs["complete"] = 1


if __name__ == "__main__":
    main()
