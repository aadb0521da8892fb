#!/usr/bin/python3
"""Generate the TorchScript models QuantScope is tested against.

Run with Debian's interpreter (it has torch 1.13 / torchvision 0.14):

    /usr/bin/python3 tools/make_models.py --out /tmp/qs-models all
    /usr/bin/python3 tools/make_models.py --out /tmp/qs-models demo traced

Targets (``all`` = every default target; ``frcnn_r50_fx`` only on request):

  demo          demo_cnn_float.pt, demo_cnn_int8.pt (eager PTQ),
                demo_cnn_int8_fx.pt (FX PTQ), images/demo_{0..3}.png
  traced        demo_cnn_traced.pt (torch.jit.trace of the demo float CNN)
  resnet18q     resnet18_float.pt, resnet18_int8.pt (eager PTQ)
  frcnn_mnv3    frcnn_mnv3_fpn.pt, frcnn_mnv3_fpn_fx_int8.pt
                (backbone.body FX-quantized, rest float)
  frcnn_r50     frcnn_r50_fpn.pt
  frcnn_r50_fx  frcnn_r50_fpn_fx_int8.pt (backbone.body FX-quantized)

Every saved model ``X.pt`` gets a sidecar ``X.json`` with reference counts of
conv / linear modules and of their forward calls on a fixed reference input,
counted with forward hooks on the eager (pre-scripting) module.

Everything is seeded; no weights are downloaded (weights=None everywhere).
All quantization uses the ``onednn`` engine.

Loading the detector files needs torchvision's ops (torchvision::nms,
roi_align) registered: ``import torchvision`` in Python; in C++ dlopen
torchvision's _C*.so (it only depends on libtorch, not on Python).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageDraw

ENGINE = "onednn"
NUM_THREADS = 2

DEMO_CLASSES = ["circle", "square", "triangle", "cross"]
DEMO_SIZE = 64

DEFAULT_TARGETS = ["demo", "traced", "resnet18q", "frcnn_mnv3", "frcnn_r50"]
EXTRA_TARGETS = ["frcnn_r50_fx"]


def log(msg):
    print(msg, flush=True)


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def setup_torch():
    torch.set_num_threads(NUM_THREADS)
    if ENGINE not in torch.backends.quantized.supported_engines:
        sys.exit("quantized engine %r not available (have %s)"
                 % (ENGINE, torch.backends.quantized.supported_engines))
    torch.backends.quantized.engine = ENGINE
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except TypeError:  # older torch without warn_only
        pass


# --------------------------------------------------------------------------
# Synthetic shape images
# --------------------------------------------------------------------------

def _rotated(points, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def draw_shape_image(rng, cls, size=DEMO_SIZE):
    """One HxWx3 uint8 image of shape class ``cls`` on a noisy background."""
    bg = rng.randint(0, 256, size=3)
    # Shape colour: keep a clear contrast with the background.
    while True:
        fg = rng.randint(0, 256, size=3)
        lum = np.array([0.299, 0.587, 0.114])
        if abs(float(lum @ fg) - float(lum @ bg)) >= 70:
            break
    img = Image.new("RGB", (size, size), tuple(int(v) for v in bg))
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.36) * size          # half extent of the shape
    margin = r + 2
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = rng.uniform(-0.3, 0.3)   # mild rotation only
    colour = tuple(int(v) for v in fg)
    name = DEMO_CLASSES[cls]
    if name == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif name == "square":
        h = r / math.sqrt(2) * 1.15
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
        draw.polygon(_rotated(pts, cx, cy, angle), fill=colour)
    elif name == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a))   # pointing up
               for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        draw.polygon(_rotated(pts, cx, cy, angle), fill=colour)
    elif name == "cross":
        t = r * 0.33
        pts = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t),
               (t, r), (-t, r), (-t, t), (-r, t), (-r, -t), (-t, -t)]
        draw.polygon(_rotated(pts, cx, cy, angle), fill=colour)
    else:
        raise ValueError(cls)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, rng.uniform(5.0, 25.0), size=arr.shape)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def make_shape_dataset(seed, n):
    """n images (uint8 N x 3 x H x W tensor) and labels, classes balanced."""
    rng = np.random.RandomState(seed)
    imgs = np.empty((n, 3, DEMO_SIZE, DEMO_SIZE), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    for i in range(n):
        cls = i % len(DEMO_CLASSES)
        imgs[i] = draw_shape_image(rng, cls).transpose(2, 0, 1)
        labels[i] = cls
    return torch.from_numpy(imgs), torch.from_numpy(labels)


def to_float01(u8):
    return u8.float().div_(255.0)


def load_image_tensor(path):
    """PNG -> 1x3xHxW float tensor in [0,1] (RGB, no normalisation)."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).unsqueeze(0)


