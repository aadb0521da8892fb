#!/usr/bin/python3
"""End-to-end tests of quantscope-cli on real TorchScript models, with the dumps read back
by the real h5dump and h5py.

Models come from tools/make_models.py (built by the `test_models` target); their sidecar
JSON files hold counts made independently in Python (forward hooks before scripting).
"""
import argparse
import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from testutil import METRIC_NAMES, assert_same_run, check_recorded_views, numpy_histogram, wait_for_line
import unittest

import h5py
import numpy as np

ARGS = None



def run(*args, timeout=900, **kw):
    return subprocess.run([ARGS.cli, *args], capture_output=True, text=True, timeout=timeout, **kw)


def model(name):
    path = os.path.join(ARGS.models, name)
    if not os.path.exists(path):
        raise AssertionError(f"test model {path} is missing: build the test_models target")
    return path


def sidecar(name):
    with open(os.path.join(ARGS.models, os.path.splitext(name)[0] + ".json")) as f:
        return json.load(f)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def demo_images():
    return sorted(glob.glob(os.path.join(ARGS.models, "images", "demo_*.png")))


def cpu_has_vnni():
    """Whether oneDNN's INT8 kernels use VNNI here: the CPU has it and ONEDNN_MAX_CPU_ISA (or
    DNNL_MAX_CPU_ISA) does not cap oneDNN below it (as ops::cpuHasVnni decides)."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split() for line in f if line.startswith("flags")), [])
    has = "avx512_vnni" in flags or "avx_vnni" in flags
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if cap == "ALL":
        return has
    if cap.startswith("AVX2_VNNI"):
        return "avx_vnni" in flags
    return has and cap.startswith("AVX512_CORE_")


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="qs-test-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def out(self, name="run.h5"):
        return os.path.join(self.dir, name)

    def subset(self, n=40, extra_images=(), extra_categories=(), extra_annotations=()):
        """The first n images of the demo test split's annotations (and extras), as a file."""
        with open(os.path.join(ARGS.data, "annotations", "test.json")) as f:
            gt = json.load(f)
        keep = {im["id"] for im in gt["images"][:n]}
        gt["images"] = [im for im in gt["images"] if im["id"] in keep] + list(extra_images)
        gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep] + list(extra_annotations)
        gt["categories"] += list(extra_categories)
        path = os.path.join(self.dir, "gt.json")
        with open(path, "w") as f:
            json.dump(gt, f)
        return path

    def assertNoDump(self, path):
        self.assertFalse(os.path.exists(path), f"{path} must not exist after a failure")
        leftovers = glob.glob(path + ".partial*")
        self.assertEqual(leftovers, [], "temporary files left behind")

    def expect_error(self, args, code, *needles, out=None):
        r = run(*args)
        self.assertEqual(r.returncode, code, f"stdout:{r.stdout}\nstderr:{r.stderr}")
        err = r.stderr.strip().splitlines()
        self.assertTrue(err, "an error message is expected")
        for n in needles:
            self.assertIn(n, r.stderr)
        if out:
            self.assertNoDump(out)
        return r

    def base(self, out, original=None, quantized=None, image=None):
        return ["compare", "--original", original or model("demo_cnn_float.pt"),
                "--quantized", quantized or model("demo_cnn_int8.pt"),
                "--image", image or demo_images()[0], "--out", out, "--quiet"]

    def compare(self, original, quantized, images, out, *extra, expect=0):
        args = ["compare", "--original", original, "--quantized", quantized, "--out", out, "--threads", "2"]
        for im in images:
            args += ["--image", im]
        r = run(*args, *extra)
        self.assertEqual(r.returncode, expect, f"exit {r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}")
        return r


