#!/usr/bin/python3
"""Measures what INT8 quantization costs and buys and writes docs/results.md.

    /usr/bin/python3 tools/make_results.py [--build build/dev] [--runs 11] [--quick]

Runs only the project's own commands (quantscope-cli quantize, bench and eval) on:
  - the demo Faster R-CNN (tools/weights), its PyTorch FX INT8 counterpart, and two
    INT8 models made here by `quantscope-cli quantize` (all layers; and --keep-float 2),
    calibrated on the FX route's 32 images (tools/make_calib_set.py): size, latency and
    peak memory at batch 1, 2, 4, 32, 64 (320x320), and COCO mAP on the 300-image test
    split of the synthetic traffic scenes;
  - scripted fasterrcnn_resnet50_fpn with random weights (tools/make_models.py frcnn_r50,
    frcnn_r50_fx) at 480x640, FX route and `quantize`: size and latency (accuracy is
    meaningless without weights).
The JSON of every run lands in BUILD/results/, the page in docs/results.md.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = {"size": -67.2, "time": -50.4, "acc": "within 8.2 % (std 3.4 %)"}
MAX_DROP = 0.1  # points of mAP@[.5:.95] on the 32 calibration images, for the mixed-precision route


def sh(*cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def load(path):
    with open(path) as f:
        return json.load(f)


def pct(o, q):
    return 100.0 * (q - o) / o if o else float("nan")


def bench_table(b):
    rows = ["| batch | original ms | INT8 ms | time | peak MiB original | peak MiB INT8 |",
            "|---:|---:|---:|---:|---:|---:|"]
    for r in b["batches"]:
        if not r["measured"]:
            rows.append(f"| {r['batch']} | skipped: {r['skipped']} | | | {r['peak_mib'][0]:.0f} | {r['peak_mib'][1]:.0f} |")
            continue
        o, q = r["median_ms"]
        rows.append(f"| {r['batch']} | {o:.1f} ({r['min_ms'][0]:.1f}–{r['max_ms'][0]:.1f}) | "
                    f"{q:.1f} ({r['min_ms'][1]:.1f}–{r['max_ms'][1]:.1f}) | {pct(o, q):+.1f} % | "
                    f"{r['peak_mib'][0]:.0f} | {r['peak_mib'][1]:.0f} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "dev"))
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer runs and batches (a smoke run)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    cli = os.path.join(build, "app", "cli", "quantscope-cli")
    out = os.path.join(build, "results")
    os.makedirs(out, exist_ok=True)
    weights = os.path.join(ROOT, "tools", "weights")
    models = os.path.join(build, "models")
    data = os.path.join(build, "data")
    runs = "2" if args.quick else str(args.runs)
    demo_batches = "1,2" if args.quick else "1,2,4,32,64"
    r50_batches = "1" if args.quick else "1,2,4"
    threads = str(args.threads)
    sh("cmake", "--build", build, "--target", "quantscope-cli", "demo_data", "bench_models")

    # 0. our own INT8 models, calibrated on the FX route's images
    calib = os.path.join(data, "calib_fx")
    sh(sys.executable, os.path.join(ROOT, "tools", "make_calib_set.py"), "--out", calib)
    demo_float = os.path.join(weights, "demo_frcnn_float.pt")
    demo_fx = os.path.join(weights, "demo_frcnn_int8_fx.pt")
    demo_qs = os.path.join(out, "demo_frcnn_int8_qs.pt")
    demo_mixed = os.path.join(out, "demo_frcnn_int8_qs_maxdrop.pt")
    sh(cli, "quantize", "--model", demo_float, "--calib", calib, "--out", demo_qs, "--threads", threads,
       "--json", os.path.join(out, "demo_quantize.json"), "--quiet")
    sh(cli, "quantize", "--model", demo_float, "--calib-coco", os.path.join(calib, "calib.json"), "--images", calib,
       "--out", demo_mixed, "--threads", threads, "--max-drop", str(MAX_DROP), "--rank-by", "map",
       "--json", os.path.join(out, "demo_quantize_maxdrop.json"), "--quiet")
    r50_float = os.path.join(models, "frcnn_r50_fpn.pt")
    r50_fx = os.path.join(models, "frcnn_r50_fpn_fx_int8.pt")
    r50_qs = os.path.join(out, "frcnn_r50_fpn_int8_qs.pt")
    r50_args = ["--calib", calib, "--calib-images", "4", "--size", "640x480", "--threads", threads, "--quiet"]
    sh(cli, "quantize", "--model", r50_float, "--out", r50_qs, "--json", os.path.join(out, "r50_quantize.json"),
       *r50_args)
    # the float baseline a user deploys (frozen, batch norm folded), and both models as
    # quantize wrote them before its graph speed-ups (--plain-graph): the "before" columns
    r50_fold = os.path.join(out, "frcnn_r50_fpn_folded.pt")
    r50_fold_plain = os.path.join(out, "frcnn_r50_fpn_folded_plain.pt")
    r50_qs_plain = os.path.join(out, "frcnn_r50_fpn_int8_qs_plain.pt")
    sh(cli, "quantize", "--model", r50_float, "--out", r50_fold, "--fold-only", *r50_args)
    sh(cli, "quantize", "--model", r50_float, "--out", r50_fold_plain, "--fold-only", "--plain-graph", *r50_args)
    sh(cli, "quantize", "--model", r50_float, "--out", r50_qs_plain, "--plain-graph", *r50_args)

    # 1. the demo detector: size, latency, memory; 2. its accuracy
    demo_image = os.path.join(weights, "images", "scene_test_0.png")
    routes = {"fx": demo_fx, "qs": demo_qs, "mixed": demo_mixed}
    db, de = {}, {}
    for key, quantized in routes.items():
        path = os.path.join(out, f"demo_bench_{key}.json")
        sh(cli, "bench", "--original", demo_float, "--quantized", quantized, "--image", demo_image, "--batch",
           demo_batches, "--runs", runs, "--threads", threads, "--json", path, "--quiet")
        db[key] = load(path)
        path = os.path.join(out, f"demo_eval_{key}.json")
        sh(cli, "eval", "--original", demo_float, "--quantized", quantized, "--coco",
           os.path.join(data, "annotations", "test.json"), "--images", os.path.join(data, "test"),
           "--threads", threads, "--json", path, "--quiet")
        de[key] = load(path)
    # 3. ResNet-50-FPN Faster R-CNN, random weights, 480x640
    r50_image = os.path.join(out, "r50-480x640.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)).save(r50_image)
    rb = {}
    for key, quantized, baseline in (("fx", r50_fx, None), ("qs", r50_qs, r50_fold),
                                     ("plain", r50_qs_plain, r50_fold_plain)):
        path = os.path.join(out, f"r50_bench_{key}.json")
        sh(cli, "bench", "--original", r50_float, "--quantized", quantized, "--image", r50_image, "--batch",
           r50_batches, "--runs", "3" if not args.quick else "1", "--threads", threads, "--json", path, "--quiet",
           *(["--baseline", baseline] if baseline else []))
        rb[key] = load(path)

    # 4. where the ResNet-50-FPN time goes (one process each, Python profiler): float as
    # built, folded float and our INT8, each before and after the graph speed-ups
    prof = {}
    profiled = (("float", r50_float, 1), ("fold_plain", r50_fold_plain, 1), ("fold", r50_fold, 1),
                ("qs_plain", r50_qs_plain, 1), ("qs", r50_qs, 1), ("fold_plain_b4", r50_fold_plain, 4),
                ("fold_b4", r50_fold, 4), ("qs_plain_b4", r50_qs_plain, 4), ("qs_b4", r50_qs, 4))
    for key, model, batch in profiled:
        if args.quick and batch > 1:
            continue
        path = os.path.join(out, f"r50_profile_{key}.json")
        sh(sys.executable, os.path.join(ROOT, "tools", "profile_model.py"), "--model", model, "--image", r50_image,
           "--threads", threads, "--runs", "1" if args.quick else "3", "--batch", str(batch), "--json", path)
        prof[key] = load(path)

    def profile_table(keys, heads, top=9):
        keys = [k for k in keys if k in prof]
        ops = []
        for key in keys:
            for o_ in prof[key]["ops"][:top]:
                if o_["op"] not in ops and o_["op"] != "forward":
                    ops.append(o_["op"])

        def op_ms(key, op):
            return next((f"{o_['ms']:.0f}" for o_ in prof[key]["ops"] if o_["op"] == op), "")
        return "\n".join(
            ["| op (self CPU time) | " + " | ".join(heads[:len(keys)]) + " |", "|---|" + "---:|" * len(keys)] +
            [f"| `{op}` | " + " | ".join(op_ms(k, op) for k in keys) + " |" for op in ops] +
            ["| all ops | " + " | ".join(f"{prof[k]['total_ms']:.0f}" for k in keys) + " |"])

    # what must stay float: everything but the ops INT8 replaces (convolutions, linear
    # layers, their activations, the residual additions, pooling and upsampling between
    # them), as a share of the folded float pass
    replaced = {"aten::mkldnn_convolution", "aten::convolution", "aten::_convolution", "aten::conv2d",
                "aten::addmm", "aten::linear", "aten::matmul", "aten::clamp_min", "aten::clamp_min_",
                "aten::relu", "aten::relu_", "aten::add_", "aten::max_pool2d", "aten::max_pool2d_with_indices",
                "aten::upsample_nearest2d", "aten::contiguous"}

    def floor(key):
        p = prof[key]
        return sum(o_["ms"] for o_ in p["ops"] if o_["op"] not in replaced) / p["total_ms"]

    def measured_ratio(b, batch, side):  # quantized / (original: side 0, baseline: side 2)
        r = next((r for r in b["batches"] if r["batch"] == batch and r["measured"]), None)
        if r is None:
            return float("nan")
        return r["median_ms"][1] / (r["median_ms"][0] if side == 0 else r["baseline"]["median_ms"])
    ratio_rows = "\n".join(
        f"| {batch} | {measured_ratio(rb['plain'], batch, 0):.3f} | {measured_ratio(rb['plain'], batch, 2):.3f} | "
        f"{measured_ratio(rb['qs'], batch, 0):.3f} | {measured_ratio(rb['qs'], batch, 2):.3f} |"
        for batch in sorted({r["batch"] for r in rb["qs"]["batches"] if r["measured"]}))
    ratio_table = ("| batch | before: INT8 / float as built | before: INT8 / folded | after: INT8 / float as built "
                   "| after: INT8 / folded |\n|---:|---:|---:|---:|---:|\n" + ratio_rows)

    def baseline_line(b):
        rows = [r for r in b["batches"] if r["measured"]]
        return " ".join(f"batch {r['batch']}: {r['baseline']['median_ms']:.1f} ms "
                        f"({r['baseline']['min_ms']:.1f}–{r['baseline']['max_ms']:.1f})" for r in rows)
    profile_b1 = profile_table(("float", "fold_plain", "fold", "qs_plain", "qs"),
                               ["float as built", "folded, before", "folded, after", "INT8, before", "INT8, after"])
    profile_b4 = profile_table(("fold_plain_b4", "fold_b4", "qs_plain_b4", "qs_b4"),
                               ["folded, before", "folded, after", "INT8, before", "INT8, after"])
    floors = {k: floor(k) for k in ("fold_plain", "fold", "fold_plain_b4", "fold_b4") if k in prof}

    train = load(os.path.join(weights, "demo_frcnn_train.json"))
    qrep = {k: load(os.path.join(out, f)) for k, f in
            (("qs", "demo_quantize.json"), ("mixed", "demo_quantize_maxdrop.json"), ("r50", "r50_quantize.json"))}
    kept = [l["name"] for l in qrep["mixed"]["layers"] if not l["quantized_op"]]
    tradeoff_table = "\n".join(
        ["  | layers float | file MB | time ms (first image) | mAP (32 images) | drop |",
         "  |---:|---:|---:|---:|---:|"] +
        [f"  | {t['kept_float']} | {t['file_bytes'] / 1e6:.2f} | {1e3 * t['seconds']:.1f} | {100 * t['map']:.2f} | "
         f"{t['drop_points']:.2f} |" for t in qrep["mixed"]["trade_off"]])

    def first_measured(b):
        return next(r for r in b["batches"] if r["measured"])

    def ratio(b, key):
        if key == "file":
            return b["quantized"]["file_bytes"] / b["original"]["file_bytes"]
        r = first_measured(b)
        if key == "fastest":
            return r["min_ms"][1] / r["min_ms"][0]
        return r["median_ms"][1] / r["median_ms"][0]

    def times(b):
        return f"{ratio(b, 'time'):.3f} ({ratio(b, 'fastest'):.3f})"

    with open("/proc/cpuinfo") as f:
        flags = f.read()
    vnni = " avx512_vnni" in flags or " avx_vnni" in flags
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    o = de["fx"]["original"]["coco"]

    def drop(key):
        return 100 * (o["map"] - de[key]["quantized"]["coco"]["map"])

    names = {"fx": "PyTorch FX INT8 (body only)", "qs": "QuantScope INT8 (all layers)",
             "mixed": f"QuantScope INT8, --max-drop {MAX_DROP}"}

    def class_table(key):
        q = de[key]["quantized"]["coco"]
        return "\n".join(
            f"| {co['name']} | {co['ground_truth']} | {100 * co['ap']:.2f} | {100 * cq['ap']:.2f} | "
            f"{100 * (co['ap'] - cq['ap']):+.2f} | {100 * co['recall']:.2f} | {100 * cq['recall']:.2f} |"
            for co, cq in zip(o["classes"], q["classes"]))

    acc_rows = "\n".join(
        f"| {names[k]} | {100 * de[k]['quantized']['coco']['map']:.2f} | {drop(k):.2f} | "
        f"{100 * de[k]['quantized']['coco']['map50']:.2f} | {100 * de[k]['quantized']['coco']['map75']:.2f} | "
        f"{100 * de[k]['quantized']['coco']['recall']:.2f} | "
        f"{de[k]['per_image']['delta_points_mean']:+.2f} ± {de[k]['per_image']['delta_points_std']:.2f} |"
        for k in routes)
    demo_sections = "\n\n".join(
        f"""### {names[k]}

