#!/usr/bin/env python3
"""Writes a corpus of damaged dumps from one good dump, for the corpus test and as seeds
for the fuzzer (docs/robustness.md).

Two kinds:
  * crafted: valid HDF5 whose contents contradict each other (each one a case a hostile
    user found: zero-dimensional datasets, shapes that disagree with their layer, counts
    larger than what exists, wrong types, a corrupted activation chunk). Each is listed
    in manifest.json with the words its error message must contain.
  * mutated: byte flips, overwritten blocks and truncations at seeded random offsets.
    Nothing is expected of them but an orderly exit.

usage: make_bad_dumps.py GOOD.h5 OUTDIR [--mutations N] [--seed S]
"""
import argparse
import json
import os
import random
import shutil
import sys

import h5py
import numpy as np


def copy(good, out, name):
    path = os.path.join(out, name + ".h5")
    shutil.copyfile(good, path)
    return path


def replace_dataset(group, name, data, **kwargs):
    if name in group:
        del group[name]
    group.create_dataset(name, data=data, **kwargs)


def first_4d_layer(f):
    for k in sorted(f["layers"]):
        if len(f["layers"][k]["original"].shape) == 4:
            return k
    raise SystemExit("the good dump has no 4-D layer")


def crafted(good, out):
    """(name, expected words in the message) of each crafted case."""
    cases = []

    def case(name, expect, edit):
        path = copy(good, out, name)
        with h5py.File(path, "r+") as f:
            edit(f)
        cases.append({"file": os.path.basename(path), "expect": expect})

    with h5py.File(good, "r") as f:
        k = first_4d_layer(f)
        n = int(f.attrs["image_count"])

    case("scalar_abs_diff", ["layer " + k, "abs_diff has shape []"],
         lambda f: replace_dataset(f["layers"][k], "abs_diff", np.float32(1.0)))
    case("scalar_activation", ["layer " + k, "original has shape []"],
         lambda f: replace_dataset(f["layers"][k], "original", np.float32(1.0)))
    case("smaller_activation", ["layer " + k, "quantized has shape"],
         lambda f: replace_dataset(f["layers"][k], "quantized",
                                   np.zeros((n, 1, 2, 2), np.float16)))

    def shape_larger(f):
        s = f["layers"][k].attrs["shape"].copy()
        s[-1] *= 4
        f["layers"][k].attrs["shape"] = s
    case("shape_attr_larger", ["layer " + k, "but the layer is"], shape_larger)
    case("shape_attr_missing", ["layer " + k, "shape attribute"],
         lambda f: f["layers"][k].attrs.__delitem__("shape"))
    case("image_count_huge", ["image_count"],
         lambda f: f.attrs.__setitem__("image_count", np.int64(10**9)))
    case("image_count_two", ["has shape"],
         lambda f: f.attrs.__setitem__("image_count", np.int64(n + 1)))
    case("image_count_zero", ["image_count"],
         lambda f: f.attrs.__setitem__("image_count", np.int64(0)))
    case("activation_int", ["not float16 or float32"],
         lambda f: replace_dataset(f["layers"][k], "original",
                                   np.zeros(f["layers"][k]["original"].shape, np.int8)))
    case("channels_short", ["channels", "sqnr_db has shape"],
         lambda f: replace_dataset(f["layers"][k]["channels"], "sqnr_db", np.zeros(1, np.float32)))
    case("layer_gap", ["/layers has", "but no layer 0000"],
         lambda f: f["layers"].move(k, "9999"))
    case("layer_missing_side", ["quantized activations are missing"],
         lambda f: f["layers"][k].__delitem__("quantized"))
    case("inputs_extra", ["/inputs holds"],
         lambda f: f["inputs"].copy(f["inputs"]["0000"], "%04d" % n))
    case("input_scalar", ["input 0000", "image has shape []"],
         lambda f: replace_dataset(f["inputs"]["0000"], "image", np.uint8(7)))
    def outputs_bad_rows(f):
        g = f["outputs"]["0000"]
        g.attrs["kind"] = "detections"
        replace_dataset(g, "original", np.zeros((3, 5), np.float32))
    case("outputs_bad_rows", ["outputs 0000", "rows of 6"], outputs_bad_rows)

    def match_out_of_range(f):
        g = f["outputs"]["0000"]
        g.attrs["kind"] = "detections"
        replace_dataset(g, "original", np.zeros((2, 6), np.float32))
        replace_dataset(g, "quantized", np.zeros((2, 6), np.float32))
        replace_dataset(g, "matches", np.array([[0, 7, 0.9, 0.0]], np.float32))
    case("match_out_of_range", ["matches row 0"], match_out_of_range)

    def bench_short(f):
        if "bench" in f:
            del f["bench"]
        g = f.create_group("bench")
        g.create_dataset("batch", data=np.array([1, 2, 4, 32, 64], np.int64))
        for side in ("original", "quantized"):
            g.create_dataset("median_ms_" + side, data=np.ones(2, np.float32))
            g.create_dataset("peak_mib_" + side, data=np.ones(2, np.float32))
    case("bench_short", ["/bench", "median_ms_original has shape [2]"], bench_short)

    def eval_wrong_type(f):
        if "eval" in f:
            del f["eval"]
        g = f.create_group("eval")
        g.attrs["category_ids"] = np.array([1, 2, 3], np.int64)
        g.create_dataset("original_class_ap", data=np.ones(2, np.float32))
    case("eval_short", ["/eval", "original_class_ap"], eval_wrong_type)

    # what compare records for the views: per-image metrics, graph edges, histograms
    case("image_metrics_short", ["/image_metrics", "sqnr_db has shape", "(images x layers)"],
         lambda f: replace_dataset(f["image_metrics"], "sqnr_db", np.zeros((1, 1), np.float64)))
    case("inputs_edge_to_nowhere", ["layer " + k, "its inputs name layer 4242"],
         lambda f: f["layers"][k].attrs.__setitem__("inputs", np.array([4242], np.int64)))
    case("histogram_negative", ["layer " + k, "histogram", "negative count"],
         lambda f: replace_dataset(f["layers"][k]["histogram"], "original",
                                   -np.ones(len(f["layers"][k]["histogram"]["original"]), np.int64)))
    case("histogram_no_width", ["layer " + k, "histogram", "bin_width"],
         lambda f: f["layers"][k]["histogram"].attrs.__setitem__("bin_width", 0.0))

    # compare --keep-activations K: which image each activation row holds
    def kept_rows(rows):
        def edit(f):
            f.attrs["kept_images"] = np.int64(n)
            f.attrs["kept_selection"] = "worst"
            f.create_dataset("kept_rows", data=np.array(rows, np.int64))
        return edit
    case("kept_rows_out_of_range", ["/kept_rows", "names image 4242"], kept_rows(list(range(n - 1)) + [4242]))
    case("kept_rows_too_many", ["/kept_rows names %d images" % (n + 1), "kept_images is %d" % n],
         kept_rows(list(range(n + 1))))

    def corrupt(name, dataset, reads):
        """overwrites 64 bytes of the dataset's first chunk: only its checksum can tell"""
        path = copy(good, out, name)
        with h5py.File(path, "r") as f:
            offset = f["layers"][k][dataset].id.get_chunk_info(0).byte_offset
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(b"\xff" * 64)
        cases.append({"file": os.path.basename(path), "expect": ["checksum mismatch"], "reads": reads})
    corrupt("corrupt_map", "abs_diff", "map")
    corrupt("corrupt_activation", "original", "activation")

    def truncated(fraction):
        path = copy(good, out, "truncated_%02d" % int(fraction * 100))
        with open(path, "r+b") as fh:
            fh.truncate(int(os.path.getsize(path) * fraction))
        cases.append({"file": os.path.basename(path), "expect": [os.path.basename(path)]})
    for fraction in (0.05, 0.5, 0.95):
        truncated(fraction)
    return cases