class DemoDump(Base):
    """The demo pair: dump structure as documented in docs/dump-format.md."""

    def test_structure_h5py(self):
        out = self.out()
        images = demo_images()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), images, out)
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["format"], "quantscope-dump")
            self.assertEqual(int(f.attrs["version"]), 1)
            self.assertEqual(int(f.attrs["complete"]), 1)
            self.assertEqual(int(f.attrs["image_count"]), len(images))
            ref = sidecar("demo_cnn_float.pt")
            self.assertEqual(int(f.attrs["layer_count"]), ref["conv_calls"])
            self.assertEqual(len(f["layers"]), ref["conv_calls"])
            for i in range(len(images)):
                img = f[f"inputs/{i:04d}/image"]
                self.assertEqual(img.dtype, np.uint8)
                self.assertEqual(img.shape[2], 3)
            for k, name in enumerate(sorted(f["layers"])):
                g = f["layers"][name]
                self.assertEqual(int(g.attrs["index"]), k)
                o, q = g["original"], g["quantized"]
                self.assertEqual(o.dtype, np.float16)
                self.assertEqual(o.shape, q.shape)
                self.assertEqual(o.shape[0], len(images))
                self.assertEqual(list(o.shape[1:]), list(g.attrs["shape"]))
                self.assertEqual(o.chunks[0], 1)  # one image per chunk
                self.assertIsNone(o.compression)
                self.assertEqual(g["abs_diff"].shape, (len(images),) + o.shape[2:])
                self.assertEqual(g["channels/sqnr_db"].shape, (o.shape[1],))
                # metrics recomputed here from the stored values
                a = o[...].astype(np.float64)
                b = q[...].astype(np.float64)
                sqnr = 10 * np.log10((a * a).sum() / ((b - a) ** 2).sum())
                self.assertAlmostEqual(float(g.attrs["sqnr_db"]), sqnr, places=4)
                self.assertAlmostEqual(float(g.attrs["max_abs"]), np.abs(b - a).max(), places=5)
                cos = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
                self.assertAlmostEqual(float(g.attrs["cosine"]), cos, places=6)
                np.testing.assert_allclose(g["abs_diff"][...], np.abs(b - a).mean(axis=1), rtol=1e-5, atol=1e-7)
                self.assertIn("scale", q.attrs)  # quantized output scale is recorded
            out0 = f["outputs/0000"]
            self.assertEqual(out0.attrs["kind"], "logits")
            self.assertEqual(out0["original"].shape, (4,))

    def test_h5dump_reads_it(self):
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], out, "--dtype", "f32")
        r = subprocess.run(["h5dump", "-H", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('GROUP "layers"', r.stdout)
        self.assertIn('GROUP "0000"', r.stdout)
        self.assertIn('DATASET "original"', r.stdout)
        self.assertIn("H5T_IEEE_F32LE", r.stdout)
        r = subprocess.run(["h5dump", "-a", "/format", out], capture_output=True, text=True)
        self.assertIn('"quantscope-dump"', r.stdout)
        # the float16 variant is a plain IEEE half that h5dump can print without plugins
        out16 = self.out("f16.h5")
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], out16, "--gzip", "4")
        r = subprocess.run(["h5dump", "-d", "/layers/0000/quantized", "-c", "1,1,1,4", out16], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("16-bit little-endian floating-point", r.stdout)  # IEEE half, no plugin
        self.assertIn("DATA {", r.stdout)
        with h5py.File(out16) as f:
            self.assertEqual(f["layers/0000/original"].compression, "gzip")

    def test_inspect(self):
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images(), out)
        r = run("inspect", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        sq = [l["sqnr_db"] for l in j["layers"]]
        self.assertEqual(sq, sorted(sq), "worst (lowest SQNR) first")
        self.assertEqual(j["format_version"], 1)
        self.assertEqual(j["models"]["quantized"]["quantized"], True)
        self.assertEqual(j["models"]["original"]["quantized"], False)
        self.assertLess(j["models"]["quantized"]["parameter_bytes"], j["models"]["original"]["parameter_bytes"])
        r = run("inspect", out, "--sort", "mse", "--top", "2", "--json")
        j = json.loads(r.stdout)
        self.assertEqual(len(j["layers"]), 2)
        self.assertGreaterEqual(j["layers"][0]["mse"], j["layers"][1]["mse"])
        r = run("inspect", out, "--top", "3")
        self.assertEqual(r.returncode, 0)
        self.assertIn("SQNR dB", r.stdout)
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.strip().split(" ")[0].isdigit()]), 3)

    def test_inspect_reads_no_dataset(self):
        """Listing layers and metrics must not read activation data: wipe every chunk of
        every activation dataset, and inspect still works (while h5py reading fails)."""
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images(), out, "--gzip", "1")
        before = json.loads(run("inspect", out, "--json").stdout)
        wiped = 0
        with h5py.File(out, "r") as f:
            spans = []
            for k in f["layers"]:
                for side in ("original", "quantized"):
                    dsid = f["layers"][k][side].id
                    for i in range(dsid.get_num_chunks()):
                        info = dsid.get_chunk_info(i)
                        spans.append((info.byte_offset, info.size))
        with open(out, "r+b") as raw:
            for offset, size in spans:
                raw.seek(offset)
                raw.write(b"\xff" * size)
                wiped += size
        self.assertGreater(wiped, 100_000)
        r = run("inspect", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["layers"], before["layers"])
        with h5py.File(out, "r") as f, self.assertRaises(Exception):
            f["layers/0000/original"][...]

    def test_layers_glob_and_linear(self):
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:2], out,
                     "--layers", "features.0", "--layers", "classifier*", "--ops", "conv,linear")
        with h5py.File(out) as f:
            names = sorted(f["layers"][k].attrs["name"] for k in f["layers"])
            # only the selected layers' activations are in the file: nothing under /unmatched
            # (the unselected layers were paired, not unmatched), no other dataset anywhere
            unmatched = {side: list(f["unmatched"][side]) for side in f["unmatched"]}
            activations = []
            f.visititems(lambda name, obj: activations.append(name)
                         if isinstance(obj, h5py.Dataset) and name.split("/")[-1] in ("original", "quantized")
                         and not name.startswith("outputs") and "/histogram/" not in name else None)
            image_count = int(f.attrs["image_count"])
            shapes = {n: f[n].shape[0] for n in activations}
        self.assertEqual(names, ["classifier", "features.0"])
        self.assertEqual(unmatched, {"original": [], "quantized": []})
        self.assertEqual(sorted(activations), ["layers/0000/original", "layers/0000/quantized",
                                               "layers/0001/original", "layers/0001/quantized"])
        self.assertEqual(set(shapes.values()), {image_count})
        self.assertEqual(image_count, 2)
        r = subprocess.run([ARGS.cli, "inspect", out, "--json"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout).get("unmatched", {"original": [], "quantized": []}),
                         {"original": [], "quantized": []})

    def test_tap_correctness(self):
        """A recorded activation equals running the submodules directly in Python."""
        image = demo_images()[0]
        for dtype in ("f32", "f16"):
            out = self.out(f"{dtype}.h5")
            self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), [image], out, "--dtype", dtype)
            r = subprocess.run([sys.executable, ARGS.checker, out, model("demo_cnn_float.pt"),
                                model("demo_cnn_int8.pt"), image, "--exact-int8"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{dtype}:\n{r.stdout}\n{r.stderr}")


class Completeness(Base):
    """Tapped calls equal an independent count made in Python with forward hooks."""

    def count(self, name, image_args):
        out = self.out()
        r = self.compare(model(name), model(name), [], out, *image_args, "--json", "--quiet")
        return json.loads(r.stdout), out

    def test_resnet50_fpn_detector(self):
        ref = sidecar("frcnn_r50_fpn.pt")
        img = os.path.join(self.dir, "r50.png")
        make_image(img, 640, 480)
        j, out = self.count("frcnn_r50_fpn.pt", ["--image", img])
        self.assertEqual(j["original_calls"], ref["conv_calls"])
        with h5py.File(out) as f:
            modules = [f["layers"][k].attrs["module"] for k in f["layers"]]
            names = [f["layers"][k].attrs["name"] for k in f["layers"]]
            self.assertEqual(f["outputs/0000"].attrs["kind"], "detections")
            self.assertEqual(f["outputs/0000/original"].shape[1], 6)
        self.assertEqual(sum(m.startswith("backbone.body.") for m in modules), 53)
        self.assertIn("backbone.body.layer1.0.conv1", modules)
        self.assertEqual(len(set(names)), len(names), "every call has its own name")
        rpn = [n for n in names if n.startswith("rpn.head.conv")]
        self.assertEqual(len(rpn), 5, rpn)  # once per FPN level
        self.assertTrue(all("#" in n for n in rpn))
        # module path of every call, in execution order, as Python's hooks saw it
        self.assertEqual(modules, ref["call_names"])

    def test_mobilenet_v3_fpn_detector_fx_quantized(self):
        ref = sidecar("frcnn_mnv3_fpn.pt")
        img = os.path.join(self.dir, "m.png")
        make_image(img, 320, 320)
        out = self.out()
        r = self.compare(model("frcnn_mnv3_fpn.pt"), model("frcnn_mnv3_fpn_fx_int8.pt"), [img], out, "--json", "--quiet")
        j = json.loads(r.stdout)
        self.assertEqual(j["original_calls"], ref["conv_calls"])
        qref = sidecar("frcnn_mnv3_fpn_fx_int8.pt")
        self.assertEqual(j["quantized_calls"], qref["conv_calls"])
        self.assertGreater(j["layers"], 0.9 * min(j["original_calls"], j["quantized_calls"]))
        with h5py.File(out) as f:
            layers = [f["layers"][k] for k in f["layers"]]
            self.assertEqual([g.attrs["module"] for g in layers], ref["call_names"])
            # names come from weight ownership, so FX-converted modules keep their paths
            self.assertTrue(all(g.attrs["match"] == "path" for g in layers))
            ops = {g.attrs["quantized_op"] for g in layers}
            self.assertTrue(any(op.startswith("quantized::") for op in ops), ops)
            # the same point of the network on both sides: conv + bn + hardswish
            first = layers[0]
            self.assertEqual(first["original"].attrs["epilogue"], "batch_norm+hardswish_")
            self.assertEqual(first["quantized"].attrs["epilogue"], "hardswish")
            self.assertGreater(float(first.attrs["sqnr_db"]), 10.0)

    def test_eager_quantized_resnet18(self):
        ref = sidecar("resnet18_float.pt")
        qref = sidecar("resnet18_int8.pt")
        img = os.path.join(self.dir, "r.png")
        make_image(img, 224, 224)
        out = self.out()
        r = self.compare(model("resnet18_float.pt"), model("resnet18_int8.pt"), [img], out, "--json", "--quiet")
        j = json.loads(r.stdout)
        self.assertEqual(j["original_calls"], ref["conv_calls"])
        self.assertEqual(j["quantized_calls"], qref["conv_calls"])
        self.assertEqual(j["layers"], ref["conv_calls"])
        self.assertEqual(j["unmatched"], [])
        with h5py.File(out) as f:
            sq = [float(f["layers"][k].attrs["sqnr_db"]) for k in f["layers"]]
        self.assertTrue(all(np.isfinite(sq)), sq)

    def test_traced_model(self):
        """Traced and scripted models alike. LibTorch 1.13 keeps no traced input shape in
        the file, so the first image's size is used (documented in docs/cli.md)."""
        ref = sidecar("demo_cnn_traced.pt")
        img = os.path.join(self.dir, "big.png")
        make_image(img, 100, 80)
        out = self.out()
        r = self.compare(model("demo_cnn_traced.pt"), model("demo_cnn_int8.pt"), [img], out, "--json", "--quiet")
        j = json.loads(r.stdout)
        self.assertEqual(j["original_calls"], ref["conv_calls"])
        self.assertEqual(j["layers"], ref["conv_calls"])
        with h5py.File(out) as f:
            self.assertEqual((int(f.attrs["input_width"]), int(f.attrs["input_height"])), (100, 80))
            self.assertEqual([f["layers"][k].attrs["module"] for k in f["layers"]], ref["call_names"])


class Bench(Base):
    def test_sizes_latency_memory_and_skip(self):
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], out)
        js = os.path.join(self.dir, "bench.json")
        r = run("bench", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--image", demo_images()[0], "--batch", "1,2,4096", "--runs", "3", "--threads", "1",
                "--memory-limit-mib", "1500", "--json", js, "--into", out, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("skipped", r.stdout)
        with open(js) as f:
            j = json.load(f)
        sizes = [os.path.getsize(model("demo_cnn_float.pt")), os.path.getsize(model("demo_cnn_int8.pt"))]
        self.assertEqual([j["original"]["file_bytes"], j["quantized"]["file_bytes"]], sizes)
        self.assertAlmostEqual(j["file_change_percent"], 100.0 * (sizes[1] - sizes[0]) / sizes[0], places=6)
        rows = {b["batch"]: b for b in j["batches"]}
        for b in (1, 2):
            self.assertTrue(rows[b]["measured"])
            for side in (0, 1):
                self.assertLessEqual(rows[b]["min_ms"][side], rows[b]["median_ms"][side])
                self.assertLessEqual(rows[b]["median_ms"][side], rows[b]["max_ms"][side])
                self.assertGreater(rows[b]["peak_mib"][side], rows[b]["model_mib"][side] * 0.5)
        self.assertFalse(rows[4096]["measured"])  # 4096 images of 64x64 do not fit in 1.5 GB
        self.assertIn("out of memory", rows[4096]["skipped"])
        with h5py.File(out) as f:  # the dump stays complete and gains /bench
            self.assertEqual(int(f.attrs["complete"]), 1)
            self.assertEqual(list(f["bench/batch"][...]), [1, 2, 4096])
            self.assertAlmostEqual(float(f["bench/median_ms_original"][0]), rows[1]["median_ms"][0], places=3)
        r = run("inspect", out)
        self.assertEqual(r.returncode, 0)
        self.assertIn("batch 4096 latency skipped", r.stdout)

    def test_baseline_is_a_third_model_in_the_same_runs(self):
        js = os.path.join(self.dir, "bench3.json")
        baseline = model("demo_cnn_traced.pt")
        r = run("bench", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--baseline", baseline, "--image", demo_images()[0], "--batch", "1,2", "--runs", "3",
                "--threads", "1", "--json", js, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("q/baseline", r.stdout)
        with open(js) as f:
            j = json.load(f)
        self.assertEqual(j["baseline"]["file_bytes"], os.path.getsize(baseline))
        for row in j["batches"]:
            self.assertTrue(row["measured"])
            b = row["baseline"]
            self.assertLessEqual(b["min_ms"], b["median_ms"])
            self.assertLessEqual(b["median_ms"], b["max_ms"])
            self.assertGreater(b["peak_mib"], 0)
            self.assertAlmostEqual(b["quantized_ratio"], row["median_ms"][1] / b["median_ms"], places=9)
            # the printed table carries the same ratio
            self.assertIn("%.3f" % b["quantized_ratio"], r.stdout)

    def test_bad_batch(self):
        r = run("bench", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--batch", "1,x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--batch", r.stderr)


class Eval(Base):
    """eval against the independent Python COCO evaluator (tools/coco_eval.py) on the
    trained demo detector, plus the bad inputs."""

    def weights(self, name):
        return os.path.join(ARGS.weights, name)

    def run_eval(self, gt, *extra, expect=0):
        js = os.path.join(self.dir, "eval.json")
        dets = os.path.join(self.dir, "dets")
        r = run("eval", "--original", self.weights("demo_frcnn_float.pt"), "--quantized",
                self.weights("demo_frcnn_int8_fx.pt"), "--coco", gt, "--images", os.path.join(ARGS.data, "test"),
                "--json", js, "--save-detections", dets, "--threads", "2", "--quiet", *extra)
        self.assertEqual(r.returncode, expect, f"stdout:{r.stdout}\nstderr:{r.stderr}")
        if expect != 0:
            return r, None, dets
        with open(js) as f:
            return r, json.load(f), dets

    def python_eval(self, gt, dets):
        r = subprocess.run([sys.executable, os.path.join(ARGS.tools, "coco_eval.py"), gt, dets],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_agrees_with_python_within_1e4(self):
        gt = self.subset(40)
        _, ours, dets = self.run_eval(gt)
        for side in ("original", "quantized"):
            ref = self.python_eval(gt, os.path.join(dets, side + ".json"))
            coco = ours[side]["coco"]
            self.assertAlmostEqual(coco["map"], ref["map"], delta=1e-4)
            self.assertAlmostEqual(coco["map50"], ref["map50"], delta=1e-4)
            self.assertAlmostEqual(coco["map75"], ref["map75"], delta=1e-4)
            self.assertAlmostEqual(coco["recall"], ref["mar100"], delta=1e-4)
            for c in coco["classes"]:
                pc = ref["per_class"][c["name"]]
                self.assertAlmostEqual(c["ap"], pc["ap"], delta=1e-4, msg=c["name"])
                self.assertAlmostEqual(c["ap50"], pc["ap50"], delta=1e-4, msg=c["name"])
        # --into stores the figures in a dump, for the GUI's summary
        dump = self.out("frcnn.h5")
        self.compare(self.weights("demo_frcnn_float.pt"), self.weights("demo_frcnn_int8_fx.pt"),
                     [os.path.join(ARGS.data, "test", "000000.png")], dump, "--quiet")
        r = run("eval", "--original", self.weights("demo_frcnn_float.pt"), "--quantized",
                self.weights("demo_frcnn_int8_fx.pt"), "--coco", gt, "--images", os.path.join(ARGS.data, "test"),
                "--into", dump, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(dump) as f:
            self.assertEqual(int(f.attrs["complete"]), 1)
            self.assertAlmostEqual(float(f["eval"].attrs["original_map"]), ours["original"]["coco"]["map"], places=9)
            self.assertEqual(f["eval/quantized_class_ap"].shape, (4,))
            self.assertEqual(f["outputs/0000"].attrs["kind"], "detections")
            files = f["eval"].attrs["per_image_files"].split("\n")
            per_image = {side: f["eval"][side + "_per_image_map"][()] for side in ("original", "quantized")}
        # per-image mAP (the GUI's images table): each image alone, against the Python
        # evaluator on a one-image annotation file
        with open(gt) as fh:
            full = json.load(fh)
        self.assertEqual(len(files), 40)
        self.assertEqual(set(files), {im["file_name"] for im in full["images"]})
        for k in (0, 7, 23):
            image = next(im for im in full["images"] if im["file_name"] == files[k])
            one = dict(full, images=[image], annotations=[a for a in full["annotations"] if a["image_id"] == image["id"]])
            one_gt = os.path.join(self.dir, "one.json")
            with open(one_gt, "w") as fh:
                json.dump(one, fh)
            for side in ("original", "quantized"):
                with open(os.path.join(dets, side + ".json")) as fh:
                    mine = [d for d in json.load(fh) if d["image_id"] == image["id"]]
                one_dets = os.path.join(self.dir, "one_dets.json")
                with open(one_dets, "w") as fh:
                    json.dump(mine, fh)
                self.assertAlmostEqual(per_image[side][k], self.python_eval(one_gt, one_dets)["map"], delta=1e-4,
                                       msg=f"{side} on {files[k]}")
        # the trained demo detector is a real detector
        self.assertGreater(ours["original"]["coco"]["map50"], 0.85)
        self.assertLess(abs(ours["drop"]["map"]), 0.05)
        self.assertEqual(ours["per_image"]["images"], 40)

    def test_images_without_ground_truth_and_unknown_category(self):
        with open(os.path.join(ARGS.data, "annotations", "test.json")) as f:
            first = json.load(f)["images"][40]
        extra_image = dict(first, id=99999)  # a real image, listed without annotations
        bus = {"id": 9, "name": "bus"}
        ann = {"id": 999999, "image_id": 99999, "category_id": 9, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0}
        gt = self.subset(10, [extra_image], [bus], [ann])
        r, ours, _ = self.run_eval(gt)
        self.assertIn("category 9 (bus) was never predicted", r.stderr)
        bus_row = [c for c in ours["original"]["coco"]["classes"] if c["category_id"] == 9][0]
        self.assertEqual(bus_row["ap"], 0.0)
        gt2 = self.subset(10, [extra_image])
        r, ours, _ = self.run_eval(gt2)
        self.assertIn("have no ground truth", r.stderr)
        self.assertEqual(ours["per_image"]["images"], 10)

    def test_bad_annotations(self):
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            f.write('{"images": [ {"id": 1, ')
        r, _, dets = self.run_eval(bad, expect=1)
        self.assertIn("malformed JSON", r.stderr)
        self.assertIn(bad, r.stderr)
        self.assertFalse(os.path.exists(dets))
        missing = self.subset(3, [{"id": 5555, "file_name": "not-there.png", "width": 320, "height": 320}])
        r, _, _ = self.run_eval(missing, expect=1)
        self.assertIn("not-there.png", r.stderr)
        self.assertIn("not found", r.stderr)
        dangling = self.subset(3, extra_annotations=[{"id": 7, "image_id": 424242, "category_id": 1,
                                                      "bbox": [0, 0, 5, 5], "iscrowd": 0}])
        r, _, _ = self.run_eval(dangling, expect=1)
        self.assertIn("image id 424242", r.stderr)

    def test_yolo_v5_and_v8_layouts_decode_alike(self):
        """The same trained YOLO-style weights exported with both output layouts: our C++
        decoder must find the same detections, so the 'drop' is exactly zero."""
        gt = self.subset(30)
        js = os.path.join(self.dir, "yolo.json")
        r = run("eval", "--original", self.weights("demo_yolo_v5.pt"), "--quantized", self.weights("demo_yolo_v8.pt"),
                "--coco", gt, "--images", os.path.join(ARGS.data, "test"), "--json", js, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = load_json(js)
        self.assertAlmostEqual(j["original"]["coco"]["map"], j["quantized"]["coco"]["map"], places=9)
        self.assertEqual(j["original"]["detections"], j["quantized"]["detections"])
        self.assertGreater(j["original"]["coco"]["map50"], 0.6)
        # forcing the wrong layout is caught or changes the result, never silently equal
        r = run("eval", "--original", self.weights("demo_yolo_v5.pt"), "--quantized", self.weights("demo_yolo_v8.pt"),
                "--coco", gt, "--images", os.path.join(ARGS.data, "test"), "--decode", "yolov8", "--json", js, "--quiet")
        self.assertIn(r.returncode, (0, 1), r.stderr)  # an answer or a clean refusal, never a crash
        if r.returncode == 0:
            j = load_json(js)
            self.assertNotAlmostEqual(j["original"]["coco"]["map"], j["quantized"]["coco"]["map"], places=3)
        else:  # refused: naming the model whose output is not that layout
            self.assertIn("demo_yolo_v5.pt", r.stderr)

    def test_classifier_is_not_a_detector(self):
        gt = self.subset(2)
        r = run("eval", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--coco", gt, "--images", os.path.join(ARGS.data, "test"), "--quiet")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not detections", r.stderr)


def conv_edges_fx(module, prefix=""):
    """Data flow among the Conv2d layers of a Python module, by torch.fx: for each conv,
    the convs whose outputs reach its input without passing another conv. An independent
    reference for the edges compare records from the TorchScript graph."""
    import torch
    gm = torch.fx.symbolic_trace(module)
    convs = {n: n.target for n in gm.graph.nodes
             if n.op == "call_module" and isinstance(gm.get_submodule(n.target), torch.nn.Conv2d)}
    edges = {}
    for node, name in convs.items():
        found, seen, stack = set(), set(), list(node.all_input_nodes)
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            if m in convs:
                found.add(prefix + convs[m])
            else:
                stack.extend(m.all_input_nodes)
        edges[prefix + name] = found
    return edges


def dump_edges(path):
    with h5py.File(path) as f:
        names = {int(k): f["layers"][k].attrs["name"] for k in f["layers"]}
        return {names[int(k)]: {names[int(i)] for i in f["layers"][k].attrs.get("inputs", [])}
                for k in f["layers"]}


def numpy_yolo_v8(raw, conf, nms_iou, max_det=300, label_offset=1):
    """The v8 layout decoded as documented (detection.h): best class, score >= conf, greedy
    per-label NMS dropping IoU > nms_iou, highest score first. float32 arithmetic."""
    raw = raw.astype(np.float32)
    scores = raw[4:]
    best = np.argmax(scores, axis=0)
    score = scores[best, np.arange(raw.shape[1])]
    cand = []
    for b in np.nonzero(score >= np.float32(conf))[0]:
        cx, cy, w, h = raw[0, b], raw[1, b], raw[2, b], raw[3, b]
        half_w, half_h = w / np.float32(2), h / np.float32(2)
        cand.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h, score[b], best[b] + label_offset])
    cand.sort(key=lambda d: -d[4])  # stable, as std::stable_sort

    def iou(a, b):
        ix = max(np.float32(0), min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(np.float32(0), min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0
    kept, dropped = [], [False] * len(cand)
    for i, d in enumerate(cand):
        if dropped[i] or len(kept) >= max_det:
            continue
        kept.append(d)
        for j in range(i + 1, len(cand)):
            if not dropped[j] and cand[j][5] == d[5] and iou(d, cand[j]) > nms_iou:
                dropped[j] = True
    return np.array(kept, dtype=np.float64).reshape(-1, 6)


class PerImageHistogramsGraph(Base):
    """What compare records for the GUI's per-image, histogram and graph views, and its
    --decode, each checked against an independent computation."""

    @classmethod
    def setUpClass(cls):
        cls.shared = tempfile.TemporaryDirectory(prefix="qs-views-")
        cls.demo = os.path.join(cls.shared.name, "demo.h5")
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                *sum((["--image", i] for i in demo_images()), []), "--dtype", "f32", "--out", cls.demo, "--quiet")
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.shared.cleanup()

    def test_per_image_metrics_match_numpy(self):
        check_recorded_views(self, self.demo)  # [N, L] metrics and histograms vs numpy
        with h5py.File(self.demo) as f:
            n = int(f.attrs["image_count"])
            self.assertGreater(n, 1)
            stored = {m: f["image_metrics"][m][()] for m in METRIC_NAMES}
            self.assertEqual(stored["sqnr_db"].dtype, np.float64)
        # inspect --json hands the same [N, L] over, with the mean of the layers' SQNRs
        r = run("inspect", self.demo, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        per_image = json.loads(r.stdout)["per_image"]
        self.assertEqual(len(per_image), n)
        for i, row in enumerate(per_image):
            self.assertEqual(row["index"], i)
            self.assertEqual(os.path.basename(row["source"]), os.path.basename(demo_images()[i]))
            np.testing.assert_allclose(row["layers"]["sqnr_db"], stored["sqnr_db"][i], rtol=1e-12)
            finite = stored["sqnr_db"][i][np.isfinite(stored["sqnr_db"][i])]
            self.assertAlmostEqual(row["sqnr_db_mean"], float(np.mean(finite)), places=9)
            self.assertAlmostEqual(row["sqnr_db_min"], float(np.min(stored["sqnr_db"][i])), places=9)
        # the text output lists the worst image first
        r = run("inspect", self.demo)
        worst = min(range(n), key=lambda i: per_image[i]["sqnr_db_mean"])
        lines = r.stdout.splitlines()
        first = lines[lines.index(next(l for l in lines if l.startswith("worst images"))) + 1]
        self.assertIn(os.path.basename(demo_images()[worst]), first)

    def test_histograms_match_numpy_and_sit_on_the_quantization_grid(self):
        with h5py.File(self.demo) as f:
            for k in f["layers"]:
                g = f["layers"][k]
                h = g["histogram"]
                low, width = h.attrs["low"], h.attrs["bin_width"]
                o, q = g["original"][()].astype(np.float64), g["quantized"][()].astype(np.float64)
                scale = g["quantized"].attrs["scale"]
                # (the counts themselves: check_recorded_views in the test above)
                # both sides' values lie inside the bins (no clamping at the ends)
                self.assertGreaterEqual(min(o.min(), q.min()), low)
                self.assertLess(max(o.max(), q.max()), low + width * len(h["original"]))
                # the grid is the quantized tensor's own, and every quantized value falls in
                # the bin centred on its level: rounding shows as spikes, one per level
                np.testing.assert_allclose(np.rint(q / scale) * scale, q, rtol=1e-6, atol=1e-6 * scale)
                self.assertEqual(h.attrs["scale"], scale)
                self.assertEqual(h.attrs["zero_point"], g["quantized"].attrs["zero_point"])
                per_level = round(scale / width)
                self.assertAlmostEqual(scale / width, per_level, places=6)
                full = np.nonzero(h["quantized"][()])[0]
                self.assertTrue(np.all(full % per_level == 0), f"layer {k}: quantized values off the grid")
                # nothing quantized lies beyond what its integer range can hold
                zp, qmin, qmax = h.attrs["zero_point"], h.attrs["quant_min"], h.attrs["quant_max"]
                self.assertGreaterEqual(q.min(), scale * (qmin - zp) - 1e-6 * scale)
                self.assertLessEqual(q.max(), scale * (qmax - zp) + 1e-6 * scale)

    def test_graph_edges_match_torch_fx(self):
        """Residual adds (ResNet-18) and an FPN-like neck with upsampling (the YOLO demo):
        the edges recorded from the TorchScript graph equal torch.fx's data flow."""
        import torch
        import torchvision
        out = self.out("r18.h5")
        r = run("compare", "--original", model("resnet18_float.pt"), "--quantized", model("resnet18_int8.pt"),
                "--image", demo_images()[0], "--size", "64x64", "--out", out, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        reference = conv_edges_fx(torchvision.models.quantization.resnet18(weights=None, quantize=False))
        got = dump_edges(out)
        self.assertEqual(set(got), set(reference))
        self.assertEqual(got, reference)
        self.assertIn("layer1.0.conv1", got["layer1.0.conv2"])
        # the identity path: layer 2's first block reads the sum of every earlier block's
        # last conv and the stem (through the residual adds)
        self.assertEqual(got["layer2.0.conv1"], {"layer1.1.conv2", "layer1.0.conv2", "conv1"})
        self.assertEqual(got["layer2.0.downsample.0"], got["layer2.0.conv1"])

        sys.path.insert(0, ARGS.tools)
        import train_yolo
        out = self.out("yolo.h5")
        r = run("compare", "--original", self.weights("demo_yolo_v8.pt"), "--quantized",
                self.weights("demo_yolo_v8_int8_fx.pt"), "--image", os.path.join(ARGS.data, "test", "000001.png"),
                "--out", out, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        reference = conv_edges_fx(train_yolo.YoloNet(), prefix="net.")
        got = dump_edges(out)
        self.assertEqual(got, reference)
        self.assertTrue(any(len(v) > 1 for v in got.values()), "the neck merges levels")

    def weights(self, name):
        return os.path.join(ARGS.weights, name)

    def test_dumps_made_before_these_sections_still_open(self):
        """A dump without per-image metrics, histograms, edges and sums (an older writer):
        inspect and every GUI tab open it (the views say what is missing)."""
        old = self.out("old.h5")
        shutil.copy(self.demo, old)
        with h5py.File(old, "r+") as f:
            del f["image_metrics"]
            for k in f["layers"]:
                g = f["layers"][k]
                for name in ("histogram", "sums", "channels/sums"):
                    del g[name]
                if "inputs" in g.attrs:
                    del g.attrs["inputs"]
        r = run("inspect", old, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["per_image"], [])
        gui = os.path.join(os.path.dirname(ARGS.cli), "..", "gui", "quantscope")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=self.dir)
        for tab in ("histogram", "graph", "images", "summary"):
            shot = self.out(f"{tab}.png")
            r = subprocess.run([gui, "--screenshot", shot, "--tab", tab, old], capture_output=True, text=True,
                               timeout=120, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.getsize(shot) > 1000)

    def test_decode_yolo_in_compare(self):
        out_auto, out_raw = self.out("auto.h5"), self.out("raw.h5")
        common = ["--original", self.weights("demo_yolo_v8.pt"), "--quantized", self.weights("demo_yolo_v8_int8_fx.pt"),
                  "--image", os.path.join(ARGS.data, "test", "000001.png"), "--quiet"]  # a 320x320 scene
        r = run("compare", *common, "--out", out_auto)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("compare", *common, "--out", out_raw, "--decode", "none")
        self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(out_auto) as fa, h5py.File(out_raw) as fr:
            self.assertEqual(fa["outputs/0000"].attrs["kind"], "detections")
            self.assertEqual(fr["outputs/0000"].attrs["kind"], "raw")
            raw = fr["outputs/0000/original"][()]
            self.assertEqual(raw.shape[0], 8)  # v8: 4 + C rows
            want = numpy_yolo_v8(raw, conf=0.05, nms_iou=0.6)
            got = fa["outputs/0000/original"][()]
            self.assertGreater(len(want), 0)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
            self.assertIn("matches", fa["outputs/0000"])
        # explicit layouts insist: a classifier's logits are not YOLO boxes
        out = self.out("bad.h5")
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--image", demo_images()[0], "--out", out, "--decode", "yolov8")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("demo_cnn_float.pt", r.stderr)
        self.assertNoDump(out)



class Sharding(Base):
    """compare --shard I/N and merge: N shards merge into what one run writes."""

    def scenes(self, count):
        """A folder with the first `count` scenes of the demo test split (320x320)."""
        images = os.path.join(self.dir, "scenes")
        os.makedirs(images)
        for i in range(count):
            shutil.copy(os.path.join(ARGS.data, "test", f"{i:06d}.png"), images)
        return images

    def shards(self, original, quantized, images, n, extra=(), name="shard"):
        paths = []
        for i in range(n):
            out = self.out(f"{name}{i}.h5")
            r = run("compare", "--original", original, "--quantized", quantized, "--images", images,
                    "--shard", f"{i}/{n}", "--out", out, "--quiet", *extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            paths.append(out)
        return paths

    def test_four_shards_merge_into_the_unsharded_run(self):
        # the YOLO demo (detections in the outputs) over 9 scenes: shards of 3, 2, 2, 2 images
        images = self.scenes(9)
        original = os.path.join(ARGS.weights, "demo_yolo_v8.pt")
        quantized = os.path.join(ARGS.weights, "demo_yolo_v8_int8_fx.pt")
        whole = self.out("whole.h5")
        r = run("compare", "--original", original, "--quantized", quantized, "--images", images, "--out", whole, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        parts = self.shards(original, quantized, images, 4)
        with h5py.File(parts[1]) as f:
            self.assertEqual((int(f.attrs["shard_index"]), int(f.attrs["shard_count"]), int(f.attrs["images_total"])), (1, 4, 9))
            self.assertEqual([int(f["inputs"][k].attrs["list_index"]) for k in f["inputs"]], [1, 5])
        merged = self.out("merged.h5")
        r = run("merge", *reversed(parts), "--out", merged, "--quiet")  # any order
        self.assertEqual(r.returncode, 0, r.stderr)
        assert_same_run(self, merged, whole)
        r = run("inspect", merged, "--json")  # a normal dump to every reader
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["per_image"]), 9)

    def test_eval_shards_are_scored_together(self):
        """eval --shard I/2 --into each shard, merged: the merged /eval equals one eval of the
        whole annotation set (COCO mAP exactly, per class, per image)."""
        annotations = self.subset(12)
        images = self.scenes(2)
        original = os.path.join(ARGS.weights, "demo_frcnn_float.pt")
        quantized = os.path.join(ARGS.weights, "demo_frcnn_int8_fx.pt")
        parts = self.shards(original, quantized, images, 2)
        whole = self.out("whole.h5")
        r = run("compare", "--original", original, "--quantized", quantized, "--images", images, "--out", whole, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        common = ["eval", "--original", original, "--quantized", quantized, "--coco", annotations,
                  "--images", os.path.join(ARGS.data, "test"), "--quiet"]
        for target, extra in ((whole, []), (parts[0], ["--shard", "0/2"]), (parts[1], ["--shard", "1/2"])):
            r = run(*common, "--into", target, *extra)
            self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(parts[1]) as f:  # a shard's own figures cover its 6 images only
            self.assertEqual(int(f["eval"].attrs["images"]), 6)
        merged = self.out("merged.h5")
        r = run("merge", *parts, "--out", merged, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(merged) as m, h5py.File(whole) as w:
            a, b = m["eval"], w["eval"]
            self.assertEqual(int(a.attrs["images"]), 12)
            for side in ("original", "quantized"):
                for key in ("map", "map50", "map75", "recall"):
                    self.assertEqual(a.attrs[f"{side}_{key}"], b.attrs[f"{side}_{key}"], f"{side}_{key}")
                np.testing.assert_array_equal(a[f"{side}_class_ap"][()], b[f"{side}_class_ap"][()])
                np.testing.assert_array_equal(a[f"{side}_per_image_map"][()], b[f"{side}_per_image_map"][()])
                rows = lambda d: d[np.lexsort(d.T[::-1])]  # noqa: E731 (same rows, any order)
                np.testing.assert_array_equal(rows(a[f"{side}_detections"][()]), rows(b[f"{side}_detections"][()]))
            self.assertEqual(a.attrs["per_image_files"], b.attrs["per_image_files"])
            self.assertAlmostEqual(a.attrs["per_image_delta_mean"], b.attrs["per_image_delta_mean"], places=12)
        # one shard without its evaluation: refused, not silently dropped
        os.remove(merged)
        bare = self.out("bare1.h5")
        r = run("compare", "--original", original, "--quantized", quantized, "--images", images, "--shard", "1/2",
                "--out", bare, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("merge", parts[0], bare, "--out", merged)
        self.assertEqual(r.returncode, 1)
        self.assertIn("hold an evaluation", r.stderr)
        self.assertNoDump(merged)

    def test_keep_activations_stores_few_images_and_every_metric(self):
        """--keep-activations 3 over 9 YOLO scenes: the first 3 images' activations and maps,
        every image's metrics (equal to the run that keeps all), histograms over every value
        on bins planned from the first image, a much smaller dump, no scratch file left."""
        images = self.scenes(9)
        common = ["compare", "--original", os.path.join(ARGS.weights, "demo_yolo_v8.pt"), "--quantized",
                  os.path.join(ARGS.weights, "demo_yolo_v8_int8_fx.pt"), "--images", images, "--quiet"]
        whole, few = self.out("whole.h5"), self.out("few.h5")
        self.assertEqual(run(*common, "--out", whole).returncode, 0)
        r = run(*common, "--out", few, "--keep-activations", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(glob.glob(os.path.join(self.dir, "*scratch*")), [])
        self.assertLess(os.path.getsize(few), 0.45 * os.path.getsize(whole))
        with h5py.File(few) as a, h5py.File(whole) as b:
            self.assertEqual((int(a.attrs["image_count"]), int(a.attrs["kept_images"])), (9, 3))
            self.assertNotIn("kept_images", b.attrs)  # a whole dump: rows are image_count
            for k in b["layers"]:
                x, y = a["layers"][k], b["layers"][k]
                for name in ("original", "quantized", "abs_diff", "rel_diff", "mean_original", "mean_quantized"):
                    if name in y:
                        np.testing.assert_array_equal(x[name][()], y[name][:3], err_msg=f"{k} {name}")
                for metric in METRIC_NAMES:
                    np.testing.assert_allclose(x.attrs[metric], y.attrs[metric], rtol=1e-12, err_msg=f"{k} {metric}")
                np.testing.assert_allclose(x["channels/sums"][()], y["channels/sums"][()], rtol=1e-12)
                # every value of every image, binned as documented on the stored bins
                h = x["histogram"]
                scale = h.attrs["scale"] if "scale" in h.attrs else None
                for side, grid in (("original", None), ("quantized", scale)):
                    counts = h[side][()]
                    want = numpy_histogram(y[side][()], h.attrs["low"], h.attrs["bin_width"], len(counts), grid)
                    np.testing.assert_array_equal(counts, want, err_msg=f"{k} {side}")
            for metric in METRIC_NAMES:
                np.testing.assert_allclose(a["image_metrics"][metric][()], b["image_metrics"][metric][()], rtol=1e-12)
        r = run("inspect", few, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["per_image"]), 9)
        # usage errors, and merge says why it cannot take such dumps yet
        for bad in ("-1", "some", "3x"):
            self.expect_error([*common, "--out", self.out("bad.h5"), "--keep-activations", bad], 2,
                              "--keep-activations", out=self.out("bad.h5"))
        self.expect_error([*common, "--out", self.out("bad.h5"), "--keep", "worst"], 2, "--keep-activations",
                          out=self.out("bad.h5"))

    def test_streamed_shards_merge_into_the_streamed_run(self):
        """4 shards with --keep-activations 3 (first, then worst) merged equal one run with the
        same options: the same 3 images kept (rows, maps), metrics from sums, histograms
        counted on the bins every shard planned on the list's first image, added exactly.
        Shards with other keep settings are refused."""
        images = self.scenes(9)
        original = os.path.join(ARGS.weights, "demo_yolo_v8.pt")
        quantized = os.path.join(ARGS.weights, "demo_yolo_v8_int8_fx.pt")
        for keep in (("--keep-activations", "3"), ("--keep-activations", "3", "--keep", "worst")):
            whole = self.out("whole.h5")
            r = run("compare", "--original", original, "--quantized", quantized, "--images", images, "--out", whole,
                    "--quiet", *keep)
            self.assertEqual(r.returncode, 0, r.stderr)
            parts = self.shards(original, quantized, images, 4, extra=keep)
            merged = self.out("merged.h5")
            r = run("merge", *reversed(parts), "--out", merged, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            assert_same_run(self, merged, whole)
            with h5py.File(merged) as m:
                self.assertEqual(int(m.attrs["kept_images"]), 3)
                self.assertEqual(m.attrs["kept_selection"], "worst" if "worst" in keep else "first")
            mixed = self.shards(original, quantized, images, 4, extra=("--keep-activations", "2"), name="other")
            self.expect_error(["merge", parts[0], *mixed[1:], "--out", self.out("m.h5")], 1, "--keep-activations",
                              out=self.out("m.h5"))
            for path in (*parts, *mixed, whole, merged):
                os.remove(path)

    def test_keep_worst_and_none(self):
        """--keep-activations 3 --keep worst over 9 YOLO scenes keeps the 3 images of lowest
        mean SQNR over the layers (from the keep-all run's per-image metrics, by numpy), their
        activations and maps in the rows /kept_rows names; --keep-activations none keeps no
        activation and every metric. Both equal the keep-all run's metrics."""
        images = self.scenes(9)
        common = ["compare", "--original", os.path.join(ARGS.weights, "demo_yolo_v8.pt"), "--quantized",
                  os.path.join(ARGS.weights, "demo_yolo_v8_int8_fx.pt"), "--images", images, "--quiet"]
        whole, worst, none = self.out("whole.h5"), self.out("worst.h5"), self.out("none.h5")
        self.assertEqual(run(*common, "--out", whole).returncode, 0)
        r = run(*common, "--out", worst, "--keep-activations", "3", "--keep", "worst")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(*common, "--out", none, "--keep-activations", "none")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(glob.glob(os.path.join(self.dir, "*scratch*")), [])
        with h5py.File(whole) as b:
            sqnr = b["image_metrics"]["sqnr_db"][()]  # [N, L]
            finite = np.where(np.isfinite(sqnr), sqnr, np.nan)
            mean = np.nanmean(finite, axis=1)
            want = sorted(np.argsort(mean, kind="stable")[:3].tolist())
            self.assertNotEqual(want, [0, 1, 2], "the scenes should not be in order of SQNR already")
            with h5py.File(worst) as a:
                self.assertEqual((int(a.attrs["kept_images"]), a.attrs["kept_selection"]), (3, "worst"))
                rows = a["kept_rows"][()].tolist()
                self.assertEqual(sorted(rows), want)
                # the pixels of the kept images only: a data-set run stores no other input
                self.assertEqual(sorted(int(i) for i in a["inputs"] if "image" in a["inputs"][i]), want)
                for i in want:
                    np.testing.assert_array_equal(a["inputs"]["%04d" % i]["image"][()],
                                                  b["inputs"]["%04d" % i]["image"][()])
                for k in b["layers"]:
                    x, y = a["layers"][k], b["layers"][k]
                    for name in ("original", "quantized", "abs_diff", "rel_diff", "mean_original", "mean_quantized"):
                        if name in y:
                            np.testing.assert_array_equal(x[name][()], y[name][()][rows], err_msg=f"{k} {name}")
                    for metric in METRIC_NAMES:
                        np.testing.assert_allclose(x.attrs[metric], y.attrs[metric], rtol=1e-12, err_msg=f"{k} {metric}")
                for metric in METRIC_NAMES:
                    np.testing.assert_allclose(a["image_metrics"][metric][()], b["image_metrics"][metric][()],
                                               rtol=1e-12)
            with h5py.File(none) as a:
                self.assertEqual((int(a.attrs["kept_images"]), a.attrs["kept_selection"]), (0, "first"))
                self.assertEqual(a["kept_rows"].shape, (0,))
                self.assertEqual([i for i in a["inputs"] if "image" in a["inputs"][i]], [])
                self.assertEqual(len(a["inputs"]), 9)  # every image's name and place stay
                for k in b["layers"]:
                    x, y = a["layers"][k], b["layers"][k]
                    self.assertEqual(x["original"].shape, (0, *y["original"].shape[1:]))
                    for metric in METRIC_NAMES:
                        np.testing.assert_allclose(x.attrs[metric], y.attrs[metric], rtol=1e-12, err_msg=f"{k} {metric}")
                np.testing.assert_allclose(a["image_metrics"]["sqnr_db"][()], sqnr, rtol=1e-12)
        self.assertLess(os.path.getsize(none), 0.1 * os.path.getsize(whole))
        # the readers: inspect on both; a kept image's layer export works, another's is refused
        for path in (worst, none):
            r = run("inspect", path, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(json.loads(r.stdout)["per_image"]), 9)
        h5dump = subprocess.run(["h5dump", "-H", "-d", "/kept_rows", worst], capture_output=True, text=True)
        self.assertEqual(h5dump.returncode, 0, h5dump.stderr)
        self.assertIn("( 3 )", h5dump.stdout)

    def test_merge_refuses_what_is_not_one_run(self):
        images = os.path.join(ARGS.models, "images")
        parts = self.shards(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), images, 2)
        out = self.out("merged.h5")
        # another quantized model
        other = self.out("other.h5")
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8_fx.pt"),
                "--images", images, "--shard", "1/2", "--out", other, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect_error(["merge", parts[0], other, "--out", out], 1, other, "quantized model", out=out)
        # other settings
        f32 = self.out("f32.h5")
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--images", images, "--shard", "1/2", "--dtype", "f32", "--out", f32, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect_error(["merge", parts[0], f32, "--out", out], 1, "storage type", out=out)
        # a shard twice, a shard missing, not a shard
        self.expect_error(["merge", parts[0], parts[0], "--out", out], 1, "given twice", out=out)
        three = self.shards(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), images, 3)
        self.expect_error(["merge", three[0], three[2], "--out", out], 1, "shard 1/3", "missing", out=out)
        whole = self.out("whole.h5")
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images(), whole)
        self.expect_error(["merge", whole, parts[1], "--out", out], 1, "not a shard", out=out)
        # bad --shard
        for bad in ("2/2", "-1/2", "1", "a/b", "0/0"):
            self.expect_error(["compare", "--original", model("demo_cnn_float.pt"), "--quantized",
                               model("demo_cnn_int8.pt"), "--images", images, "--shard", bad, "--out", out], 2,
                              "--shard", out=out)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def make_image(path, w, h, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(path)


class Onnx(Base):
    """ONNX import (core/engine/onnximport.cpp): ONNX exports of the demo models, made here with
    torch.onnx.export, compared with the TorchScript models they come from, and every tapped
    layer and the output of the ONNX side checked against OpenCV DNN on the same file."""

    def export(self, source, size, name):
        import torch
        path = self.out(name)
        module = torch.jit.load(source).eval()
        torch.onnx.export(module, (torch.rand(1, 3, *size),), path, opset_version=13, input_names=["image"],
                          output_names=["out"])
        return path

    @staticmethod
    def onnx_nodes(path):
        """layer path (as QuantScope names it) -> ONNX node name, for the Conv nodes."""
        import onnx
        nodes = {}
        for n in onnx.load(path).graph.node:
            if n.op_type == "Conv":
                nodes[".".join(p for p in n.name.split("/")[1:-1])] = n.name
        return nodes

    def run_graph(self, name, nodes, inits, out_shape, opsets=(("", 13),), extra=()):
        """A one-image compare of a hand-built graph against itself (image [1, 3, 64, 64] in,
        one float output), float32, taps at each layer's own output; returns the dump."""
        import onnx
        from onnx import TensorProto, helper
        x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)
        path = self.out(name + ".onnx")
        onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                                    opset_imports=[helper.make_opsetid(d, v) for d, v in opsets]), path)
        out = self.out(name + ".h5")
        r = run("compare", "--original", path, "--quantized", path, "--image", demo_images()[0], "--out", out,
                "--quiet", "--dtype", "f32", "--decode", "none", "--tap-at", "output", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.stderr = r.stderr
        return out

    def test_onnx_export_reads_as_its_torchscript_model(self):
        """demo CNN and YOLO v8 demo: every layer >= 60 dB against the TorchScript model, paired
        by name where the export kept the module path (PyTorch's exporter names the YOLO
        head's three Sequential convs /net/out3/Conv, not .../0/Conv: those pair by order and
        shape)."""
        cases = [(model("demo_cnn_float.pt"), (64, 64), os.path.join(ARGS.models, "images"), 4, 4),
                 (os.path.join(ARGS.weights, "demo_yolo_v8.pt"), (320, 320), None, 17, 14)]
        for source, size, images, layers, named in cases:
            with self.subTest(source=os.path.basename(source)):
                onnx_path = self.export(source, size, os.path.basename(source).replace(".pt", ".onnx"))
                if images is None:
                    images = os.path.join(self.dir, "scenes")
                    os.makedirs(images, exist_ok=True)
                    for i in range(3):
                        shutil.copy(os.path.join(ARGS.data, "test", f"{i:06d}.png"), images)
                out = self.out(os.path.basename(source) + ".h5")
                r = run("compare", "--original", source, "--quantized", onnx_path, "--images", images, "--out", out,
                        "--quiet", "--dtype", "f32")
                self.assertEqual(r.returncode, 0, r.stderr)
                with h5py.File(out) as f:
                    self.assertEqual(int(f.attrs["layer_count"]), layers)
                    self.assertEqual(f["models"]["quantized"].attrs["format"], "onnx")
                    by_path = 0
                    for k in f["layers"]:
                        g = f["layers"][k]
                        self.assertGreaterEqual(g.attrs["sqnr_db"], 60.0, g.attrs["name"])
                        by_path += g.attrs["match"] == "path"
                        if g.attrs["match"] == "path":
                            self.assertEqual(g.attrs["name"], g.attrs["quantized_name"])
                    self.assertEqual(by_path, named)

    def test_dynamic_axes(self):
        """Exports with dynamic batch and spatial axes: their shape arithmetic (Shape ->
        Gather -> Concat -> Reshape) runs as computed. The demo CNN's export at 96x80 reads
        >= 60 dB against its TorchScript model on every layer; the YOLO v8 demo's runs at
        batch 2 in bench, which the same export without dynamic axes cannot."""
        import torch
        cnn, yolo = self.out("cnn_dynamic.onnx"), self.out("yolo_dynamic.onnx")
        for source, size, path, axes in (
                (model("demo_cnn_float.pt"), (64, 64), cnn, {"image": {0: "n", 2: "h", 3: "w"}, "out": {0: "n"}}),
                (os.path.join(ARGS.weights, "demo_yolo_v8.pt"), (320, 320), yolo,
                 {"image": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "b"}})):
            torch.onnx.export(torch.jit.load(source).eval(), (torch.rand(1, 3, *size),), path, opset_version=13,
                              input_names=["image"], output_names=["out"], dynamic_axes=axes)
        out = self.out("dynamic.h5")
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", cnn, "--image", demo_images()[0],
                "--size", "96x80", "--out", out, "--quiet", "--dtype", "f32")
        self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(out) as f:
            self.assertEqual(len(f["layers"]), 4)
            for k in f["layers"]:
                self.assertGreaterEqual(f["layers"][k].attrs["sqnr_db"], 60.0)
                self.assertEqual(f["layers"][k]["quantized"].shape[-2:], f["layers"][k]["original"].shape[-2:])
            self.assertEqual(f["layers"]["0000"]["quantized"].shape[-2:], (80, 96))
        static = self.export(os.path.join(ARGS.weights, "demo_yolo_v8.pt"), (320, 320), "yolo_static.onnx")
        for path, fits in ((yolo, True), (static, False)):
            js = self.out("dynamic_bench.json")
            r = run("bench", "--original", path, "--quantized", path, "--size", "320x320", "--batch", "2", "--runs",
                    "2", "--warmup", "1", "--json", js, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(js) as f:
                batch = json.load(f)["batches"][0]
            self.assertEqual(batch["skipped"] == "", fits, batch["skipped"])

    def test_every_onnx_layer_against_opencv_dnn(self):
        """The ONNX side of the dump (tapped at the conv's own output, float32) equals OpenCV
        DNN's output of the same Conv node on the same input, and the model output equals
        OpenCV's, for the YOLO v8 demo and the demo CNN."""
        import cv2
        for source, size in ((os.path.join(ARGS.weights, "demo_yolo_v8.pt"), (320, 320)),
                             (model("demo_cnn_float.pt"), (64, 64))):
            with self.subTest(source=os.path.basename(source)):
                onnx_path = self.export(source, size, "m.onnx")
                image = os.path.join(ARGS.data, "test", "000000.png") if size == (320, 320) else demo_images()[0]
                out = self.out("cv.h5")
                r = run("compare", "--original", onnx_path, "--quantized", onnx_path, "--image", image, "--out", out,
                        "--quiet", "--dtype", "f32", "--tap-at", "output", "--decode", "none")
                self.assertEqual(r.returncode, 0, r.stderr)
                nodes = self.onnx_nodes(onnx_path)
                net = cv2.dnn.readNetFromONNX(onnx_path)
                with h5py.File(out) as f:
                    rgb = f["inputs"]["0000"]["image"][()]
                    x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
                    names = [f["layers"][k].attrs["name"] for k in f["layers"]]
                    wanted = ["onnx_node!" + nodes[n] for n in names]
                    net.setInput(x)
                    got = net.forward(wanted + [net.getUnconnectedOutLayersNames()[0]])
                    for k, name, ref in zip(f["layers"], names, got):
                        ours = f["layers"][k]["original"][0]
                        np.testing.assert_allclose(ours, ref[0], rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()),
                                                   err_msg=name)
                    ours = f["outputs"]["0000"]["original"][()]
                    np.testing.assert_allclose(ours.reshape(-1), got[-1].reshape(-1), rtol=1e-4,
                                               atol=1e-4 * float(np.abs(got[-1]).max()))

    def test_qdq_onnx_against_numpy_formulas(self):
        """An INT8 QDQ model written by tools/make_qdq_onnx.py (python3-onnx alone): float ONNX
        vs QDQ ONNX reads like INT8 (finite SQNR, 25-50 dB), and every layer of the QDQ side
        equals a reference that applies ONNX's QuantizeLinear/DequantizeLinear formulas in
        numpy (round half to even, saturation) to the previous layer's recorded output, then
        the graph's Relu/MaxPool and the convolution in PyTorch. Simulated (--onnx-int8
        simulated): with kernels a Conv followed by Relu and the next layer's Q fuses them,
        and test_qdq_kernels_against_numpy checks that form."""
        import onnx
        import torch
        from onnx import numpy_helper
        float_path = self.export(model("demo_cnn_float.pt"), (64, 64), "cnn.onnx")
        qdq = self.out("cnn_qdq.onnx")
        r = subprocess.run([sys.executable, os.path.join(ARGS.tools, "make_qdq_onnx.py"), float_path, qdq,
                            *demo_images()], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.out("qdq.h5")
        r = run("compare", "--original", float_path, "--quantized", qdq, "--image", demo_images()[1], "--out", out,
                "--quiet", "--dtype", "f32", "--tap-at", "output", "--onnx-int8", "simulated")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = onnx.load(qdq)
        init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}  # noqa: E731

        def qdq_numpy(x, scale, zp):
            q = np.clip(np.rint(x / scale) + zp.astype(np.float32), 0, 255)  # rint: half to even
            return ((q - zp.astype(np.float32)) * scale).astype(np.float32)

        with h5py.File(out) as f:
            layers = [f["layers"][k] for k in f["layers"]]
            for g in layers:
                self.assertTrue(25.0 < g.attrs["sqnr_db"] < 50.0, (g.attrs["name"], g.attrs["sqnr_db"]))
            x = torch.from_numpy((f["inputs"]["0000"]["image"][()].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
                                 .copy())
            k = 0
            for n in m.graph.node:
                if n.op_type == "Relu":
                    x = torch.relu(x)
                elif n.op_type == "MaxPool":
                    a = attrs(n)
                    x = torch.nn.functional.max_pool2d(x, a["kernel_shape"], a.get("strides", 1))
                elif n.op_type == "Conv":
                    a = attrs(n)
                    act = n.input[0][:-len("_dq")]
                    xq = qdq_numpy(x.numpy(), init[act + "_scale"], init[act + "_zero_point"])
                    base = n.input[1][:-len("_dq")]
                    w = init[base + "_quantized"].astype(np.float32) * init[base + "_scale"][:, None, None, None]
                    b = torch.from_numpy(init[n.input[2]].copy()) if len(n.input) > 2 else None
                    ref = torch.nn.functional.conv2d(torch.from_numpy(xq), torch.from_numpy(w), b,
                                                     a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])[:2])
                    ours = layers[k]["quantized"][0]
                    np.testing.assert_allclose(ours, ref[0].numpy(), rtol=1e-5,
                                               atol=1e-5 * float(ref.abs().max()), err_msg=layers[k].attrs["name"])
                    x = torch.from_numpy(ours[None].copy())  # the next layer starts from what we recorded
                    k += 1
            self.assertEqual(k, len(layers))

    def test_qdq_kernels_against_numpy(self):
        """INT8 kernels: tools/make_qdq_onnx.py --outputs puts every Conv of the demo CNN's
        export between a DequantizeLinear and a QuantizeLinear (after its Relu). Where the
        layers run as quantized::conv2d_relu, what each records equals ONNX's formulas in
        numpy (Q of the Relu of PyTorch's float convolution of the DQ'd input and weights,
        then DQ) within one quantization level, starting from the previous layer's recorded
        output (and exactly through the MaxPool between); simulated layers equal the same
        formulas before the output Q (rtol 1e-5). --onnx-int8 auto uses kernels with VNNI
        and not on AVX2 kernels (oneDNN capped: these 8-bit inputs could saturate its 16-bit
        sums), kernels forces them, simulated never uses them. Float vs QDQ: 25-50 dB."""
        import onnx
        import torch
        from onnx import numpy_helper
        float_path = self.export(model("demo_cnn_float.pt"), (64, 64), "cnn.onnx")
        qdq = self.out("cnn_qdq_outputs.onnx")
        r = subprocess.run([sys.executable, os.path.join(ARGS.tools, "make_qdq_onnx.py"), float_path, qdq,
                            *demo_images(), "--outputs"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = onnx.load(qdq)
        init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}  # noqa: E731
        by_output = {o: n for n in m.graph.node for o in n.output}
        readers = {}
        for n in m.graph.node:
            for i in n.input:
                readers.setdefault(i, []).append(n)
        convs = [n for n in m.graph.node if n.op_type == "Conv"]
        relus = [readers[c.output[0]][0] for c in convs]
        self.assertEqual({n.op_type for n in relus}, {"Relu"})
        output_dqs = [readers[readers[r.output[0]][0].output[0]][0] for r in relus]  # Relu -> Q -> DQ
        self.assertEqual({n.op_type for n in output_dqs}, {"DequantizeLinear"})
        avx2 = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
        for env, mode, kernels in (({}, "auto", cpu_has_vnni()), (avx2, "auto", False), (avx2, "kernels", True),
                                   ({}, "simulated", False)):
            with self.subTest(env=env, mode=mode):
                out = self.out(f"kernels_{mode}_{len(env)}.h5")
                r = run("compare", "--original", float_path, "--quantized", qdq, "--image", demo_images()[1], "--out",
                        out, "--quiet", "--dtype", "f32", "--onnx-int8", mode, env=dict(os.environ, **env))
                self.assertEqual(r.returncode, 0, r.stderr)
                with h5py.File(out) as f:
                    layers = [f["layers"][k] for k in f["layers"]]
                    self.assertEqual([g.attrs["quantized_op"] for g in layers],
                                     ["quantized::conv2d_relu" if kernels else "aten::conv2d"] * len(convs))
                    if env and kernels:
                        continue  # AVX2 kernels on 8-bit inputs: saturating sums (features.0 reads ~12 dB)
                    for g in layers:
                        self.assertTrue(25.0 < g.attrs["sqnr_db"] < 50.0, (g.attrs["name"], g.attrs["sqnr_db"]))
                    recorded = [g["quantized"][0] for g in layers]
                    names = [g.attrs["name"] for g in layers]
                    rgb = f["inputs"]["0000"]["image"][()]
                values = {m.graph.input[0].name: (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()}
                checked = 0
                for n in m.graph.node:
                    x = [values[i] if i in values else init.get(i) for i in n.input]
                    a = attrs(n)
                    if n.op_type == "QuantizeLinear":
                        y = np.clip(np.rint(x[0] / x[1]) + x[2].astype(np.float32), 0, 255)  # rint: half to even
                    elif n.op_type == "DequantizeLinear":
                        shape = (-1, 1, 1, 1) if x[1].ndim == 1 else ()
                        y = ((x[0].astype(np.float32) - x[2].astype(np.float32).reshape(shape)) *
                             x[1].reshape(shape)).astype(np.float32)
                    elif n.op_type == "Conv":
                        y = torch.nn.functional.conv2d(torch.from_numpy(x[0]), torch.from_numpy(x[1]),
                                                       torch.from_numpy(x[2].copy()), a.get("strides", [1, 1]),
                                                       a.get("pads", [0, 0, 0, 0])[:2]).numpy()
                    elif n.op_type == "Relu":
                        y = np.maximum(x[0], 0)
                    elif n.op_type == "MaxPool":
                        y = torch.nn.functional.max_pool2d(torch.from_numpy(x[0]), a["kernel_shape"],
                                                           a.get("strides", 1)).numpy()
                    else:
                        break  # past the last convolution
                    k = output_dqs.index(n) if kernels and n in output_dqs else relus.index(n) if not kernels and \
                        n in relus else None
                    if k is not None:  # a layer's recorded tensor: checked, and the next one starts from it
                        if kernels:
                            level = float(init[n.input[1]])
                            self.assertLessEqual(float(np.abs(recorded[k] - y[0]).max()), level * (1 + 1e-4), names[k])
                        else:
                            np.testing.assert_allclose(recorded[k], y[0], rtol=1e-5,
                                                       atol=1e-5 * float(np.abs(y).max()), err_msg=names[k])
                        y = recorded[k][None].copy()
                        checked += 1
                    values[n.output[0]] = y
                self.assertEqual(checked, len(convs))

    def test_eval_and_bench_on_onnx(self):
        """eval: the YOLO v8 demo against its ONNX export over 12 annotated scenes gives the
        same COCO mAP (the same detections, up to float rounding); bench reports the .onnx
        file's size and runs it at two batch sizes."""
        annotations = self.subset(12)
        source = os.path.join(ARGS.weights, "demo_yolo_v8.pt")
        onnx_path = self.export(source, (320, 320), "yolo.onnx")
        js = self.out("eval.json")
        r = run("eval", "--original", source, "--quantized", onnx_path, "--coco", annotations, "--images",
                os.path.join(ARGS.data, "test"), "--decode", "yolov8", "--json", js, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(js) as f:
            result = json.load(f)
        self.assertGreater(result["original"]["coco"]["map"], 0.3)
        self.assertAlmostEqual(result["quantized"]["coco"]["map"], result["original"]["coco"]["map"], delta=1e-3)
        r = run("bench", "--original", source, "--quantized", onnx_path, "--batch", "1,2", "--size", "320x320",
                "--json", self.out("bench.json"), "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.out("bench.json")) as f:
            bench = json.load(f)
        text = json.dumps(bench)
        self.assertIn(str(os.path.getsize(onnx_path)), text)  # the .onnx file's own size

    def test_softmax_before_opset_13(self):
        """Softmax before opset 13 normalises over every dimension from `axis` on (the input
        seen as 2-D), from 13 over `axis` alone: the stored output against numpy on the
        recorded conv output, for both opsets."""
        from onnx import TensorProto, helper
        rng = np.random.default_rng(0)
        w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], (rng.standard_normal(108) * 0.3).tolist())
        for opset in (11, 13):
            nodes = [helper.make_node("Conv", ["image", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
                     helper.make_node("Softmax", ["c"], ["out"], name="/softmax", axis=1)]
            out = self.run_graph(f"softmax{opset}", nodes, [w], [1, 4, 64, 64], (("", opset),))
            with h5py.File(out) as f:
                c = f["layers"]["0000"]["original"][0].astype(np.float64)  # [4, 64, 64]
                got = f["outputs"]["0000"]["original"][()].reshape(c.shape)
            flat = c.reshape(-1) if opset == 11 else c
            e = np.exp(flat - flat.max(axis=0 if opset == 13 else None))
            want = (e / e.sum(axis=0 if opset == 13 else None)).reshape(c.shape)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9, err_msg=f"opset {opset}")

    def test_constant_subgraphs_fold_at_import(self):
        """Nodes whose inputs are all constants are computed at import: a ConstantOfShape of
        a constant shape, a Shape -> Gather -> Unsqueeze -> Concat chain feeding a Reshape.
        The stored output equals numpy on the recorded conv output."""
        from onnx import TensorProto, helper
        rng = np.random.default_rng(1)
        inits = [helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], (rng.standard_normal(108) * 0.3).tolist()),
                 helper.make_tensor("shape", TensorProto.INT64, [4], [1, 4, 64, 64]),
                 helper.make_tensor("one", TensorProto.INT64, [], [1]),
                 helper.make_tensor("minus1", TensorProto.INT64, [1], [-1])]
        nodes = [helper.make_node("Conv", ["image", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("ConstantOfShape", ["shape"], ["half"], name="/half",
                                  value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
                 helper.make_node("Add", ["c", "half"], ["a"], name="/add"),
                 helper.make_node("Shape", ["a"], ["s"], name="/shape"),
                 helper.make_node("Gather", ["s", "one"], ["channels"], name="/gather", axis=0),
                 helper.make_node("Unsqueeze", ["channels", "zero_axis"], ["channels1"], name="/unsqueeze"),
                 helper.make_node("Concat", ["batch", "channels1", "minus1"], ["target"], name="/concat", axis=0),
                 helper.make_node("Reshape", ["a", "target"], ["out"], name="/reshape")]
        inits += [helper.make_tensor("zero_axis", TensorProto.INT64, [1], [0]),
                  helper.make_tensor("batch", TensorProto.INT64, [1], [1])]
        out = self.run_graph("fold", nodes, inits, [1, 4, 4096])
        with h5py.File(out) as f:
            c = f["layers"]["0000"]["original"][0]
            got = f["outputs"]["0000"]["original"][()]
        np.testing.assert_allclose(got.reshape(-1), (c + 0.5).reshape(-1), rtol=1e-6)
        self.assertEqual(got.size, 4 * 4096)

    def test_pads_splits_and_transposed_convolutions(self):
        """Pad (reflect and edge on float, the modes ONNX's own tests only try on integers),
        Split, and a ConvTranspose with bias, asymmetric pads and output padding (the path
        torch's conv_transpose2d cannot take alone), after a Conv with auto_pad SAME_UPPER:
        the stored output against numpy (np.pad, and a transposed convolution written out
        as its scatter-add definition) on the recorded conv output."""
        from onnx import TensorProto, helper
        rng = np.random.default_rng(2)
        w = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
        wt = (rng.standard_normal((4, 2, 3, 3)) * 0.3).astype(np.float32)  # [in, out, kH, kW]
        bt = np.array([0.5, -0.25], np.float32)
        inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel().tolist()),
                 helper.make_tensor("b", TensorProto.FLOAT, [4], [0.1, -0.2, 0.3, 0.0]),
                 helper.make_tensor("wt", TensorProto.FLOAT, wt.shape, wt.ravel().tolist()),
                 helper.make_tensor("bt", TensorProto.FLOAT, [2], bt.tolist()),
                 helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 2, 0, 0, 2, 1]),
                 helper.make_tensor("split", TensorProto.INT64, [2], [1, 3])]
        nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"], name="/conv/Conv", auto_pad="SAME_UPPER",
                                  strides=[2, 2]),
                 helper.make_node("Pad", ["c", "pads"], ["reflect"], name="/reflect", mode="reflect"),
                 helper.make_node("Pad", ["c", "pads"], ["edge"], name="/edge", mode="edge"),
                 helper.make_node("Split", ["c", "split"], ["s0", "s1"], name="/split", axis=1),
                 helper.make_node("ConvTranspose", ["c", "wt", "bt"], ["t"], name="/up/ConvTranspose", strides=[2, 2],
                                  pads=[1, 0, 0, 1], output_padding=[1, 1])]
        parts = ["reflect", "edge", "s1", "s0", "t"]
        for name in parts:
            nodes.append(helper.make_node("Flatten", [name], [name + "_flat"], name="/flat_" + name, axis=1))
        nodes.append(helper.make_node("Concat", [p + "_flat" for p in parts], ["out"], name="/concat", axis=1))
        out = self.run_graph("pads", nodes, inits, [1, "n"])
        with h5py.File(out) as f:
            c = f["layers"]["0000"]["original"][0].astype(np.float64)  # [4, 32, 32]
            got = f["outputs"]["0000"]["original"][()].reshape(-1)
            names = [f["layers"][k].attrs["name"] for k in f["layers"]]
        self.assertEqual(c.shape, (4, 32, 32))  # SAME: ceil(64 / 2)
        self.assertTrue(any("up" in str(n) for n in names), names)  # the transposed convolution is a layer
        pad = ((0, 0), (1, 2), (2, 1))
        # ConvTranspose by definition: every input pixel scatters its kernel into the full
        # output (stride 2), then pads crop at the start, output padding extends at the end
        full = np.zeros((2, 2 * 31 + 3, 2 * 31 + 3))
        for ci in range(4):
            for i in range(3):
                for j in range(3):
                    full[:, i:i + 63:2, j:j + 63:2] += wt[ci, :, i, j][:, None, None] * c[ci][None]
        full = np.pad(full, ((0, 0), (0, 1), (0, 1)))  # output_padding 1, 1
        t = full[:, 1:full.shape[1] - 0, 0:full.shape[2] - 1] + bt[:, None, None]  # pads [1, 0, 0, 1]
        want = np.concatenate([np.pad(c, pad, mode="reflect").ravel(), np.pad(c, pad, mode="edge").ravel(),
                               c[1:].ravel(), c[:1].ravel(), t.ravel()])
        self.assertEqual(got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_qoperator_form_against_numpy(self):
        """The QOperator form as ONNX Runtime's quantizer writes it: QuantizeLinear, two
        QLinearConv (uint8 activations, int8 per-channel weights, int32 bias), QLinearAdd and
        QLinearGlobalAveragePool (com.microsoft), DequantizeLinear. Both convolutions are
        tapped layers, and every later step equals numpy's formulas on them: round half to
        even, saturate, dequantize. Simulated, a layer records its float result before
        requantization; as an INT8 kernel (--onnx-int8 auto with VNNI: int8 weights with zero
        points 0), quantized::conv2d, its requantized result, on the output's grid."""
        from onnx import TensorProto, helper
        rng = np.random.default_rng(4)
        f = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])  # noqa: E731
        u8 = lambda name, v: helper.make_tensor(name, TensorProto.UINT8, [], [v])  # noqa: E731
        w1 = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
        w2 = rng.integers(-127, 128, (4, 3, 1, 1)).astype(np.int8)
        ws1 = (rng.uniform(0.5, 1.5, 4) * 0.01).astype(np.float32)
        ws2 = (rng.uniform(0.5, 1.5, 4) * 0.02).astype(np.float32)
        b1 = rng.integers(-2000, 2000, 4).astype(np.int32)
        inits = [f("xs", 1 / 255), u8("xz", 0),
                 helper.make_tensor("w1", TensorProto.INT8, w1.shape, w1.ravel().tolist()),
                 helper.make_tensor("ws1", TensorProto.FLOAT, [4], ws1.tolist()),
                 helper.make_tensor("wz1", TensorProto.INT8, [4], [0] * 4),
                 helper.make_tensor("b1", TensorProto.INT32, [4], b1.tolist()),
                 helper.make_tensor("w2", TensorProto.INT8, w2.shape, w2.ravel().tolist()),
                 helper.make_tensor("ws2", TensorProto.FLOAT, [4], ws2.tolist()),
                 helper.make_tensor("wz2", TensorProto.INT8, [4], [0] * 4),
                 f("ys1", 0.05), u8("yz1", 128), f("ys2", 0.04), u8("yz2", 100), f("ys3", 0.06), u8("yz3", 90),
                 f("ys4", 0.03), u8("yz4", 60)]
        nodes = [helper.make_node("QuantizeLinear", ["image", "xs", "xz"], ["xq"], name="/quant"),
                 helper.make_node("QLinearConv", ["xq", "xs", "xz", "w1", "ws1", "wz1", "ys1", "yz1", "b1"], ["c1"],
                                  name="/conv1/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("QLinearConv", ["xq", "xs", "xz", "w2", "ws2", "wz2", "ys2", "yz2"], ["c2"],
                                  name="/conv2/Conv"),
                 helper.make_node("QLinearAdd", ["c1", "ys1", "yz1", "c2", "ys2", "yz2", "ys3", "yz3"], ["s"],
                                  name="/add", domain="com.microsoft"),
                 helper.make_node("QLinearGlobalAveragePool", ["s", "ys3", "yz3", "ys4", "yz4"], ["g"], name="/pool",
                                  domain="com.microsoft"),
                 helper.make_node("DequantizeLinear", ["g", "ys4", "yz4"], ["gf"], name="/dequant"),
                 helper.make_node("DequantizeLinear", ["s", "ys3", "yz3"], ["sf"], name="/dequant_sum"),
                 helper.make_node("Flatten", ["sf"], ["sf1"], name="/flat_sum"),
                 helper.make_node("Flatten", ["gf"], ["gf1"], name="/flat_pool"),
                 helper.make_node("Concat", ["sf1", "gf1"], ["out"], name="/concat", axis=1)]
        for mode in ("simulated", "auto"):
            with self.subTest(mode=mode):
                self.check_qoperator(nodes, inits, mode, mode == "auto" and cpu_has_vnni())

    def check_qoperator(self, nodes, inits, mode, kernels):
        out = self.run_graph("qop", nodes, inits, [1, 4 * 64 * 64 + 4], (("", 13), ("com.microsoft", 1)),
                             ("--onnx-int8", mode))
        with h5py.File(out) as h:
            self.assertEqual(len(h["layers"]), 2)
            self.assertEqual({h["layers"][k].attrs["op"] for k in h["layers"]},
                             {"quantized::conv2d" if kernels else "aten::conv2d"})
            c1 = h["layers"]["0000"]["original"][0]
            c2 = h["layers"]["0001"]["original"][0]
            got = h["outputs"]["0000"]["original"][()].reshape(-1)
        on_grid = np.abs(c1 / np.float32(0.05) - np.rint(c1 / np.float32(0.05))).max() < 1e-3
        self.assertEqual(on_grid, kernels)
        q = lambda v, s, z: np.clip(np.round(np.float32(v) / np.float32(s)) + z, 0, 255)  # noqa: E731
        dq = lambda v, s, z: ((v - z) * np.float32(s)).astype(np.float32)  # noqa: E731
        s = q(dq(q(c1, 0.05, 128), 0.05, 128) + dq(q(c2, 0.04, 100), 0.04, 100), 0.06, 90)
        g = q(dq(s, 0.06, 90).mean(axis=(1, 2), dtype=np.float32), 0.03, 60)
        # the sum element by element: the same float32 operations, so exactly
        np.testing.assert_array_equal(got[:-4], dq(s, 0.06, 90).ravel())
        self.assertGreater(len(np.unique(s)), 20)  # many levels, not a saturated block
        # the mean's summation order may differ from numpy's: at most one level, rarely
        want = dq(g, 0.03, 60)
        np.testing.assert_allclose(got[-4:], want, atol=0.03 * 1.001)
        self.assertGreaterEqual(int(np.sum(np.abs(got[-4:] - want) < 1e-6)), 3)
        self.assertGreater(float(np.ptp(c1)), 0.5)  # the convolutions did something

    def test_clip_into_kernels(self):
        """A Clip between a convolution and its QuantizeLinear (ReLU6-style, or a bound on one
        side only) becomes a clamp of the kernel's result: within one level of the simulated
        graph, never above the bound. The input is quantized from a Clip to 7 bits, so auto
        picks the kernels on AVX2 kernels too (oneDNN capped), where they are exact."""
        from onnx import TensorProto, helper, numpy_helper
        rng = np.random.default_rng(11)
        f = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])  # noqa: E731
        u8 = lambda name, v: helper.make_tensor(name, TensorProto.UINT8, [], [v])  # noqa: E731
        inits = [f("zero", 0.0), f("one", 1.0), f("six", 0.5), f("cap", 0.3), f("s", 1 / 127), u8("z", 0),
                 f("s1", 0.004), u8("z1", 0), f("s2", 0.003), u8("z2", 100)]
        for k in (1, 2):
            inits += [numpy_helper.from_array(rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), f"w{k}"),
                      numpy_helper.from_array((rng.uniform(0.5, 1.5, 4) * 0.003).astype(np.float32), f"ws{k}"),
                      numpy_helper.from_array(np.zeros(4, np.int8), f"wz{k}"),
                      numpy_helper.from_array(rng.uniform(-0.1, 0.1, 4).astype(np.float32), f"b{k}")]
        nodes = [helper.make_node("Clip", ["image", "zero", "one"], ["x"]),
                 helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        for k, low, top, scale, zero in ((1, "zero", "six", "s1", "z1"), (2, "", "cap", "s2", "z2")):
            nodes += [helper.make_node("DequantizeLinear", [f"w{k}", f"ws{k}", f"wz{k}"], [f"w{k}d"], axis=0),
                      helper.make_node("Conv", ["xd", f"w{k}d", f"b{k}"], [f"c{k}"], name=f"/conv{k}/Conv",
                                       pads=[1, 1, 1, 1]),
                      helper.make_node("Clip", [f"c{k}", low, top], [f"r{k}"]),
                      helper.make_node("QuantizeLinear", [f"r{k}", scale, zero], [f"q{k}"]),
                      helper.make_node("DequantizeLinear", [f"q{k}", scale, zero], [f"d{k}"]),
                      helper.make_node("Flatten", [f"d{k}"], [f"o{k}"])]
        nodes.append(helper.make_node("Concat", ["o1", "o2"], ["out"], axis=1))
        for env in ({}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}):
            outs = {}
            for mode in ("simulated", "auto"):
                with self.subTest(env=env, mode=mode):
                    os.environ.update(env, QS_ONNX_SOURCE="all")
                    try:
                        path = self.run_graph(f"clip_{mode}", nodes, inits, [1, 2 * 4 * 64 * 64],
                                              extra=("--onnx-int8", mode))
                    finally:
                        for key in (*env, "QS_ONNX_SOURCE"):
                            del os.environ[key]
                    imports = self.stderr.count("TorchScript made from the graph")  # each side's
                    self.assertEqual(self.stderr.count("quantized.conv2d("), 2 * imports if mode == "auto" else 0)
                    self.assertEqual(self.stderr.count("torch.clamp(quantized.conv2d("), 2 * imports if mode == "auto" else 0)
                    with h5py.File(path) as h:
                        outs[mode] = h["outputs"]["0000"]["original"][()].reshape(2, -1)
            for k, (level, top) in enumerate(((0.004, 0.5), (0.003, 0.3))):
                self.assertLessEqual(float(np.abs(outs["auto"][k] - outs["simulated"][k]).max()), level * 1.0001)
                self.assertLessEqual(float(outs["auto"][k].max()), top + 1e-6)
                self.assertGreater(float(np.mean(outs["auto"][k] >= top - level)), 0.01)  # the bound bites

    def test_linear_kernels_against_numpy(self):
        """Matrix products as INT8 kernels: Q/DQ -> Gemm (int8 weights per row, float bias,
        transB) -> Relu -> Q/DQ runs as quantized::linear_relu, a MatMul on DQ'd int8
        weights per column -> Q as quantized::linear, and QLinearMatMul with int8 weights as
        quantized::linear; each records its requantized result, which equals numpy's
        formulas (Q of the float product of the DQ'd operands, PyTorch's float) within one
        level, from the recorded input. Simulated, the Gemm records its float product
        (rtol 1e-5) and the others are no tapped layers."""
        from onnx import TensorProto, helper
        rng = np.random.default_rng(7)
        w1 = rng.integers(-127, 128, (16, 192)).astype(np.int8)
        ws1 = (rng.uniform(0.5, 1.5, 16) * 0.004).astype(np.float32)
        b1 = rng.uniform(-0.2, 0.2, 16).astype(np.float32)
        w2 = rng.integers(-127, 128, (16, 5)).astype(np.int8)
        ws2 = (rng.uniform(0.5, 1.5, 5) * 0.01).astype(np.float32)
        w3 = rng.integers(-127, 128, (16, 4)).astype(np.int8)
        t = lambda name, kind, a: helper.make_tensor(name, kind, a.shape, a.ravel().tolist())  # noqa: E731
        f = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])  # noqa: E731
        u8 = lambda name, v: helper.make_tensor(name, TensorProto.UINT8, [], [v])  # noqa: E731
        inits = [t("w1", TensorProto.INT8, w1), t("ws1", TensorProto.FLOAT, ws1), t("wz1", TensorProto.INT8,
                                                                                   np.zeros(16, np.int8)),
                 t("b1", TensorProto.FLOAT, b1), t("w2", TensorProto.INT8, w2), t("ws2", TensorProto.FLOAT, ws2),
                 t("wz2", TensorProto.INT8, np.zeros(5, np.int8)), t("w3", TensorProto.INT8, w3),
                 f("ws3", 0.008), helper.make_tensor("wz3", TensorProto.INT8, [], [0]),
                 f("s0", 1 / 255), u8("z0", 0), f("s1", 0.01), u8("z1", 0), f("s2", 0.02), u8("z2", 120),
                 f("s3", 0.015), u8("z3", 130)]
        nodes = [helper.make_node("AveragePool", ["image"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
                 helper.make_node("Flatten", ["p"], ["x"]),
                 helper.make_node("QuantizeLinear", ["x", "s0", "z0"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s0", "z0"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["w1", "ws1", "wz1"], ["w1d"], axis=0),
                 helper.make_node("Gemm", ["xd", "w1d", "b1"], ["h"], name="/fc1/Gemm", transB=1),
                 helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("QuantizeLinear", ["r", "s1", "z1"], ["rq"]),
                 helper.make_node("DequantizeLinear", ["rq", "s1", "z1"], ["rd"]),
                 helper.make_node("DequantizeLinear", ["w2", "ws2", "wz2"], ["w2d"], axis=1),
                 helper.make_node("MatMul", ["rd", "w2d"], ["m"], name="/fc2/MatMul"),
                 helper.make_node("QuantizeLinear", ["m", "s2", "z2"], ["mq"]),
                 helper.make_node("DequantizeLinear", ["mq", "s2", "z2"], ["md"]),
                 helper.make_node("QLinearMatMul", ["rq", "s1", "z1", "w3", "ws3", "wz3", "s3", "z3"], ["n"],
                                  name="/fc3/QLinearMatMul"),
                 helper.make_node("DequantizeLinear", ["n", "s3", "z3"], ["nd"]),
                 helper.make_node("Concat", ["md", "nd"], ["out"], axis=1)]
        q = lambda v, s, z: np.clip(np.rint(np.float32(v) / np.float32(s)) + z, 0, 255)  # noqa: E731
        dq = lambda v, s, z: ((v - np.float32(z)) * np.float32(s)).astype(np.float32)  # noqa: E731
        matmul = lambda a, b: (torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(  # noqa: E731
            np.ascontiguousarray(b))).numpy()
        import torch
        for mode in ("simulated", "auto"):
            kernels = mode == "auto" and cpu_has_vnni()
            with self.subTest(mode=mode):
                out = self.run_graph(f"linear_{mode}", nodes, inits, [1, 9],
                                     extra=("--onnx-int8", mode, "--ops", "conv,linear"))
                with h5py.File(out) as h:
                    layers = [h["layers"][k] for k in h["layers"]]
                    self.assertEqual([g.attrs["op"] for g in layers],
                                     ["quantized::linear_relu", "quantized::linear", "quantized::linear"]
                                     if kernels else ["aten::linear"])
                    rec = [g["original"][()].reshape(-1) for g in layers]
                    rgb = h["inputs"]["0000"]["image"][()]
                    got = h["outputs"]["0000"]["original"][()].reshape(-1)
                x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1).reshape(3, 8, 8, 8, 8).mean(axis=(2, 4))
                xd = dq(q(x.reshape(1, -1), 1 / 255, 0), 1 / 255, 0)
                h1 = matmul(xd, (w1.astype(np.float32) * ws1[:, None]).T) + b1
                if not kernels:
                    np.testing.assert_allclose(rec[0], h1[0], rtol=1e-5, atol=1e-5 * float(np.abs(h1).max()))
                    continue
                want = [dq(q(np.maximum(h1[0], 0), 0.01, 0), 0.01, 0),
                        dq(q(matmul(rec[0][None], w2.astype(np.float32) * ws2)[0], 0.02, 120), 0.02, 120),
                        dq(q(matmul(rec[0][None], w3.astype(np.float32) * np.float32(0.008))[0], 0.015, 130), 0.015,
                           130)]
                for k, (level, ours, ref) in enumerate(zip((0.01, 0.02, 0.015), rec, want)):
                    self.assertLessEqual(float(np.abs(ours - ref).max()), level * (1 + 1e-4), k)
                    self.assertGreater(len(np.unique(ours)), 3, k)  # not a saturated block
                np.testing.assert_allclose(got, np.concatenate([rec[1], rec[2]]), rtol=1e-6, atol=1e-7)

    def test_maxpool_and_add_kernels(self):
        """Between INT8 layers: a MaxPool (3x3, stride 2, pads 1) from a DQ to a Q of the same
        range runs on the quantized tensor and gives exactly the simulated result, negative
        values at the padded border included; an Add of two DQs -> Relu -> Q runs as
        quantized::add_relu, within one level of the simulated one (QS_ONNX_SOURCE=all shows
        which ran)."""
        from onnx import TensorProto, helper, numpy_helper
        f = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])  # noqa: E731
        u8 = lambda name, v: helper.make_tensor(name, TensorProto.UINT8, [], [v])  # noqa: E731
        inits = [f("half", 0.5), f("s", 1 / 255), u8("z", 128), f("s3", 0.003), u8("z3", 10), f("s4", 0.004),
                 u8("z4", 0), numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "eye")]
        nodes = [helper.make_node("Sub", ["image", "half"], ["c"]),
                 helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
                 helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
                 helper.make_node("MaxPool", ["cd"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                 helper.make_node("QuantizeLinear", ["m", "s", "z"], ["mq"]),
                 helper.make_node("DequantizeLinear", ["mq", "s", "z"], ["md"]),
                 helper.make_node("AveragePool", ["image"], ["e"], kernel_shape=[2, 2], strides=[2, 2]),
                 helper.make_node("QuantizeLinear", ["e", "s3", "z3"], ["eq"]),
                 helper.make_node("DequantizeLinear", ["eq", "s3", "z3"], ["ed"]),
                 helper.make_node("Add", ["md", "ed"], ["a"]),
                 helper.make_node("Relu", ["a"], ["r"]),
                 helper.make_node("QuantizeLinear", ["r", "s4", "z4"], ["rq"]),
                 helper.make_node("DequantizeLinear", ["rq", "s4", "z4"], ["rd"]),
                 helper.make_node("Conv", ["rd", "eye"], ["k"], name="/identity/Conv"),
                 helper.make_node("Flatten", ["md"], ["mf"]),
                 helper.make_node("Flatten", ["k"], ["kf"]),
                 helper.make_node("Concat", ["mf", "kf"], ["out"], axis=1)]
        outs = {}
        for mode in ("simulated", "kernels"):
            os.environ["QS_ONNX_SOURCE"] = "all"
            try:
                path = self.run_graph(f"between_{mode}", nodes, inits, [1, 2 * 3 * 32 * 32],
                                      extra=("--onnx-int8", mode))
            finally:
                del os.environ["QS_ONNX_SOURCE"]
            with h5py.File(path) as h:
                outs[mode] = h["outputs"]["0000"]["original"][()].reshape(-1)
            self.assertEqual("torch.max_pool2d(qx" in self.stderr, mode == "kernels")
            self.assertEqual("quantized.add_relu(" in self.stderr, mode == "kernels")
        half = 3 * 32 * 32
        np.testing.assert_array_equal(outs["kernels"][:half], outs["simulated"][:half])  # the max pooling
        self.assertLess(float(outs["simulated"][:half].min()), -0.1)  # negative values pooled
        self.assertLessEqual(float(np.abs(outs["kernels"][half:] - outs["simulated"][half:]).max()), 0.004 * 1.0001)
        self.assertGreater(len(np.unique(outs["kernels"][half:])), 20)

    def test_quantize_writes_qdq_onnx(self):
        """quantize --out B.onnx from the demo CNN's ONNX export, 7-bit and 8-bit activations
        pinned: a model ONNX's checker accepts, every Conv and the Gemm reading its input
        through QuantizeLinear/DequantizeLinear with the range the report gives (7-bit:
        clipped to it first; that Q/DQ may be the previous layer's result requantized with the
        same range), its result (after the Relu it fused) through a Q/DQ pair with the
        report's output range (7-bit: clipped first too), and its
        weights from int8 initializers (numpy: symmetric per output channel, amax / 127,
        within half a step of the float weights), no float weight left, about a quarter of
        the size; it reads > 20 dB per layer against the float export. Which layers run as
        INT8 kernels: with VNNI every one; on AVX2 kernels (oneDNN capped) every one with
        7-bit activations (inputs clipped to 7 bits), none with 8-bit. A TorchScript model asked for
        ONNX output is refused, nothing written."""
        import onnx
        from onnx import numpy_helper
        calib = self.out("calib")
        os.makedirs(calib)
        for p in demo_images()[:4]:
            shutil.copy(p, calib)
        float_path = self.export(model("demo_cnn_float.pt"), (64, 64), "cnn.onnx")
        floats = {i.name: numpy_helper.to_array(i) for i in onnx.load(float_path).graph.initializer}
        for reduce in ("on", "off"):
            out, report = self.out(f"cnn_{reduce}.onnx"), self.out(f"cnn_{reduce}.json")
            r = run("quantize", "--model", float_path, "--calib", calib, "--out", out, "--json", report,
                    "--reduce-range", reduce, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([p for p in os.listdir(self.dir) if "partial" in p], [])
            m = onnx.load(out)
            onnx.checker.check_model(m)
            with open(report) as f:
                rep = json.load(f)
            self.assertEqual(rep["out"], out)
            by_output = {o: n for n in m.graph.node for o in n.output}
            inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
            layers = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm")]
            self.assertEqual(len(layers), 5)
            scales = sorted(l["input_scale"] for l in rep["layers"])
            entries = {l["name"]: l for l in rep["layers"]}
            seen, clipped, shared_layers = [], {}, []
            for n in layers:
                dq_x, dq_w = by_output[n.input[0]], by_output[n.input[1]]
                self.assertEqual((dq_x.op_type, dq_w.op_type), ("DequantizeLinear", "DequantizeLinear"), n.name)
                q_x = by_output[dq_x.input[0]]
                self.assertEqual(q_x.op_type, "QuantizeLinear")
                seen.append(float(inits[q_x.input[1]]))
                zp = int(inits[q_x.input[2]])
                name = ".".join(n.name.split("/")[1:-1])  # as the report and the dump name it
                shared = q_x.name.endswith("/output/QuantizeLinear")  # the previous layer's result
                clipped[name] = q_x.input[0] in by_output and by_output[q_x.input[0]].op_type == "Clip"
                self.assertEqual(clipped[name], reduce == "on", n.name)
                if reduce == "on":  # clipped to the 7-bit range first
                    clip = by_output[q_x.input[0]]
                    self.assertAlmostEqual(float(inits[clip.input[2]]), (127 - zp) * seen[-1], places=5)
                    self.assertAlmostEqual(float(inits[clip.input[1]]), -zp * seen[-1], places=5)
                shared_layers.append(shared)
                # the result, after the Relu it fused, requantized with the report's output range
                entry = entries[name]
                value = n.output[0]
                readers = [r for r in m.graph.node if value in r.input]
                if entry.get("epilogue_mode") == "fused":
                    self.assertEqual([r.op_type for r in readers], ["Relu"], n.name)
                    value = readers[0].output[0]
                    readers = [r for r in m.graph.node if value in r.input]
                if reduce == "on":
                    self.assertEqual([r.op_type for r in readers], ["Clip"], n.name)
                    readers = [r for r in m.graph.node if readers[0].output[0] in r.input]
                self.assertEqual([r.op_type for r in readers], ["QuantizeLinear"], n.name)
                self.assertAlmostEqual(float(inits[readers[0].input[1]]), entry["output_scale"], delta=1e-6 *
                                       entry["output_scale"])
                self.assertEqual(int(inits[readers[0].input[2]]), entry["output_zero_point"])
                wq, ws = inits[dq_w.input[0]], inits[dq_w.input[1]]
                self.assertEqual(wq.dtype, np.int8)
                original = [v for k, v in floats.items() if k + "_quantized" == dq_w.input[0]]
                self.assertEqual(len(original), 1, dq_w.input[0])
                w = original[0]
                axes = tuple(range(1, w.ndim))  # Conv, and Gemm with transB (PyTorch's export)
                want = np.maximum(np.abs(w).max(axis=axes) / 127, 1e-8)
                np.testing.assert_allclose(ws, want, rtol=1e-6)
                shape = (-1,) + (1,) * (w.ndim - 1)
                self.assertLessEqual(float(np.max(np.abs(wq * ws.reshape(shape) - w) / ws.reshape(shape))), 0.5 + 1e-4)
            np.testing.assert_allclose(sorted(seen), scales, rtol=1e-6)
            self.assertTrue(any(shared_layers))  # conv -> relu -> conv: one pair, not two
            self.assertEqual([k for k in inits if k in floats and floats[k].ndim > 1], [])  # no float weight left
            self.assertLess(os.path.getsize(out), 0.35 * os.path.getsize(float_path))
            self.assertIn("quantscope_quantize", {p.key for p in m.metadata_props})
            dump = self.out(f"cnn_{reduce}.h5")
            r = run("compare", "--original", float_path, "--quantized", out, "--images", calib, "--out", dump,
                    "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            with h5py.File(dump) as f:
                sq = [float(f["layers"][k].attrs["sqnr_db"]) for k in f["layers"]]
                ops = {f["layers"][k].attrs["quantized_name"]: f["layers"][k].attrs["quantized_op"] for k in f["layers"]}
            self.assertEqual(len(sq), 4)
            self.assertGreater(min(sq), 20.0, sq)
            if cpu_has_vnni():
                self.assertTrue(all(op.startswith("quantized::conv2d") for op in ops.values()), ops)
            # AVX2 kernels: auto picks kernels only on inputs clipped to 7 bits
            r = run("compare", "--original", float_path, "--quantized", out, "--image", demo_images()[0], "--out",
                    dump, "--quiet", env=dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2"))
            self.assertEqual(r.returncode, 0, r.stderr)
            with h5py.File(dump) as f:
                ops = {f["layers"][k].attrs["quantized_name"]: f["layers"][k].attrs["quantized_op"] for k in f["layers"]}
            for name, op in ops.items():
                self.assertEqual(op.startswith("quantized::"), reduce == "on" and clipped[name], (name, op))
            if reduce == "on":  # kernels on both CPU kinds: quantizing it again is refused, saying why
                again = self.out("again.pt")
                r = run("quantize", "--model", out, "--calib", calib, "--out", again, "--quiet")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("INT8 already", r.stderr)
                self.assertFalse(os.path.exists(again))
        # layers are named as the dump names them ("features.4", not the import's "features._4")
        out, report = self.out("cnn_excluded.onnx"), self.out("cnn_excluded.json")
        r = run("quantize", "--model", float_path, "--calib", calib, "--out", out, "--json", report, "--exclude",
                "features.4", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual([l["name"] for l in rep["layers"] if not l["quantized_op"]], ["features.4"])
        conv4 = [n for n in onnx.load(out).graph.node if n.name == "/features/4/Conv"][0]
        self.assertIn(conv4.input[1], floats)  # its float weights, read directly
        bad = self.out("from_ts.onnx")
        r = run("quantize", "--model", model("demo_cnn_float.pt"), "--calib", calib, "--out", bad, "--quiet")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("needs an ONNX model", r.stderr)
        self.assertFalse(os.path.exists(bad))

    def test_unsupported_and_malformed_onnx(self):
        import onnx
        from onnx import TensorProto, helper
        image = demo_images()[0]
        # a model with an operator QuantScope does not import: one error naming node and op
        x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 64, 64, 4])
        w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32).tolist())
        graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
                                   helper.make_node("Einsum", ["c"], ["out"], name="mystery", equation="nchw->nhwc")],
                                  "g", [x], [y], [w])
        bad_op = self.out("einsum.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), bad_op)
        out = self.out("x.h5")
        self.expect_error(["compare", "--original", model("demo_cnn_float.pt"), "--quantized", bad_op, "--image", image,
                           "--out", out], 1, bad_op, "node mystery is Einsum", out=out)
        # not a protobuf, and a protobuf that fails ONNX's checker
        garbage = self.out("garbage.onnx")
        with open(garbage, "wb") as f:
            f.write(os.urandom(4096))
        self.expect_error(["compare", "--original", garbage, "--quantized", model("demo_cnn_int8.pt"), "--image",
                           image, "--out", out], 1, garbage, "ONNX", out=out)
        broken = helper.make_graph([helper.make_node("Conv", ["image", "missing"], ["out"], name="conv0")], "g", [x],
                                   [y])
        unchecked = self.out("broken.onnx")
        onnx.save(helper.make_model(broken, opset_imports=[helper.make_opsetid("", 13)]), unchecked)
        self.expect_error(["compare", "--original", unchecked, "--quantized", model("demo_cnn_int8.pt"), "--image",
                           image, "--out", out], 1, unchecked, "not a valid ONNX model", out=out)


class BadInput(Base):

    def test_missing_model(self):
        out = self.out()
        self.expect_error(self.base(out, original="/nonexistent/m.pt"), 1, "/nonexistent/m.pt", out=out)

    def test_corrupt_model(self):
        bad = os.path.join(self.dir, "corrupt.pt")
        with open(model("demo_cnn_float.pt"), "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[: len(data) // 2])  # truncated archive
        out = self.out()
        self.expect_error(self.base(out, quantized=bad), 1, bad, out=out)
        garbage = os.path.join(self.dir, "garbage.pt")
        with open(garbage, "wb") as f:
            f.write(os.urandom(4096))
        self.expect_error(self.base(out, original=garbage), 1, garbage, "TorchScript", out=out)

    def test_not_torchscript(self):
        sd = os.path.join(self.dir, "state_dict.pt")
        subprocess.run([sys.executable, "-c", f"import torch; torch.save({{'w': torch.zeros(3)}}, '{sd}')"], check=True)
        out = self.out()
        self.expect_error(self.base(out, original=sd), 1, sd, "TorchScript", out=out)

    def test_unreadable_image(self):
        bad = os.path.join(self.dir, "notanimage.png")
        with open(bad, "w") as f:
            f.write("hello")
        out = self.out()
        self.expect_error(self.base(out, image=bad), 1, bad, out=out)
        self.expect_error(self.base(out, image="/nonexistent.png"), 1, "/nonexistent.png", out=out)
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        args = self.base(out)
        i = args.index("--image")
        args[i:i + 2] = ["--images", empty]
        self.expect_error(args, 1, empty, out=out)

    def test_different_architectures(self):
        out = self.out()
        img = os.path.join(self.dir, "x.png")
        make_image(img, 64, 64)
        self.expect_error(self.base(out, quantized=model("resnet18_int8.pt"), image=img), 1,
                          "not the same network", out=out)

    def test_unwritable_output(self):
        out = "/nonexistent-dir/run.h5"
        self.expect_error(self.base(out), 1, "/nonexistent-dir", out=out)
        self.expect_error(self.base(self.dir), 1, self.dir)  # a directory

    def test_file_size_limit_acts_as_disk_full(self):
        out = self.out()

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

        args = self.base(out, model("frcnn_r50_fpn.pt"), model("frcnn_r50_fpn.pt"))
        img = os.path.join(self.dir, "r.png")
        make_image(img, 320, 240)
        args[args.index("--image") + 1] = img
        r = subprocess.run([ARGS.cli, *args], capture_output=True, text=True, preexec_fn=limit, timeout=600)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("write failed", r.stderr)
        self.assertNoDump(out)

    def test_interrupt_leaves_no_dump_and_keeps_old_one(self):
        out = self.out()
        with open(out, "w") as f:
            f.write("an earlier result the user saved")
        img = os.path.join(self.dir, "r.png")
        make_image(img, 640, 480)
        args = self.base(out, model("frcnn_r50_fpn.pt"), model("frcnn_r50_fpn.pt"), img)
        args.remove("--quiet")  # progress lines tell when the first forward pass is running
        p = subprocess.Popen([ARGS.cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = wait_for_line(p, lambda line: line.startswith("original:"))
        self.assertIsNotNone(seen, "compare never started its first forward pass")
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 130, stderr)
        self.assertIn("cancelled", stderr)
        with open(out) as f:
            self.assertEqual(f.read(), "an earlier result the user saved")
        self.assertEqual(glob.glob(out + ".partial*"), [])

    def test_missing_torchvision_ops(self):
        out = self.out()
        img = os.path.join(self.dir, "m.png")
        make_image(img, 320, 320)
        env = dict(os.environ, QS_TORCHVISION_LIB="/nonexistent/torchvision_C.so")
        r = subprocess.run([ARGS.cli, *self.base(out, model("frcnn_mnv3_fpn.pt"), model("frcnn_mnv3_fpn.pt"), img)],
                           capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("torchvision", r.stderr)
        self.assertIn("/nonexistent/torchvision_C.so", r.stderr)
        self.assertIn(model("frcnn_mnv3_fpn.pt"), r.stderr)
        self.assertNoDump(out)
        # models that need no torchvision op still work
        r = subprocess.run([ARGS.cli, *self.base(out)], capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_usage_errors(self):
        out = self.out()
        self.expect_error(["compare", "--original", "a.pt"], 2, "required")
        self.expect_error(self.base(out) + ["--dtype", "f64"], 2, "f64")
        self.expect_error(self.base(out) + ["--size", "12by3"], 2, "--size")
        self.expect_error(self.base(out) + ["--mean", "1,2"], 2, "--mean")
        self.expect_error(self.base(out) + ["--engine", "fbgemm"], 2, "fbgemm")
        self.expect_error(["frobnicate"], 2)
        self.assertNoDump(out)

    def test_bad_dumps(self):
        r = run("inspect", "/nonexistent.h5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.h5", r.stderr)
        notdump = os.path.join(self.dir, "other.h5")
        with h5py.File(notdump, "w") as f:
            f["x"] = np.zeros(3)
        r = run("inspect", notdump)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a QuantScope dump", r.stderr)
        good = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], good)
        newer = os.path.join(self.dir, "newer.h5")
        with open(good, "rb") as f, open(newer, "wb") as g:
            g.write(f.read())
        with h5py.File(newer, "a") as f:
            f.attrs["version"] = 7
        r = run("inspect", newer)
        self.assertEqual(r.returncode, 1)
        self.assertIn("version 7 is newer", r.stderr)
        truncated = os.path.join(self.dir, "trunc.h5")
        with open(good, "rb") as f, open(truncated, "wb") as g:
            g.write(f.read()[:2000])
        r = run("inspect", truncated)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(truncated, r.stderr)

    def test_progress_bar_on_a_terminal(self):
        """On a terminal (a pty from script(1)) the progress is a redrawn bar; piped, it is
        plain lines."""
        out = self.out()
        cmd = " ".join([ARGS.cli, "compare", "--original", model("demo_cnn_float.pt"), "--quantized",
                        model("demo_cnn_int8.pt"), "--images", os.path.dirname(demo_images()[0]), "--out", out])
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=300)
        screen = r.stdout.decode("utf-8", "replace")  # bytes: text mode would turn \r into \n
        self.assertEqual(r.returncode, 0, screen)
        self.assertIn("\r\x1b[K", screen)       # redrawn in place
        self.assertIn("[###", screen)           # a bar
        self.assertRegex(screen, r"~\d+s left")  # with the time left
        self.assertRegex(screen, r"image \d+/4, [0-9.]+ images/s")  # and the pace
        os.remove(out)
        piped = self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], out)
        self.assertNotIn("\r", piped.stderr)
        self.assertIn("original: ", piped.stderr)  # plain lines, one per stage and 10 %
        self.assertIn("[image 1/1]", piped.stderr)

    def test_help_everywhere(self):
        for sub in ([], ["compare"], ["inspect"], ["eval"], ["bench"]):
            r = run(*sub, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("--help", r.stdout)


class Robustness(Base):
    """What a hostile user found (docs/robustness.md): outputs that are inputs, outputs
    that are devices, --into under a file size limit, Ctrl-C at any moment, library noise,
    names that are not UTF-8, COCO fields of the wrong type, damaged JPEGs."""

    def weights(self, name):
        return os.path.join(ARGS.weights, name)

    def test_output_that_is_an_input_is_refused_however_spelt(self):
        original = os.path.join(self.dir, "m.pt")
        image = os.path.join(self.dir, "i.png")
        with open(model("demo_cnn_float.pt"), "rb") as f, open(original, "wb") as g:
            g.write(f.read())
        make_image(image, 64, 64)
        before = {p: read_bytes(p) for p in (original, image)}
        sub = os.path.join(self.dir, "sub")
        os.mkdir(sub)
        for out, what in ((os.path.join(sub, "..", "m.pt"), "--original"), (image, "image")):
            r = self.expect_error(self.base(out, original=original, image=image), 2, out, "is also the input " + what)
        link = os.path.join(self.dir, "link.h5")
        os.symlink(original, link)
        self.expect_error(self.base(link, original=original, image=image), 2, "is also the input --original")
        for p, data in before.items():
            self.assertEqual(read_bytes(p), data, p + " was changed")
        self.assertEqual(glob.glob(os.path.join(self.dir, "*.partial*")), [])

    def test_output_that_is_not_a_regular_file_is_left_alone(self):
        fifo = os.path.join(self.dir, "pipe")
        os.mkfifo(fifo)
        self.expect_error(self.base(fifo), 1, fifo, "not a regular file")
        self.assertTrue(os.path.exists(fifo) and not os.path.isfile(fifo), "the FIFO was replaced")

    def test_into_under_a_file_size_limit_names_the_limit_and_leaves_nothing(self):
        dump = self.out("d.h5")
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images(), dump, "--quiet")
        with open(dump, "rb") as f:
            before = f.read()
        limit = len(before) + (4 << 20)  # room for the dump, not for a copy of it plus margin

        def small_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        r = run("bench", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--batch", "1", "--runs", "1", "--warmup", "0", "--into", dump, "--quiet", preexec_fn=small_files)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("file size limit", r.stderr)
        self.assertNotIn("Input/output error", r.stderr)
        self.assertEqual(glob.glob(dump + ".partial*"), [])
        with open(dump, "rb") as f:
            self.assertEqual(f.read(), before, "the dump changed")

    def test_ctrl_c_at_any_moment_exits_130_and_leaves_nothing(self):
        out = self.out()
        args = [ARGS.cli, *self.base(out, self.weights("demo_frcnn_float.pt"), self.weights("demo_frcnn_int8_fx.pt"),
                                     os.path.join(ARGS.weights, "images", "scene_test_0.png"))]
        # Moments from LibTorch's start-up to the forward passes. Before main() runs the
        # default action ends the process by the signal itself (which a shell also
        # reports as 130); after, our handler cancels and exits 130. Either way nothing
        # may be left behind. A run that finishes first is skipped, not failed.
        # (That a signal during the forward passes exits 130 is asserted, on a run that
        # waits for its progress line, by BadInput.test_interrupt_leaves_no_dump_and_keeps_old_one.)
        for delay in (0.0, 0.15, 0.4, 0.8, 1.5, 3.0):
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=300)
            if p.returncode == 0:
                os.remove(out)
                continue
            self.assertIn(p.returncode, (130, -signal.SIGINT), err)
            if p.returncode == 130:
                self.assertIn("cancelled", err)
            self.assertNoDump(out)

    def test_no_library_noise_without_verbose(self):
        out = self.out()
        args = self.base(out, self.weights("demo_frcnn_float.pt"), self.weights("demo_frcnn_int8_fx.pt"),
                         os.path.join(ARGS.weights, "images", "scene_test_0.png"))
        r = run(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")  # no "WARNING: Logging before InitGoogleLogging", no RCNN warning
        os.remove(out)
        r = run(*args, "--verbose")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("quantscope-cli: LibTorch: RCNN always returns", r.stderr)

    def test_names_that_are_not_utf8_still_make_json(self):
        out = self.out()
        self.compare(model("demo_cnn_float.pt"), model("demo_cnn_int8.pt"), demo_images()[:1], out, "--quiet")
        with h5py.File(out, "r+") as f:
            f["layers/0000"].attrs["name"] = np.bytes_(b"features.\xff\xfe")
        r = run("inspect", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        names = [l["name"] for l in json.loads(r.stdout)["layers"]]
        self.assertIn("features.\ufffd\ufffd", names)

    def test_coco_field_of_the_wrong_type_is_named(self):
        with open(os.path.join(ARGS.data, "annotations", "test.json")) as f:
            gt = json.load(f)
        gt["images"] = gt["images"][:2]
        gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in {i["id"] for i in gt["images"]}]
        for where, field, value in (("images", "width", "wide"), ("annotations", "iscrowd", "no"),
                                    ("categories", "name", 7), ("annotations", "bbox", "1,2,3,4")):
            bad = json.loads(json.dumps(gt))
            bad[where][0][field] = value
            path = os.path.join(self.dir, "gt.json")
            with open(path, "w") as f:
                json.dump(bad, f)
            r = run("eval", "--original", self.weights("demo_frcnn_float.pt"), "--quantized",
                    self.weights("demo_frcnn_int8_fx.pt"), "--coco", path, "--images",
                    os.path.join(ARGS.data, "test"), "--quiet")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(path + ": " + where + "[0]", r.stderr)
            self.assertIn('"%s" has the wrong type' % field, r.stderr)
            self.assertNotIn("type_error", r.stderr)

    def test_damaged_jpeg_is_an_error_or_skipped_in_a_directory(self):
        from PIL import Image
        images = os.path.join(self.dir, "images")
        os.mkdir(images)
        good = os.path.join(images, "a_good.jpg")
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, quality=90)
        data = read_bytes(good)
        truncated = os.path.join(images, "b_truncated.jpg")
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        corrupt = os.path.join(images, "c_corrupt.jpg")
        with open(corrupt, "wb") as f:
            f.write(data[: len(data) // 2] + bytes(40) + data[len(data) // 2 + 40:])
        out = self.out()
        self.expect_error(self.base(out, image=truncated), 1, truncated, "damaged JPEG", "Premature end", out=out)
        self.expect_error(self.base(out, image=corrupt), 1, corrupt, "damaged JPEG", out=out)
        r = run("compare", "--original", model("demo_cnn_float.pt"), "--quantized", model("demo_cnn_int8.pt"),
                "--images", images, "--out", out, "--json", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["skipped_images"], 2)
        self.assertEqual(json.loads(r.stdout)["images"], 1)
        for path in (truncated, corrupt):
            self.assertIn("warning: skipping " + path, r.stderr)
        with h5py.File(out) as f:
            self.assertEqual(int(f.attrs["image_count"]), 1)
            self.assertEqual(f["inputs/0000"].attrs["source"], good)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--checker", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--tools", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