Sizes: file {db[k]['original']['file_bytes'] / 1e6:.2f} MB → {db[k]['quantized']['file_bytes'] / 1e6:.2f} MB
({db[k]['file_change_percent']:+.1f} %), parameters {db[k]['original']['parameter_bytes'] / 1e6:.2f} MB →
{db[k]['quantized']['parameter_bytes'] / 1e6:.2f} MB. Memory grows by {db[k]['original']['mib_per_image']:.1f} MiB
per image (original) and {db[k]['quantized']['mib_per_image']:.1f} MiB per image (INT8).

{bench_table(db[k])}

| class | objects | AP original | AP INT8 | change | recall original | recall INT8 |
|---|---:|---:|---:|---:|---:|---:|
{class_table(k)}""" for k in routes)
    r50_sections = "\n\n".join(
        f"""### {'PyTorch FX INT8 (body only)' if k == 'fx' else 'QuantScope INT8 (all layers)'}

Sizes: file {rb[k]['original']['file_bytes'] / 1e6:.1f} MB → {rb[k]['quantized']['file_bytes'] / 1e6:.1f} MB
({rb[k]['file_change_percent']:+.1f} %), parameters {rb[k]['original']['parameter_bytes'] / 1e6:.1f} MB →
{rb[k]['quantized']['parameter_bytes'] / 1e6:.1f} MB.

