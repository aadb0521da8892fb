#!/usr/bin/python3
"""Where a TorchScript model spends its time: self CPU time per op of one forward pass.

    /usr/bin/python3 tools/profile_model.py --model M.pt --image X.png [--threads 2]
        [--runs 3] [--batch 1] [--top 15] [--json out.json]

Loads the model in Python (torchvision imported for its ops), feeds the image as
quantscope-cli does (RGB in [0,1]; a list of one [3,H,W] tensor for torchvision
detectors, else [1,3,H,W]), warms up three times, then profiles `--runs` passes with
torch.autograd.profiler and prints the ops by self CPU time (mean per pass).
"""
import argparse
import json

import numpy as np
import torch
import torchvision  # noqa: F401  (registers torchvision::roi_align / nms)
from PIL import Image


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1, help="images per forward pass (the same image repeated)")
    ap.add_argument("--engine", default="onednn")
    ap.add_argument("--top", type=int, default=15, help="ops listed")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = args.engine
    x = torch.from_numpy(np.asarray(Image.open(args.image).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    m = torch.jit.load(args.model).eval()
    image_list = "Tensor[] images" in str(m.forward.schema) or "List[Tensor]" in str(m.forward.schema)
    inp = [x] * args.batch if image_list else x.unsqueeze(0).expand(args.batch, -1, -1, -1).contiguous()
    with torch.no_grad():
        for _ in range(3):
            m(inp)
        with torch.autograd.profiler.profile() as prof:
            for _ in range(args.runs):
                m(inp)
    rows = sorted(((e.key, e.self_cpu_time_total / 1e3 / args.runs, e.count // args.runs)
                   for e in prof.key_averages()), key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    print("%-40s %10s %6s" % ("op", "ms/pass", "calls"))
    for key, ms, calls in rows[:args.top]:
        print("%-40s %10.1f %6d" % (key, ms, calls))
    print("%-40s %10.1f" % ("total", total))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "image": args.image, "threads": args.threads, "total_ms": total,
                       "ops": [{"op": k, "ms": ms, "calls": c} for k, ms, c in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
