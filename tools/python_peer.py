#!/usr/bin/python3
"""The way most users record activations today, as a peer for bench_recording:
register_forward_hook on every convolution module plus h5py, in eager PyTorch.

Builds the same networks as tools/make_models.py (fasterrcnn_resnet50_fpn with random
weights at 480x640, and its FX-quantized backbone body), then, in one of two modes:
  plain  - forward passes of both models, no hooks
  hooks  - the same with a hook on every conv module writing its output (float16,
           uncompressed) into one HDF5 file per run
and prints one JSON line: per-image seconds for the pair of forward passes.
Peak memory is measured by the caller (wait4 rusage of this process).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import make_models as mm  # noqa: E402


def conv_modules(model):
    types = tuple(mm._conv_types())
    return [(name, m) for name, m in model.named_modules() if isinstance(m, types)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("plain", "hooks"), required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--images", type=int, default=3, help="passes (the image repeated)")
    ap.add_argument("--out", help="HDF5 file for --mode hooks")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = mm.ENGINE
    mm.seed_all(50)
    t0 = time.time()
    original = mm._r50().eval()
    quantized = mm._quantize_body(original, 480, 640, 52)
    load_seconds = time.time() - t0
    x = mm.load_image_tensor(args.image)[0]  # [3,H,W] in [0,1]

    h5 = None
    counters = {}
    if args.mode == "hooks":
        h5 = h5py.File(args.out, "w")

        def make_hook(side, name):
            def hook(module, inputs, output):
                out = output.dequantize() if output.is_quantized else output
                key = f"{side}/{name}"
                n = counters.get(key, 0)
                counters[key] = n + 1
                h5.create_dataset(f"{key}/{image_index[0]}_{n}",
                                  data=out.detach().numpy().astype(np.float16))
            return hook

        for side, model in (("original", original), ("quantized", quantized)):
            for name, m in conv_modules(model):
                m.register_forward_hook(make_hook(side, name))

    image_index = [0]
    seconds = []
    with torch.no_grad():
        for i in range(args.images):
            image_index[0] = i
            counters.clear()
            t = time.time()
            original([x])
            quantized([x])
            seconds.append(time.time() - t)
    finish = time.time()
    if h5 is not None:
        h5.close()
    finish = time.time() - finish
    print(json.dumps({"mode": args.mode, "load_seconds": load_seconds, "image_seconds": seconds,
                      "finish_seconds": finish, "hooked_calls": sum(counters.values())}))


if __name__ == "__main__":
    main()
