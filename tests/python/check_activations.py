#!/usr/bin/python3
"""Independent check of the activations stored in a QuantScope HDF5 dump.

Usage:
    /usr/bin/python3 tests/python/check_activations.py DUMP.h5 FLOAT.pt INT8.pt IMAGE.png \
        [--tol-float 1e-4] [--tol-quant-scales 0.51]

For models with the demo-CNN layout (``quant`` stub, ``features`` Sequential,
``dequant``, ``classifier``) this recomputes every convolution output of the
two TorchScript models in Python, running the ``features`` children one by one:

  * float model: the output of each conv block (``--tap-at block``, the
    default: the conv child followed by its BatchNorm and ReLU children) or
    of the conv child itself (``--tap-at output``) is compared with dataset
    ``original``;
  * eager-quantized model: the output of each fused quantized conv child
    (ConvReLU2d, BN and ReLU folded in), dequantized, is compared with
    dataset ``quantized``.

Each model is only ever compared with its own half of the dump, never float
against int8.  The dump layer whose string attribute ``module`` equals the
child path (``features.<name>``) is used; image index 0 of its [N,C,H,W]
datasets is compared.

Tolerances (element-wise):
  float   : |d| <= tol_float * max(1, max|ref|)                (float32 dump)
            |d| <= tol_float * max(1, max|ref|) + |ref|*2^-10 + 6e-5  (float16)
  int8    : |d| <= tol_quant_scales * scale      (+ the float16 term if float16)
            where scale is the quantized module's output scale.

Exit status 0 when every layer passes, 1 on any mismatch, missing layer or
input error (argparse usage errors exit 2).
"""

import argparse
import sys

import numpy as np


def fail_usage(msg):
    print("error: " + msg, file=sys.stderr)
    sys.exit(1)


def load_image(path):
    import torch
    from PIL import Image
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).unsqueeze(0)


def is_conv(script_module):
    name = getattr(script_module, "original_name", "") or ""
    return name.startswith("Conv")   # Conv2d, ConvReLU2d, Conv1d, ...


EPILOGUE = ("BatchNorm", "ReLU", "ReLU6", "Hardswish", "SiLU", "Identity")


def run_features(model, x, quantized, tap_at="block"):
    """Run quant + features children; return [(path, kind, ref ndarray, scale)].

    tap_at="block" (quantscope's default) records a convolution after the batch
    norm and activation children that follow it (what a fused quantized conv
    produces); tap_at="output" records the conv child's own output.
    """
    import torch
    for attr in ("quant", "features"):
        if not hasattr(model, attr):
            fail_usage("model has no submodule %r: not the demo-CNN layout "
                       "(quant -> features -> dequant -> classifier)" % attr)
    records = []
    pending = None  # (path, child) of a conv whose block is still open

    def close(value):
        path, child = pending
        if quantized:
            if not value.is_quantized:
                fail_usage("%s (%s) did not return a quantized tensor"
                           % (path, child.original_name))
            ref = value.dequantize()
            scale = float(child.scale)
        else:
            ref = value
            scale = None
        records.append((path, child.original_name,
                        ref.float().numpy().copy(), scale))

    with torch.no_grad():
        x = model.quant(x)
        if quantized and not x.is_quantized:
            fail_usage("INT8 model's quant stub did not produce a quantized "
                       "tensor (is it an eager-quantized model?)")
        for name, child in model.features.named_children():
            kind = getattr(child, "original_name", "") or ""
            if pending is not None and not (tap_at == "block" and kind.startswith(EPILOGUE)):
                close(x)
                pending = None
            x = child(x)
            if is_conv(child):
                pending = ("features." + name, child)
                if tap_at == "output":
                    close(x)
                    pending = None
        if pending is not None:
            close(x)
    return records


def read_dump_layers(h5):
    """module path -> h5 group (first occurrence); also duplicates list."""
    if "layers" not in h5:
        fail_usage("dump has no /layers group")
    by_module, dups = {}, []
    for key in sorted(h5["layers"].keys()):
        grp = h5["layers"][key]
        mod = grp.attrs.get("module")
        if mod is None:
            continue
        if isinstance(mod, bytes):
            mod = mod.decode("utf-8")
        elif isinstance(mod, np.ndarray):   # 1-element string array
            mod = mod.reshape(-1)[0]
            if isinstance(mod, bytes):
                mod = mod.decode("utf-8")
        mod = str(mod)
        if mod in by_module:
            dups.append(mod)
            continue
        by_module[mod] = grp
    return by_module, dups


