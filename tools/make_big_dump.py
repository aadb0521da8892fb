#!/usr/bin/python3
"""Writes a large synthetic dump in the documented format (docs/dump-format.md) for the
GUI benchmark: LAYERS layers of [1, 256, 200, 272] float16 activations per side, ~2 GB.
The values are random; the structure, chunking and attributes are those of a real dump.

usage: make_big_dump.py OUT.h5 [--layers 37]
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
    args = ap.parse_args()
    c, h, w = (int(v) for v in args.shape.split(","))
    rng = np.random.default_rng(0)
    with h5py.File(args.out, "w") as f:
        f.attrs.update({"format": "quantscope-dump", "version": 1, "complete": 0, "dtype": "f16",
                        "image_count": 1, "layer_count": args.layers, "created": datetime.datetime.utcnow().isoformat() + "Z",
                        "producer": "tools/make_big_dump.py", "unmatched_original": 0, "unmatched_quantized": 0,
                        "tap_point": "block", "ops": "conv", "input_width": w * 4, "input_height": h * 4})
        for side in ("original", "quantized"):
            g = f.create_group(f"models/{side}")
            g.attrs.update({"path": f"synthetic-{side}.pt", "format": "torchscript", "sha256": "0" * 64,
                            "file_bytes": 1, "parameter_bytes": 1, "input": "image-list",
                            "quantized": int(side == "quantized"), "tap_sites": args.layers, "tapped_calls": args.layers})
        img = f.create_group("inputs/0000")
        img.attrs["source"] = "synthetic"
        img.create_dataset("image", data=rng.integers(0, 256, size=(h * 4, w * 4, 3), dtype=np.uint8))
        base = rng.standard_normal((c, h, w), dtype=np.float32)
        for k in range(args.layers):
            g = f.create_group(f"layers/{k:04d}")
            o = np.roll(base, k, axis=0).astype(np.float16)[None]
            q = (o.astype(np.float32) + 0.05 * rng.standard_normal(o.shape, dtype=np.float32)).astype(np.float16)
            for name, data in (("original", o), ("quantized", q)):
                d = g.create_dataset(name, data=data, chunks=(1, 1, h, w))
                d.attrs.update({"module": f"backbone.body.layer1.{k}.conv", "call": 0, "op": "aten::conv2d", "epilogue": ""})
            err = np.abs(q.astype(np.float32) - o.astype(np.float32))[0]
            g.create_dataset("abs_diff", data=err.mean(axis=0)[None])
            g.create_dataset("mean_original", data=o[0].astype(np.float32).mean(axis=0)[None])
            g.create_dataset("mean_quantized", data=q[0].astype(np.float32).mean(axis=0)[None])
            g.create_dataset("rel_diff", data=(err / np.maximum(np.abs(o[0].astype(np.float32)), 0.04)).mean(axis=0)[None])
            ch = g.create_group("channels")
            for m in ("sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"):
                ch.create_dataset(m, data=rng.random(c, dtype=np.float32) * 30)
            g.attrs.update({"index": k, "name": f"backbone.body.layer1.{k}.conv", "module": f"backbone.body.layer1.{k}.conv",
                            "call": 0, "op": "aten::conv2d", "quantized_name": f"backbone.body.layer1.{k}.conv",
                            "quantized_op": "quantized::conv2d", "match": "path", "shape": np.array([c, h, w], dtype=np.int64),
                            "original_index": k, "quantized_index": k, "sqnr_db": 26.0, "mse": 0.0025,
                            "max_abs": 0.2, "mean_abs": 0.04, "rel_err": 0.05, "cosine": 0.999})
        f.attrs["complete"] = 1


if __name__ == "__main__":
    main()