def write_demo_images(out_dir):
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.RandomState(20240)
    paths = []
    for cls in range(len(DEMO_CLASSES)):
        arr = draw_shape_image(rng, cls)
        p = os.path.join(img_dir, "demo_%d.png" % cls)
        Image.fromarray(arr, "RGB").save(p)
        paths.append(p)
    return paths


# --------------------------------------------------------------------------
# Demo CNN
# --------------------------------------------------------------------------

class DemoCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),   # 0,1,2
            nn.MaxPool2d(2),                                                           # 3
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),  # 4,5,6
            nn.MaxPool2d(2),                                                           # 7
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),  # 8,9,10
            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),  # 11,12,13
            nn.AdaptiveAvgPool2d(1),                                                   # 14
        )
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.quant(x)
        x = self.features(x)
        x = self.dequant(x)
        return self.classifier(torch.flatten(x, 1))


DEMO_FUSE_GROUPS = [["features.0", "features.1", "features.2"],
                    ["features.4", "features.5", "features.6"],
                    ["features.8", "features.9", "features.10"],
                    ["features.11", "features.12", "features.13"]]


def evaluate(model, x_u8, y, batch=200):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(to_float01(x_u8[i:i + batch]))
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(y)


def train_demo_cnn(epochs=5, n_train=2400, n_val=400, batch=32, lr=3e-3):
    seed_all(1234)
    t0 = time.time()
    xtr, ytr = make_shape_dataset(1, n_train)
    xva, yva = make_shape_dataset(2, n_val)
    log("  generated %d train / %d val images in %.1fs"
        % (n_train, n_val, time.time() - t0))
    model = DemoCNN()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(n_train / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(99)
    loss_fn = nn.CrossEntropyLoss()
    t1 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n_train, generator=gen)
        total = 0.0
        for i in range(0, n_train, batch):
            idx = perm[i:i + batch]
            xb = to_float01(xtr[idx])
            # cheap augmentation: random horizontal flips (class invariant)
            if torch.rand(1, generator=gen).item() < 0.5:
                xb = xb.flip(3)
            opt.zero_grad()
            loss = loss_fn(model(xb), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = evaluate(model, xva, yva)
        log("  epoch %d  loss %.4f  val acc %.3f  (%.1fs)"
            % (ep + 1, total / n_train, acc, time.time() - t1))
    model.eval()
    return model, acc, (xva, yva)


# --------------------------------------------------------------------------
# Counting conv / linear calls
# --------------------------------------------------------------------------

def _conv_types():
    import torch.ao.nn.quantized.modules.conv as qconv
    return (nn.modules.conv._ConvNd, qconv._ConvNd)


def _linear_types():
    import torch.ao.nn.quantized as nnq
    return (nn.Linear, nnq.Linear)   # nnq.Linear covers LinearReLU and dynamic


def count_modules_and_calls(model, run):
    """Count conv/linear modules in ``model`` and their forward calls.

    ``run`` is a callable executing the model on the reference input.
    Fused float containers (nn.intrinsic ConvReLU2d etc.) are Sequentials, not
    conv classes, so only their inner Conv2d is counted; quantized fused
    modules (nniq.ConvReLU2d) subclass the quantized conv and count once.
    """
    conv_t, lin_t = _conv_types(), _linear_types()
    conv_names, lin_names, qconv_names = [], [], []
    calls_conv, calls_lin = [], []
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, conv_t):
            conv_names.append(name)
            if not isinstance(mod, nn.modules.conv._ConvNd):
                qconv_names.append(name)
            handles.append(mod.register_forward_hook(
                lambda m, i, o, n=name: calls_conv.append(n)))
        elif isinstance(mod, lin_t):
            lin_names.append(name)
            handles.append(mod.register_forward_hook(
                lambda m, i, o, n=name: calls_lin.append(n)))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return {
        "conv_modules": len(conv_names),
        "quantized_conv_modules": len(qconv_names),
        "conv_calls": len(calls_conv),
        "call_names": calls_conv,
        "linear_modules": len(lin_names),
        "linear_calls": len(calls_lin),
        "linear_call_names": calls_lin,
    }