def compare(label, path, kind, ref, scale, by_module, dataset, args):
    """Return (ok, message)."""
    grp = by_module.get(path)
    if grp is None:
        return False, "%-6s %-12s MISSING: no dump layer with module=%r" % (
            label, path, path)
    if dataset not in grp:
        return False, "%-6s %-12s MISSING: layer %s has no dataset %r" % (
            label, path, grp.name, dataset)
    ds = grp[dataset]
    if ds.ndim < 1 or ds.shape[0] < 1:
        return False, "%-6s %-12s BAD SHAPE %s in %s/%s" % (
            label, path, ds.shape, grp.name, dataset)
    dtype = ds.dtype
    got = np.asarray(ds[0], dtype=np.float64)
    ref = ref.astype(np.float64)
    if ref.ndim == got.ndim + 1 and ref.shape[0] == 1:
        ref = ref[0]
    if got.shape != ref.shape:
        return False, "%-6s %-12s SHAPE MISMATCH dump %s vs python %s" % (
            label, path, got.shape, ref.shape)
    if not np.all(np.isfinite(got)):
        return False, "%-6s %-12s NON-FINITE values in %s/%s" % (
            label, path, grp.name, dataset)
    absref = np.abs(ref)
    maxref = float(absref.max()) if absref.size else 0.0
    if scale is None:
        base = args.tol_float * max(1.0, maxref)
    else:
        base = args.tol_quant_scales * scale
    if dtype == np.float16:
        tol = base + absref * 2.0 ** -10 + 6e-5
    elif dtype == np.float32 or dtype == np.float64:
        tol = np.full_like(absref, base)
    else:
        return False, "%-6s %-12s UNSUPPORTED dtype %s in %s/%s" % (
            label, path, dtype, grp.name, dataset)
    if scale is not None and args.exact_int8 and dtype == np.float16:
        # the dump's int8 layers are torch's dequantize rounded to float16, exactly
        mismatched = int(np.count_nonzero(got != ref.astype(np.float16).astype(np.float64)))
        if mismatched:
            return False, "%-6s %-12s %d values differ from dequantize().half() (--exact-int8)" % (
                label, path, mismatched)
    diff = np.abs(got - ref)
    maxdiff = float(diff.max()) if diff.size else 0.0
    ratio = diff / tol
    worst = int(np.argmax(ratio)) if ratio.size else 0
    worst_ratio = float(ratio.reshape(-1)[worst]) if ratio.size else 0.0
    tol_at_max = float(tol.max()) if tol.size else base
    ok = worst_ratio <= 1.0
    msg = ("%-6s %-12s %-10s %-7s max|diff| %.3e  tol %.3e..%.3e  "
           "worst diff/tol %.3f  max|ref| %.4g%s  %s" % (
               label, path, kind, str(dtype), maxdiff, base, tol_at_max,
               worst_ratio, maxref,
               "" if scale is None else "  scale %.4g" % scale,
               "ok" if ok else "FAIL"))
    return ok, msg


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("float_model")
    ap.add_argument("int8_model")
    ap.add_argument("image")
    ap.add_argument("--tol-float", type=float, default=1e-4)
    ap.add_argument("--tol-quant-scales", type=float, default=0.51)
    ap.add_argument("--exact-int8", action="store_true",
                    help="int8 layers stored as float16 must equal dequantize().half() exactly")
    ap.add_argument("--tap-at", choices=("block", "output"), default="block",
                    help="where the dump recorded each conv (quantscope compare --tap-at)")
    args = ap.parse_args(argv)

    try:
        import h5py
        import torch
    except ImportError as e:
        fail_usage("%s (run with /usr/bin/python3, which has torch and h5py)"
                   % e)
    torch.set_num_threads(2)
    if "onednn" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "onednn"

    try:
        x = load_image(args.image)
        fmodel = torch.jit.load(args.float_model).eval()
        qmodel = torch.jit.load(args.int8_model).eval()
    except Exception as e:  # noqa: BLE001 - report any load problem
        fail_usage("cannot load inputs: %s" % e)

    frec = run_features(fmodel, x, quantized=False, tap_at=args.tap_at)
    qrec = run_features(qmodel, x, quantized=True, tap_at=args.tap_at)
    if not frec:
        fail_usage("float model has no conv child in features")
    if not qrec:
        fail_usage("int8 model has no conv child in features")

    try:
        h5 = h5py.File(args.dump, "r")
    except Exception as e:  # noqa: BLE001
        fail_usage("cannot open dump %s: %s" % (args.dump, e))
    failures = []
    with h5:
        by_module, dups = read_dump_layers(h5)
        if dups:
            print("warning: modules appearing in several dump layers (first "
                  "used): %s" % ", ".join(sorted(set(dups))))
        print("dump %s: %d layers; image %s (%s)" % (
            args.dump, len(by_module), args.image, "x".join(map(str, x.shape))))
        for label, dataset, recs in (("float", "original", frec),
                                     ("int8", "quantized", qrec)):
            for path, kind, ref, scale in recs:
                ok, msg = compare(label, path, kind, ref, scale, by_module,
                                  dataset, args)
                print(msg)
                if not ok:
                    failures.append(msg)
    n = len(frec) + len(qrec)
    if failures:
        print("FAILED: %d of %d layer checks failed:" % (len(failures), n))
        for m in failures:
            print("  " + m)
        return 1
    print("OK: all %d layer checks passed (%d float, %d int8)"
          % (n, len(frec), len(qrec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
