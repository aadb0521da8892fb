#!/usr/bin/python3
"""Cluster throughput of sharded runs, measured as issue 13 asks: on the single-node Slurm
of tests/scale/localslurm.py (started here, stopped afterwards; needs root, munge and
slurm-wlm), the shipped array job runs N shards as tasks one after another (each task
asks for every CPU, so no two run at once), against one task running the unsharded compare. With
N nodes the N tasks would run side by side, so N shards reach N times one task's speed
to within the ratio printed: (run time of one task's compare over all the images) /
(run times of the N tasks' compares and of the merge), each as the task ran it.
Prints figures; asserts nothing.

    sudo /usr/bin/python3 bench/slurm_throughput.py [--build build/dev] [--shards 4] [--images 300]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "scale"))
from localslurm import LocalSlurm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "dev"))
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--images", type=int, default=300, help="of the demo test split")
    ap.add_argument("--pair", choices=("demo", "r50"), default="demo",
                    help="the YOLO demo pair at 320x320, or the scripted ResNet-50-FPN and its FX INT8 "
                         "(random weights) at 640x480 on the same images")
    args = ap.parse_args()
    cli = os.path.join(os.path.abspath(args.build), "app", "cli", "quantscope-cli")
    script = os.path.join(ROOT, "packaging", "slurm", "quantscope-sharded.sh")
    data = os.path.join(os.path.abspath(args.build), "data", "test")
    weights = os.path.join(ROOT, "tools", "weights")
    slurm = LocalSlurm()
    why = slurm.missing()
    if why:
        sys.exit(f"slurm_throughput: {why}")
    with tempfile.TemporaryDirectory(prefix="qs-slurm-bench-") as tmp, slurm:
        images = os.path.join(tmp, "images")
        os.makedirs(images)
        for name in sorted(os.listdir(data))[:args.images]:
            shutil.copy(os.path.join(data, name), images)
        count = len(os.listdir(images))
        models = os.path.join(os.path.abspath(args.build), "models")
        pair = (["--original", os.path.join(weights, "demo_yolo_v8.pt"), "--quantized",
                 os.path.join(weights, "demo_yolo_v8_int8_fx.pt")] if args.pair == "demo" else
                ["--original", os.path.join(models, "frcnn_r50_fpn.pt"), "--quantized",
                 os.path.join(models, "frcnn_r50_fpn_fx_int8.pt"), "--size", "640x480"])
        compare = [*pair, "--images", images, "--threads", str(slurm.cpus), "--keep-activations", "4", "--keep",
                   "worst"]
        # every quantscope-cli the jobs run goes through a wrapper that notes its own run time
        # (sbatch --wait polls, so job wall times are rounded up to its polling steps)
        times = os.path.join(tmp, "times.txt")
        wrapper = os.path.join(tmp, "timed-cli")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nstart=$(date +%s.%N)\n{cli} \"$@\"\nrc=$?\n"
                    f"echo \"$1 $start $(date +%s.%N)\" >> {times}\nexit $rc\n")
        os.chmod(wrapper, 0o755)
        env = dict(slurm.env, QS_CLI=wrapper)

        def ran():
            """(command, seconds) of every wrapped run so far, and forget them."""
            if not os.path.exists(times):
                return []
            with open(times) as f:
                runs = [(w[0], float(w[2]) - float(w[1])) for w in (line.split() for line in f) if len(w) == 3]
            os.remove(times)
            return runs
        # one task, the unsharded run (merge takes two shards or more)
        start = time.time()
        whole = " ".join([wrapper, "compare", *compare, "--out", os.path.join(tmp, "whole.h5"), "--quiet"])
        r = subprocess.run(["sbatch", "--wait", f"--cpus-per-task={slurm.cpus}", "--output",
                            os.path.join(tmp, "whole.log"), "--wrap", whole], env=env, capture_output=True, text=True,
                           timeout=3600)
        single = time.time() - start
        if r.returncode != 0:
            sys.exit(f"the unsharded job failed:\n{r.stdout}\n{r.stderr}\n{slurm.logs()}")
        single_run = sum(t for _, t in ran())
        # the shipped array job: N tasks, one at a time (each asks for every CPU), then the merge
        start = time.time()
        r = subprocess.run([script, "--shards", str(args.shards), "--workdir", os.path.join(tmp, "work"), "--out",
                            os.path.join(tmp, "run.h5"), "--wait", "--sbatch", f"--cpus-per-task={slurm.cpus}",
                            "--", *compare], env=env, capture_output=True, text=True, timeout=3600)
        sharded = time.time() - start
        if r.returncode != 0:
            sys.exit(f"the array job failed:\n{r.stdout}\n{r.stderr}\n{slurm.logs()}")
        runs = ran()
        shard_runs = [t for c, t in runs if c == "compare"]
        merge_run = sum(t for c, t in runs if c == "merge")
        name = "YOLO demo pair" if args.pair == "demo" else "ResNet-50-FPN pair (640x480)"
        print(f"slurm_throughput: {name}, {count} images, {slurm.cpus} CPUs, one task at a time")
        print(f"  unsharded, one task : compare {single_run:6.1f} s; job {single:5.1f} s from submission")
        print(f"  {args.shards} shards            : compares " + " ".join(f"{t:.1f}" for t in shard_runs) +
              f" s, merge {merge_run:.1f} s; job {sharded:5.1f} s from submission")
        print("  (job times include sbatch --wait's polling; the tasks' own times do not)")
        print(f"  N shards on N nodes: {single_run / sum(shard_runs):.2f} of N times one shard's throughput "
              f"(issue 13: >= 0.90), {single_run / (sum(shard_runs) + merge_run):.2f} counting the merge; "
              f"{count / args.shards:.0f} images per shard")


if __name__ == "__main__":
    main()