def save_model(out_dir, fname, eager_model, scripted, run, input_desc, extra):
    """Save a scripted model plus its sidecar JSON; returns the info dict."""
    path = os.path.join(out_dir, fname)
    torch.jit.save(scripted, path)
    info = {"file": fname}
    info.update(count_modules_and_calls(eager_model, run))
    info["input"] = input_desc
    info["engine"] = ENGINE
    info["torch_version"] = torch.__version__
    info.update(extra)
    stem = os.path.splitext(fname)[0]
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    log("  wrote %s  conv_modules=%d conv_calls=%d linear_calls=%d"
        % (fname, info["conv_modules"], info["conv_calls"], info["linear_calls"]))
    return info


# --------------------------------------------------------------------------
# Quantization helpers
# --------------------------------------------------------------------------

def fx_ptq(module, example, calib):
    """FX PTQ of ``module`` (float in / float out); returns GraphModule."""
    import copy
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    m = copy.deepcopy(module).eval()
    prepared = prepare_fx(m, get_default_qconfig_mapping(ENGINE), (example,))
    with torch.no_grad():
        for x in calib:
            prepared(x)
    return convert_fx(prepared)


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------

class Context:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.demo_model = None
        self.timings = {}


def demo_reference_input(ctx):
    p = os.path.join(ctx.out_dir, "images", "demo_0.png")
    if not os.path.exists(p):
        write_demo_images(ctx.out_dir)
    return load_image_tensor(p)


DEMO_INPUT_DESC = ("images/demo_0.png (circle), RGB, 1x3x64x64 float32 "
                   "in [0,1], no normalisation")


def get_demo_model(ctx):
    """Trained demo CNN: in memory, else from DIR/demo_cnn_float.pt, else train."""
    if ctx.demo_model is not None:
        return ctx.demo_model
    p = os.path.join(ctx.out_dir, "demo_cnn_float.pt")
    if os.path.exists(p):
        model = DemoCNN()
        model.load_state_dict(torch.jit.load(p).state_dict())
        model.eval()
        log("  reusing trained weights from %s" % p)
    else:
        log("  training demo CNN")
        model, _, _ = train_demo_cnn()
    ctx.demo_model = model
    return model


def target_demo(ctx):
    out = ctx.out_dir
    write_demo_images(out)
    model, acc, (xva, yva) = train_demo_cnn()
    ctx.demo_model = model
    log("  demo float val accuracy: %.3f" % acc)
    x_ref = demo_reference_input(ctx)
    with torch.no_grad():
        pred = model(x_ref).argmax(1).item()
    log("  demo_0.png predicted as %s" % DEMO_CLASSES[pred])

    save_model(out, "demo_cnn_float.pt", model, torch.jit.script(model.eval()),
               lambda: model(x_ref), DEMO_INPUT_DESC,
               {"kind": "float", "val_accuracy": round(acc, 4),
                "classes": DEMO_CLASSES})

    # Calibration data: 64 fresh images.
    xcal, _ = make_shape_dataset(3, 64)
    calib = [to_float01(xcal[i:i + 16]) for i in range(0, 64, 16)]

    # ---- eager PTQ
    import copy
    from torch.ao.quantization import (get_default_qconfig, prepare, convert,
                                       fuse_modules)
    qm = copy.deepcopy(model).eval()
    fuse_modules(qm, DEMO_FUSE_GROUPS, inplace=True)
    qm.qconfig = get_default_qconfig(ENGINE)
    qm.classifier.qconfig = None   # runs after DeQuantStub: stays float
    prepare(qm, inplace=True)
    with torch.no_grad():
        for xb in calib:
            qm(xb)
    convert(qm, inplace=True)
    qacc = evaluate(qm, xva, yva)
    log("  demo eager int8 val accuracy: %.3f" % qacc)
    save_model(out, "demo_cnn_int8.pt", qm, torch.jit.script(qm),
               lambda: qm(x_ref), DEMO_INPUT_DESC,
               {"kind": "int8-eager-ptq", "val_accuracy": round(qacc, 4),
                "fused": DEMO_FUSE_GROUPS,
                "classifier": "float nn.Linear (qconfig None; it runs after "
                              "the DeQuantStub)",
                "calibration": "64 generated shape images (seed 3)",
                "qconfig": "get_default_qconfig('%s')" % ENGINE})

    # ---- FX PTQ
    fxm = fx_ptq(model, torch.zeros(1, 3, DEMO_SIZE, DEMO_SIZE), calib)
    facc = evaluate(fxm, xva, yva)
    log("  demo FX int8 val accuracy: %.3f" % facc)
    lin_q = any(isinstance(m, _linear_types()) and not isinstance(m, nn.Linear)
                for m in fxm.modules())
    save_model(out, "demo_cnn_int8_fx.pt", fxm, torch.jit.script(fxm),
               lambda: fxm(x_ref), DEMO_INPUT_DESC,
               {"kind": "int8-fx-ptq", "val_accuracy": round(facc, 4),
                "classifier": "quantized Linear" if lin_q else "float Linear",
                "calibration": "64 generated shape images (seed 3)",
                "qconfig": "get_default_qconfig_mapping('%s')" % ENGINE,
                "note": "FX GraphModule: conv-bn-relu fused by prepare_fx; "
                        "QuantStub/DeQuantStub are dropped by FX (no 'quant' "
                        "submodule; quantize_per_tensor at the input, "
                        "dequantize after the classifier); calls counted "
                        "with hooks on its submodules"})