{bench_table(rb[k])}""" for k in ("fx", "qs"))
    folded_b1 = measured_ratio(rb["qs"], 1, 2)

    ratio_b2 = ", ".join(f"{r['median_ms'][1] / r['median_ms'][0]:.3f} at batch {r['batch']}"
                         for r in rb["qs"]["batches"] if r["measured"] and r["batch"] > 1) or "n/a"
    page = f"""# Results: what INT8 quantization costs and buys

Produced by `/usr/bin/python3 tools/make_results.py` (this page is its output; the raw
JSON of every run and the quantized models are in `build/dev/results/`). Machine: {cpu},
{args.threads} threads, LibTorch 1.13 (Debian), quantized engine onednn, OpenBLAS.
Latency: median (min–max) of {runs} runs per model after a warm-up, both models of a pair
interleaved in one `bench` process; ratios are always taken within one run. Memory:
peak RSS of a child process per model and batch size.

Three INT8 routes:
- **PyTorch FX**: PyTorch's own post-training static quantization of the detector's
  backbone body (`tools/train_detector.py`, `tools/make_models.py`), calibrated on 32
  train images (demo) — the reference route.
- **QuantScope**: `quantscope-cli quantize` ([quantize.md](quantize.md)) on the same 32
  calibration images (`tools/make_calib_set.py`): every convolution and linear layer
  (backbone, FPN, RPN head, box head and predictor) in INT8, RoI pooling and NMS float;
  default settings (percentile ranges, per-channel weights, 7-bit activations on this
  CPU: {'yes' if qrep['qs'].get('reduce_range') else 'no'}).
