#!/usr/bin/python3
"""Every activation a CNN puts after a convolution, tapped at the same point on both sides.

A seeded model holds one block per epilogue (conv -> batch norm -> activation), each
followed by a conv -> batch norm -> ReLU neighbour. It is quantized twice: by our
`quantize` (with --reduce-range pinned, both settings) and by PyTorch's FX route. For each
route, `compare` reports every layer's SQNR; an independent Python reference applies the
same ranges to the float model (fake quantization: the route's scales and zero points,
its weights) and computes the SQNR of the same tap point from the formula in
docs/metrics.md. They must agree within 1 dB for every layer, and the dump must say that
the tap sits after the activation on both sides.

Before the op vocabulary was shared, the quantized side of a SiLU block was tapped right
after the convolution: -0.95 dB against 34 dB for its neighbour.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import h5py
import torch
import torch.nn.functional as F

from testutil import check_recorded_views, load_batch, write_images

ARGS = None
torch.backends.quantized.engine = "onednn"

EPILOGUES = {
    "relu": torch.nn.ReLU,
    "relu6": torch.nn.ReLU6,
    "hardtanh": lambda: torch.nn.Hardtanh(-0.5, 1.5),
    "leaky_relu": lambda: torch.nn.LeakyReLU(0.1),
    "silu": torch.nn.SiLU,
    "hardswish": torch.nn.Hardswish,
    "hardsigmoid": torch.nn.Hardsigmoid,
    "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU,
    "mish": torch.nn.Mish,
    "elu": torch.nn.ELU,
}


class Clamp(torch.nn.Module):
    def forward(self, x):
        return torch.clamp(x, -0.4, 1.2)


EPILOGUES["clamp"] = Clamp


class Block(torch.nn.Module):
    def __init__(self, cin, cout, act):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(cout)
        self.act = act
        self.bn.running_mean.uniform_(-0.3, 0.3)
        self.bn.running_var.uniform_(0.5, 2.0)
        self.bn.weight.data.uniform_(0.5, 1.5)
        self.bn.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Branch(torch.nn.Module):
    def __init__(self, act):
        super().__init__()
        self.b = Block(3, 8, act)                 # the block under test
        self.n = Block(8, 8, torch.nn.ReLU())     # its conv-bn-relu neighbour

    def forward(self, x):
        return self.n(self.b(x))


class EpilogueNet(torch.nn.Module):
    """One branch per epilogue: branch.<name>.b (conv, bn, <name>), then .n (conv, bn, relu)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2026)
        self.branch = torch.nn.ModuleDict({name: Branch(make()) for name, make in EPILOGUES.items()})

    def forward(self, x):
        outs = []
        for branch in self.branch.values():
            outs.append(branch(x).mean((2, 3)))
        return torch.cat(outs, 1)


def block_of(model, layer):
    """branch.silu.b.conv -> the Block module."""
    return model.get_submodule(layer[:-len(".conv")])


def layers():
    """Every tapped layer, with the activation after it."""
    for name in EPILOGUES:
        yield "branch.%s.b.conv" % name, name
        yield "branch.%s.n.conv" % name, "relu"


def fq(x, scale, zero_point, qmax=255):
    """ONNX/PyTorch affine fake quantization: round half to even, saturate to 0..qmax."""
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, qmax)
    return (q - zero_point) * scale


def sqnr_db(o, q):
    o = o.double()
    e = (o - q.double())
    return float(10 * torch.log10((o * o).sum() / (e * e).sum()))


def fold(block):
    """The convolution's weight and bias with its batch norm folded in."""
    bn = block.bn
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = block.conv.weight * s.reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * s
    return w.detach(), b.detach()


def per_channel_weight(w):
    """Our quantizer's weights: symmetric qint8 per output channel, scale max|w| / 127."""
    scale = torch.clamp(w.abs().reshape(w.shape[0], -1).amax(1) / 127.0, min=1e-8).reshape(-1, 1, 1, 1)
    return torch.clamp(torch.round(w / scale), -128, 127) * scale