def target_traced(ctx):
    model = get_demo_model(ctx)
    x_ref = demo_reference_input(ctx)
    traced = torch.jit.trace(model, torch.zeros(1, 3, DEMO_SIZE, DEMO_SIZE))
    with torch.no_grad():
        diff = (traced(x_ref) - model(x_ref)).abs().max().item()
    log("  traced vs eager max diff: %g" % diff)
    save_model(ctx.out_dir, "demo_cnn_traced.pt", model, traced,
               lambda: model(x_ref), DEMO_INPUT_DESC,
               {"kind": "float-traced",
                "note": "torch.jit.trace of the demo float CNN on a zeros "
                        "1x3x64x64 input; counts from the eager model"})


def target_resnet18q(ctx):
    import copy
    import torchvision
    from torch.ao.quantization import get_default_qconfig, prepare, convert
    seed_all(18)
    model = torchvision.models.quantization.resnet18(weights=None,
                                                      quantize=False).eval()
    g = torch.Generator().manual_seed(180)
    x_ref = torch.rand(1, 3, 224, 224, generator=g)
    desc = ("torch.rand(1,3,224,224) with torch.Generator().manual_seed(180)")
    save_model(ctx.out_dir, "resnet18_float.pt", model,
               torch.jit.script(model), lambda: model(x_ref), desc,
               {"kind": "float", "model": "torchvision.models.quantization."
                "resnet18(weights=None, quantize=False), seed 18"})
    qm = copy.deepcopy(model).eval()
    qm.fuse_model()
    qm.qconfig = get_default_qconfig(ENGINE)
    prepare(qm, inplace=True)
    gc = torch.Generator().manual_seed(181)
    with torch.no_grad():
        for _ in range(4):
            qm(torch.rand(1, 3, 224, 224, generator=gc))
    convert(qm, inplace=True)
    with torch.no_grad():
        d = (qm(x_ref) - model(x_ref)).abs().max().item()
    log("  resnet18 int8 vs float logits max diff: %.4g" % d)
    save_model(ctx.out_dir, "resnet18_int8.pt", qm, torch.jit.script(qm),
               lambda: qm(x_ref), desc,
               {"kind": "int8-eager-ptq",
                "calibration": "4 x torch.rand(1,3,224,224), generator seed 181",
                "qconfig": "get_default_qconfig('%s')" % ENGINE,
                "note": "model.fuse_model() (conv+bn(+relu)); fc quantized"})


def _detector_input(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g)]


def _quantize_body(model, h, w, seed):
    """Replace model.backbone.body with an FX-quantized copy (float I/O)."""
    import copy
    g = torch.Generator().manual_seed(seed)
    # The body sees the transform's output: normalised, resized, batched.
    with torch.no_grad():
        calib = []
        for _ in range(3):
            imgs = [torch.rand(3, h, w, generator=g)]
            il, _ = model.transform(imgs)
            calib.append(il.tensors)
    qbody = fx_ptq(model.backbone.body, calib[0], calib)
    qmodel = copy.deepcopy(model)
    qmodel.backbone.body = qbody
    return qmodel.eval()