- **QuantScope, --max-drop {MAX_DROP}**: the same, plus mixed precision found by
  `--max-drop {MAX_DROP}` on the 32 calibration images (their boxes come from
  `tools/make_calib_set.py`): layers ranked by the mAP drop each one causes alone
  (`--rank-by map`), then 0, 1, 2, 4, … of the most harmful kept float until the mAP
  drop on those 32 images is ≤ {MAX_DROP} points.
  Kept float: {', '.join(f'`{n}`' for n in kept) or 'none'}. The search it printed:

{tradeoff_table}

## The paper's table, reproduced

| | paper | demo: FX | demo: QuantScope | demo: QuantScope, max-drop | R50-FPN: FX | R50-FPN: QuantScope |
|---|---:|---:|---:|---:|---:|---:|
| model file, int8/float | {1 + PAPER['size'] / 100:.3f} | {ratio(db['fx'], 'file'):.3f} | {ratio(db['qs'], 'file'):.3f} | {ratio(db['mixed'], 'file'):.3f} | {ratio(rb['fx'], 'file'):.3f} | {ratio(rb['qs'], 'file'):.3f} |
| time at batch 1, int8/float: median (fastest) | {1 + PAPER['time'] / 100:.3f} | {times(db['fx'])} | {times(db['qs'])} | {times(db['mixed'])} | {times(rb['fx'])} | {times(rb['qs'])} |
| time at batch 1, int8/float frozen and folded: median | | | | | | {folded_b1:.3f} |
| mAP@[.5:.95] drop (points) | ({PAPER['acc']}) | {drop('fx'):.2f} | {drop('qs'):.2f} | {drop('mixed'):.2f} | (random weights) | (random weights) |