def float_taps(model, x):
    """The float model's value at every tap point (after the block's activation)."""
    taps = {}
    hooks = [block_of(model, layer).act.register_forward_hook(
        lambda m, i, o, key=layer: taps.__setitem__(key, o.detach().clone())) for layer, _ in layers()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return taps


def reference(model, x, route):
    """Fake-quantized float model: for every block, the route's input range, weights, output
    range and epilogue treatment. route(name) -> dict(in=(s, zp, qmax), w, b, out=(s, zp),
    mode, epi=(s, zp) or None)."""
    taps = {}
    with torch.no_grad():
        for name in EPILOGUES:
            h = x
            for which in ("b", "n"):
                layer = "branch.%s.%s.conv" % (name, which)
                block = block_of(model, layer)
                r = route(layer)
                y = F.conv2d(fq(h, *r["in"]), r["w"], r["b"], padding=1)
                if r["mode"] == "fused":            # quantized::conv2d_relu: relu before rounding
                    z = fq(block.act(y), *r["out"])
                else:
                    z = block.act(fq(y, *r["out"]))
                    if r["epi"] is not None:        # the epilogue's own quantized output
                        z = fq(z, *r["epi"])
                taps[layer] = z
                h = z
    return taps


class Epilogues(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qs-epilogues-")
        d = cls.tmp.name
        cls.images = write_images(os.path.join(d, "images"), 3, 40, 40, 7)
        cls.x = load_batch(cls.images)
        cls.model = EpilogueNet().eval()
        cls.float_pt = os.path.join(d, "float.pt")
        torch.jit.script(cls.model).save(cls.float_pt)
        cls.float = float_taps(cls.model, cls.x)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compare(self, quantized, name):
        dump = os.path.join(self.tmp.name, name + ".h5")
        r = subprocess.run([ARGS.cli, "compare", "--original", self.float_pt, "--quantized", quantized,
                            "--images", os.path.dirname(self.images[0]), "--out", dump, "--dtype", "f32",
                            "--threads", "2", "--quiet"], capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        layers = {}
        with h5py.File(dump, "r") as f:
            self.assertEqual(len(f["unmatched/original"]) + len(f["unmatched/quantized"]), 0)
            for k in f["layers"]:
                g = f["layers"][k]
                layers[str(g.attrs["name"])] = dict(
                    sqnr=float(g.attrs["sqnr_db"]),
                    epilogue_original=str(g["original"].attrs["epilogue"]),
                    epilogue_quantized=str(g["quantized"].attrs["epilogue"]))
        self.assertEqual(len(layers), 2 * len(EPILOGUES))
        # what compare records for the GUI, on every epilogue (SiLU, hardswish, leaky ReLU,
        # ...; quantized ones with a grid, float ones without): per-image metrics and
        # histograms against numpy
        check_recorded_views(self, dump)
        return layers

    def check(self, layers_, ref, route_name):
        rows = []
        for layer, _ in layers():
            want = sqnr_db(self.float[layer], ref[layer])
            got = layers_[layer]["sqnr"]
            rows.append((layer, got, want, layers_[layer]["epilogue_original"],
                         layers_[layer]["epilogue_quantized"]))
        table = "\n".join("%-18s compare %7.2f dB  reference %7.2f dB  taps: %s | %s" % r for r in rows)
        print("\n%s\n%s" % (route_name, table))
        acts = dict(layers())
        for layer, got, want, eo, eq in rows:
            self.assertLess(abs(got - want), 1.0, "%s %s: compare %.2f dB, reference %.2f dB\n%s"
                            % (route_name, layer, got, want, table))
            act = acts[layer]
            names = {"relu6": ("relu6", "hardtanh")}.get(act, (act,))
            # the tap sits after the activation on both sides; the quantized side may have
            # it fused into the convolution (relu) or run it after a dequantize. Whole op
            # names: "relu" must not pass for leaky_relu or relu6, nor "elu" for gelu.
            def ops_of(epilogue):
                return {t.rstrip("_") for t in re.split(r"[+:]", epilogue) if t}
            self.assertTrue(eo.startswith("batch_norm") and ops_of(eo) & set(names), (layer, eo))
            self.assertTrue((act == "relu" and eq == "") or ops_of(eq) & set(names), (layer, eq))

    def test_our_quantizer(self):
        for reduce_range in ("on", "off"):
            with self.subTest(reduce_range=reduce_range):
                out = os.path.join(self.tmp.name, "ours_%s.pt" % reduce_range)
                report = out + ".json"
                r = subprocess.run([ARGS.cli, "quantize", "--model", self.float_pt, "--calib",
                                    os.path.dirname(self.images[0]), "--out", out, "--method", "minmax",
                                    "--reduce-range", reduce_range, "--json", report, "--threads", "2", "--quiet"],
                                   capture_output=True, text=True, timeout=600)
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(report) as f:
                    rep = json.load(f)
                self.assertEqual(rep["reduce_range"], reduce_range == "on")
                self.assertEqual(rep["float_layers"], 0, rep["layers"])
                by_name = {l["name"]: l for l in rep["layers"]}
                modes = {name: by_name["branch.%s.b.conv" % name].get("epilogue_mode") for name in EPILOGUES}
                # fused where LibTorch has the quantized op, else conv -> dequantize -> float epilogue
                self.assertEqual(modes["relu"], "fused")
                for name in ("hardswish", "leaky_relu", "sigmoid"):
                    self.assertEqual(modes[name], "quantized", name)
                for name in ("silu", "mish", "gelu", "hardsigmoid", "elu"):
                    self.assertEqual(modes[name], "float", name)
                qmax_in = 127 if reduce_range == "on" else 255

                def route(layer):
                    l = by_name[layer]
                    w, b = fold(block_of(self.model, layer))
                    epi = None
                    if l["epilogue_mode"] == "quantized":
                        epi = (l["epilogue_scale"], l["epilogue_zero_point"])
                    elif l["epilogue_mode"] == "carried":  # clamps in the quantized domain
                        epi = (l["output_scale"], l["output_zero_point"])
                    return {"in": (l["input_scale"], l["input_zero_point"], qmax_in), "w": per_channel_weight(w),
                            "b": b, "out": (l["output_scale"], l["output_zero_point"]),
                            "mode": l["epilogue_mode"], "epi": epi}

                self.check(self.compare(out, "ours_" + reduce_range), reference(self.model, self.x, route),
                           "our quantizer, --reduce-range " + reduce_range)

    def test_fx_route(self):
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        import copy
        prepared = prepare_fx(copy.deepcopy(self.model), get_default_qconfig_mapping("onednn"), (self.x[:1],))
        with torch.no_grad():
            prepared(self.x)
        fx = convert_fx(prepared)
        # the route's ranges, read from the converted model as it runs
        seen = {}

        def grab(key):
            def hook(m, i, o):
                t = i[0] if key.endswith(":in") else o
                seen[key] = (t.q_scale(), t.q_zero_point()) if t.is_quantized else None
            return hook
        hooks = []
        modules = dict(fx.named_modules())
        for layer, _ in layers():
            block = layer[:-len(".conv")]
            conv = modules[layer]
            hooks.append(conv.register_forward_hook(
                lambda m, i, o, k=block: seen.__setitem__(k + ":in", (i[0].q_scale(), i[0].q_zero_point()))))
            hooks.append(conv.register_forward_hook(grab(block + ":out")))
            act = modules.get(block + ".act")
            if act is not None:
                hooks.append(act.register_forward_hook(grab(block + ":act")))
        with torch.no_grad():
            fx(self.x)
        for h in hooks:
            h.remove()
        path = os.path.join(self.tmp.name, "fx.pt")
        torch.jit.script(fx).save(path)

        def route(layer):
            block = layer[:-len(".conv")]
            conv = modules[layer]
            fused = type(conv).__name__ == "ConvReLU2d"
            act = seen.get(block + ":act")
            return {"in": seen[block + ":in"] + (255,), "w": conv.weight().dequantize(), "b": conv.bias(),
                    "out": seen[block + ":out"], "mode": "fused" if fused else "",
                    "epi": act}

        self.check(self.compare(path, "fx"), reference(self.model, self.x, route), "PyTorch FX route")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