def mutated(good, out, count, seed):
    rng = random.Random(seed)
    data = open(good, "rb").read()
    names = []
    for i in range(count):
        b = bytearray(data)
        how = rng.choice(["flip", "block", "truncate", "header"])
        if how == "flip":
            for _ in range(rng.randint(1, 16)):
                pos = rng.randrange(len(b))
                b[pos] ^= 1 << rng.randrange(8)
        elif how == "block":
            pos = rng.randrange(len(b))
            size = rng.choice([8, 64, 4096, 65536])
            b[pos:pos + size] = bytes(rng.randrange(256) for _ in range(min(size, 64))) * (size // 64 or 1)
        elif how == "truncate":
            del b[rng.randrange(len(b)):]
        else:  # the superblock and the first object headers, where metadata lives
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(min(len(b), 8192))
                b[pos] = rng.randrange(256)
        name = "mutated_%03d_%s.h5" % (i, how)
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(b)
        names.append(name)
    return names


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("good")
    p.add_argument("out")
    p.add_argument("--mutations", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if os.path.isdir(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    manifest = {"crafted": crafted(a.good, a.out), "mutated": mutated(a.good, a.out, a.mutations, a.seed)}
    with open(os.path.join(a.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print("%d crafted, %d mutated dumps in %s" % (len(manifest["crafted"]), len(manifest["mutated"]), a.out))


if __name__ == "__main__":
    sys.exit(main())