Targets: ResNet-50-FPN file ratio ≤ 0.30, time ratio against the frozen, batch-norm-folded
float model (what a user deploys; `quantize --fold-only`) ≤ 0.45 at batch 1 and ≤ 0.40 at
batch 4; demo mAP drop ≤ 0.3 points and no worse than the FX route. Here: file ratio
{ratio(rb['qs'], 'file'):.3f}, time ratio {folded_b1:.3f} at batch 1 and
{measured_ratio(rb['qs'], 4, 2):.3f} at batch 4 against the folded model
({ratio(rb['qs'], 'time'):.3f} against the model as built); demo drop {drop('qs'):.2f} points
against the FX route's {drop('fx'):.2f} with every layer in INT8. Batch-1 medians of the small demo model are
noisy (a run now and then takes several times longer, see the min–max ranges below:
OpenBLAS's and OpenMP's thread pools oversubscribe two cores, see
[performance.md](performance.md)); the fastest-run ratio is given next to them.

## Demo Faster R-CNN (320×320, trained on the synthetic traffic scenes)

Accuracy on the test split ({de['fx']['per_image']['images']} images, COCO evaluation in C++,
checked against `tools/coco_eval.py` in the tests). Original: mAP@[.5:.95] {100 * o['map']:.2f},
mAP@.5 {100 * o['map50']:.2f}, mAP@.75 {100 * o['map75']:.2f}, AR@100 {100 * o['recall']:.2f}.

| INT8 route | mAP@[.5:.95] | drop | mAP@.5 | mAP@.75 | AR@100 | per-image change (points) |
|---|---:|---:|---:|---:|---:|---:|
{acc_rows}