def _detector(ctx, ctor, ctor_desc, fname, fx_fname, h, w, seed,
              do_float=True, do_fx=True):
    seed_all(seed)
    model = ctor().eval()
    x_ref = _detector_input(h, w, seed + 1)
    desc = ("list with one torch.rand(3,%d,%d) tensor, "
            "torch.Generator().manual_seed(%d)" % (h, w, seed + 1))
    if do_float:
        t = time.time()
        scripted = torch.jit.script(model)
        log("  scripted float detector in %.1fs" % (time.time() - t))
        save_model(ctx.out_dir, fname, model, scripted,
                   lambda: model(x_ref), desc,
                   {"kind": "float", "model": ctor_desc + ", seed %d" % seed})
    if do_fx:
        t = time.time()
        qmodel = _quantize_body(model, h, w, seed + 2)
        log("  FX-quantized backbone.body in %.1fs" % (time.time() - t))
        with torch.no_grad():
            fo = model(x_ref)[0]
            qo = qmodel(x_ref)[0]
        log("  detections float %d / int8-body %d"
            % (len(fo["boxes"]), len(qo["boxes"])))
        t = time.time()
        scripted = torch.jit.script(qmodel)
        log("  scripted FX detector in %.1fs" % (time.time() - t))
        save_model(ctx.out_dir, fx_fname, qmodel, scripted,
                   lambda: qmodel(x_ref), desc,
                   {"kind": "int8-fx-ptq-backbone-body",
                    "model": ctor_desc + ", seed %d" % seed,
                    "quantized_part": "backbone.body (FX GraphModule, "
                    "quantize_per_tensor at input, dequantize at each "
                    "returned feature map); FPN, RPN, ROI heads float",
                    "calibration": "3 x torch.rand(3,%d,%d) passed through "
                    "model.transform, generator seed %d" % (h, w, seed + 2),
                    "qconfig": "get_default_qconfig_mapping('%s')" % ENGINE,
                    "note": "FX GraphModule submodules keep their original "
                    "paths (e.g. backbone.body.0.0); conv-bn(-relu) fused, "
                    "so BN modules are gone; calls counted with hooks"})


def target_frcnn_mnv3(ctx):
    import torchvision.models.detection as det
    _detector(ctx,
              lambda: det.fasterrcnn_mobilenet_v3_large_320_fpn(
                  weights=None, weights_backbone=None, num_classes=5),
              "fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, "
              "weights_backbone=None, num_classes=5)",
              "frcnn_mnv3_fpn.pt", "frcnn_mnv3_fpn_fx_int8.pt",
              320, 320, 320)


def _r50():
    import torchvision.models.detection as det
    return det.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                       num_classes=91, min_size=480,
                                       max_size=640)


R50_DESC = ("fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, "
            "num_classes=91, min_size=480, max_size=640)")


def target_frcnn_r50(ctx):
    _detector(ctx, _r50, R50_DESC, "frcnn_r50_fpn.pt",
              "frcnn_r50_fpn_fx_int8.pt", 480, 640, 50, do_fx=False)


def target_frcnn_r50_fx(ctx):
    _detector(ctx, _r50, R50_DESC, "frcnn_r50_fpn.pt",
              "frcnn_r50_fpn_fx_int8.pt", 480, 640, 50, do_float=False)


TARGETS = {
    "demo": target_demo,
    "traced": target_traced,
    "resnet18q": target_resnet18q,
    "frcnn_mnv3": target_frcnn_mnv3,
    "frcnn_r50": target_frcnn_r50,
    "frcnn_r50_fx": target_frcnn_r50_fx,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("targets", nargs="+",
                    choices=["all"] + DEFAULT_TARGETS + EXTRA_TARGETS,
                    help="targets to build ('all' = %s)" % " ".join(DEFAULT_TARGETS))
    args = ap.parse_args(argv)
    setup_torch()
    os.makedirs(args.out, exist_ok=True)
    wanted = []
    for t in args.targets:
        for u in (DEFAULT_TARGETS if t == "all" else [t]):
            if u not in wanted:
                wanted.append(u)
    # Keep dependency order: demo before traced.
    wanted.sort(key=lambda t: (DEFAULT_TARGETS + EXTRA_TARGETS).index(t))
    ctx = Context(args.out)
    total = time.time()
    for t in wanted:
        log("[%s]" % t)
        t0 = time.time()
        TARGETS[t](ctx)
        ctx.timings[t] = time.time() - t0
        log("[%s] done in %.1fs" % (t, ctx.timings[t]))
    log("timings: " + ", ".join("%s %.1fs" % kv for kv in ctx.timings.items())
        + "; total %.1fs" % (time.time() - total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