The per-image change is the mean ± std over images of (INT8 − original) mAP@[.5:.95];
its spread is far larger than the differences between routes, so differences of a few
tenths of a point between routes are within noise.

{demo_sections}

Training: {train['settings']['epochs']} epochs, {train['data']['train_images']} images, {train['seconds']['train'] / 60:.0f} min on 1 thread
(`tools/weights/demo_frcnn_train.json`, loss curve `tools/weights/demo_frcnn_loss.png`).

## ResNet-50-FPN Faster R-CNN (480×640, random weights)

QuantScope calibrated on 4 of the calibration images resized to 640×480
({qrep['r50']['quantized_layers']} layers and {qrep['r50']['quantized_adds']} additions INT8,
{qrep['r50']['float_layers']} float).

{r50_sections}

The QuantScope run also timed the frozen, batch-norm-folded float model (`quantize
--fold-only`, `bench --baseline`) in the same interleaved runs: {baseline_line(rb['qs'])}.

### Before and after the graph speed-ups

`quantize` now rewrites more than the layers ([quantize.md](quantize.md#graph-speed-ups)):
RoI Align runs as aten ops (an `embedding_bag` over a channels-last feature map, parallel
and vectorised), the folded float model takes its input channels-last, and INT8 results
stay quantized through the dicts, lists, loops and branches of the FPN and the RPN head.
The first two are float improvements and apply to `--fold-only` too, so the ratio
against the folded model measures quantization alone. "Before" is the same models written
with `--plain-graph` (the graph as `quantize` wrote it until then), timed in the same way:

{ratio_table}

Where one forward pass spends its time (`tools/profile_model.py`, Python's profiler, the
same image, {threads} threads; self CPU time per op, profiler overhead included), batch 1:

{profile_b1}

Batch 4 (the same image four times):

{profile_b4}

RoI pooling went from torchvision's single-threaded kernel, which reads an NCHW map one
channel at a time, to one `embedding_bag` per level (16 weighted rows of the [H·W, C] map
per output bin): it now costs about a tenth of what it did, in both models. In the INT8
model, the backbone's and the FPN's outputs no longer go through a dequantize and a
requantize each on the way into a dict and out of a loop branch (several passes over tens
of MB each, which at batch 4 ran at memory speed), and the FPN's top-down sums run as
`quantized::add`. With random weights the region proposal network keeps its full quota of
1000 proposals per image, so RoI pooling and the box head's input are as large as they get.

The floor: what must stay float (everything but the convolutions, linear layers and the
ops between them that INT8 replaces), as a share of the folded float pass, is
{', '.join(f"{v:.2f} ({k.replace('_b4', ' batch 4').replace('fold_plain', 'before').replace('fold', 'after')})" for k, v in floors.items())}:
the INT8 model is well above it; what it still spends beyond its convolutions is mostly
quantizing the box head's input (1000 × 12544 values per image) and the float ops of
RoI pooling's result assembly (`zeros` + `index_put_`).

This CPU {'has' if vnni else 'lacks'} VNNI (`grep -o avx512_vnni /proc/cpuinfo`). On a CPU without
it, oneDNN's INT8 convolutions run only about 2× faster than float ones, against about 4×
on a VNNI CPU; the ops around them cost about the same. Run on oneDNN's AVX2 kernels
(`ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell`, on this machine) the same models
measured INT8 / folded 0.51–0.52 at batch 1 and 4, 0.02 above the floor there (the INT8
convolutions at the speed AVX2 allows plus what must stay float: 0.47 of the folded pass):
[quantize.md](quantize.md#graph-speed-ups) has the command, the profile and why the
instruction set bounds the ratio there.

Batches 32 and 64 of this model are left out of the default run: one timed run of batch
32 takes about half a minute per model on two cores. `quantscope-cli bench --batch 32,64`
measures them (and reports a batch that does not fit in memory as skipped).
"""
    with open(os.path.join(ROOT, "docs", "results.md"), "w") as f:
        f.write(page)
    print("wrote docs/results.md")


if __name__ == "__main__":
    sys.exit(main())
