#!/usr/bin/python3
"""Train a small torchvision Faster R-CNN on tools/make_dataset.py scenes.

    /usr/bin/python3 tools/make_dataset.py --out /tmp/qs-data
    /usr/bin/python3 tools/train_detector.py --data /tmp/qs-data \\
        --out tools/weights [--epochs E] [--threads 1]

Model: torchvision.models.detection.FasterRCNN around a slim ResNet-like body
built here (BN, ReLU, residual blocks; strides 8/16/32 returned) wrapped in
torchvision's BackboneWithFPN (64 channels, LastLevelMaxPool), anchors of
16..192 px with aspect ratios (h/w) 0.5, 1, 2.5, RoIAlign 7x7 on FPN levels
0-2, a 256-wide TwoMLPHead; min_size = max_size = 320, 5 classes (background
+ car, pedestrian, round_sign, triangle_sign). Trained from scratch (no
weights are downloaded), AdamW with warm-up and cosine decay, horizontal
flips.

Writes into --out:
  demo_frcnn_float.pt      torch.jit.script of the eval-mode model
  demo_frcnn_int8_fx.pt    same, backbone.body replaced by its FX PTQ
                           (onednn) version, calibrated on 32 train images
                           passed through model.transform
  demo_frcnn_float.json / demo_frcnn_int8_fx.json
                           sidecars as tools/make_models.py writes them
                           (conv/linear counts on the reference image)
  demo_frcnn_train.json    settings, seed, per-epoch losses, val/test mAP,
                           wall times, file sizes
  demo_frcnn_loss.png      loss curves (PIL)
  images/scene_test_0.png  reference input (test image id 1)
and the test-split detections (COCO results lists, inputs for
tools/coco_eval.py) into DATA/dets/demo_frcnn_{float,int8_fx}_test.json.

Inputs of the exported models: a list of 3 x H x W float tensors, RGB in
[0, 1] (the model normalises with ImageNet mean/std itself). Output of the
scripted model: (losses, detections) as torchvision's scripted detectors
return, detections[i] = {"boxes": x1,y1,x2,y2 pixels, "labels": 1..4,
"scores"}.
"""

import argparse
import copy
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import coco_eval  # noqa: E402
import det_common as dc  # noqa: E402
import make_models as mm  # noqa: E402

CLASS_NAMES = ["car", "pedestrian", "round_sign", "triangle_sign"]
SIZE = 320
FPN_CHANNELS = 64
ANCHOR_SIZES = ((16, 24), (32, 48), (64, 96), (128, 192))
ASPECT_RATIOS = (0.5, 1.0, 2.5)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def conv_bn_relu(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(y + x)


class SlimBody(nn.Module):
    """ResNet-like body: stem (stride 4), layer2..layer4 at strides 8/16/32."""

    def __init__(self, widths=(24, 32, 64, 96, 128)):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(conv_bn_relu(3, w0, 2), conv_bn_relu(w0, w1, 2))
        self.layer1 = conv_bn_relu(w1, w1)
        self.layer2 = nn.Sequential(conv_bn_relu(w1, w2, 2), BasicBlock(w2))
        self.layer3 = nn.Sequential(conv_bn_relu(w2, w3, 2), BasicBlock(w3))
        self.layer4 = nn.Sequential(conv_bn_relu(w3, w4, 2), BasicBlock(w4))
        self.out_channels_list = [w2, w3, w4]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual block: blocks start as identity
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def build_frcnn():
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    body = SlimBody()
    backbone = BackboneWithFPN(body, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
                               in_channels_list=body.out_channels_list,
                               out_channels=FPN_CHANNELS, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(sizes=ANCHOR_SIZES,
                              aspect_ratios=(ASPECT_RATIOS,) * len(ANCHOR_SIZES))
    pooler = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    model = FasterRCNN(
        backbone, num_classes=None, min_size=SIZE, max_size=SIZE,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
        rpn_batch_size_per_image=128,
        box_roi_pool=pooler,
        box_head=TwoMLPHead(FPN_CHANNELS * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, len(CLASS_NAMES) + 1),
        box_batch_size_per_image=128, box_score_thresh=0.01,
        box_detections_per_img=100)
    return model


MODEL_DESC = ("torchvision FasterRCNN; backbone BackboneWithFPN(SlimBody widths "
              "24/32/64/96/128, returns layer2/3/4 = strides 8/16/32, FPN %d ch, "
              "LastLevelMaxPool); anchors %s x aspect ratios %s; MultiScaleRoIAlign "
              "7x7 on 0,1,2; TwoMLPHead(%d, 256); 5 classes incl. background; "
              "min_size = max_size = %d" % (FPN_CHANNELS, ANCHOR_SIZES, ASPECT_RATIOS,
                                           FPN_CHANNELS * 49, SIZE))


# --------------------------------------------------------------------------
# Training / evaluation
# --------------------------------------------------------------------------

def hflip_batch(imgs, targets, flags):
    out_i, out_t = [], []
    for img, t, f in zip(imgs, targets, flags):
        if f:
            w = img.shape[-1]
            img = img.flip(-1)
            b = t["boxes"].clone()
            b[:, 0] = w - t["boxes"][:, 2]
            b[:, 2] = w - t["boxes"][:, 0]
            t = {"boxes": b, "labels": t["labels"]}
        out_i.append(img)
        out_t.append(t)
    return out_i, out_t


def predict(model, imgs_u8, ids, batch=8):
    model.eval()
    dets = []
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            xs = [dc.to_float01(x) for x in imgs_u8[i:i + batch]]
            outs = model(xs)
            if isinstance(outs, tuple):     # scripted: (losses, detections)
                outs = outs[1]
            for o, iid in zip(outs, ids[i:i + batch]):
                dets += dc.xyxy_to_coco(o["boxes"], o["scores"], o["labels"], iid)
    return dets


def evaluate(model, imgs_u8, coco, ids, batch=8):
    t = time.time()
    dets = predict(model, imgs_u8, ids, batch)
    res = coco_eval.evaluate(coco, dets)
    res["seconds"] = round(time.time() - t, 1)
    return res, dets


def brief(res):
    return {"map": round(res["map"], 4), "map50": round(res["map50"], 4),
            "map75": round(res["map75"], 4), "mar100": round(res["mar100"], 4),
            "per_class_ap50": {k: round(v["ap50"], 4) for k, v in res["per_class"].items()},
            "per_class_ap": {k: round(v["ap"], 4) for k, v in res["per_class"].items()},
            "seconds": res.get("seconds")}


def train(args):
    dc.setup_torch(args.threads)
    mm.seed_all(args.seed)
    timer = dc.Timer()
    xtr, coco_tr, ttr, ids_tr = dc.load_split(args.data, "train", args.limit_train)
    xva, coco_va, _, ids_va = dc.load_split(args.data, "val")
    xte, coco_te, _, ids_te = dc.load_split(args.data, "test")
    dc.log("loaded train %d / val %d / test %d images in %.1fs"
           % (len(ids_tr), len(ids_va), len(ids_te), timer()))
    model = build_frcnn()
    n_params = sum(p.numel() for p in model.parameters())
    dc.log("model parameters: %d" % n_params)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    n = len(ids_tr)
    steps_per_epoch = n // args.batch
    total_steps = steps_per_epoch * args.epochs
    warm = min(args.warmup, total_steps // 5)

    lr_at = dc.warmup_cosine(args.lr, warm, total_steps)

    gen = torch.Generator().manual_seed(args.seed + 1)
    history = {"iter_loss": [], "epochs": []}
    step = 0
    t_train = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        sums = {}
        t_ep = time.time()
        for bi in range(steps_per_epoch):
            idx = perm[bi * args.batch:(bi + 1) * args.batch].tolist()
            flags = (torch.rand(len(idx), generator=gen) < 0.5).tolist()
            imgs = [dc.to_float01(xtr[i]) for i in idx]
            imgs, tg = hflip_batch(imgs, [ttr[i] for i in idx], flags)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            losses = model(imgs, tg)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            step += 1
            history["iter_loss"].append(round(loss.item(), 5))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            if bi % 50 == 0:
                dc.log("  ep %d it %d/%d loss %.3f (%s) lr %.2e  %.2fs/it"
                       % (ep + 1, bi, steps_per_epoch, loss.item(),
                          " ".join("%s %.3f" % (k.replace("loss_", ""), v.item())
                                   for k, v in losses.items()),
                          lr_at(step), (time.time() - t_ep) / (bi + 1)))
            if args.bench and step >= args.bench:
                dc.log("bench: %d iterations of batch %d in %.1fs (%.3fs/image)"
                       % (step, args.batch, time.time() - t_train,
                          (time.time() - t_train) / (step * args.batch)))
                return None
        ep_loss = {k: round(v / steps_per_epoch, 5) for k, v in sums.items()}
        ep_loss["total"] = round(sum(ep_loss.values()), 5)
        rec = {"epoch": ep + 1, "loss": ep_loss, "seconds": round(time.time() - t_ep, 1),
               "lr_end": lr_at(step)}
        if args.val_every and ((ep + 1) % args.val_every == 0 or ep + 1 == args.epochs):
            res, _ = evaluate(model, xva, coco_va, ids_va)
            rec["val"] = {"map": round(res["map"], 4), "map50": round(res["map50"], 4),
                          "seconds": res["seconds"]}
        history["epochs"].append(rec)
        dc.log("epoch %d: %s  %s  (%.0fs, total %.0fs)"
               % (ep + 1, ep_loss, rec.get("val", ""), rec["seconds"], timer()))
    train_seconds = time.time() - t_train
    model.eval()
    return model, history, train_seconds, (xtr, ttr, ids_tr), (xva, coco_va, ids_va), \
        (xte, coco_te, ids_te), warm, total_steps


def quantize_body(model, calib_imgs):
    """FX PTQ of model.backbone.body, calibrated on transformed images."""
    with torch.no_grad():
        calib = []
        for x in calib_imgs:
            il, _ = model.transform([x])
            calib.append(il.tensors)
    qbody = mm.fx_ptq(model.backbone.body, calib[0], calib)
    qmodel = copy.deepcopy(model)
    qmodel.backbone.body = qbody
    return qmodel.eval()


def write_reference_image(out_dir, data_dir):
    """Copy test image 1 as images/scene_test_0.png (recompressed)."""
    from PIL import Image
    src = os.path.join(data_dir, "test", "000000.png")
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    dst = os.path.join(img_dir, "scene_test_0.png")
    Image.open(src).convert("RGB").save(dst, optimize=True)
    return dst


REF_DESC = ("images/scene_test_0.png (= test/000000.png of make_dataset.py --seed 0), "
            "as a list with one 3x320x320 float32 RGB tensor in [0,1]")


def plot_losses(path, history, steps_per_epoch, title):
    it = history["iter_loss"]
    xs = [(i + 1) / steps_per_epoch for i in range(len(it))]
    k = max(1, steps_per_epoch // 10)
    series = [("total (iter, smoothed)", xs, dc.smooth(it, k))]
    eps = history["epochs"]
    keys = [k for k in eps[0]["loss"] if k != "total"] if eps else []
    for key in keys:
        series.append((key.replace("loss_", "") + " (epoch)", [e["epoch"] for e in eps],
                       [e["loss"][key] for e in eps]))
    dc.line_plot(path, series, title, "epoch", "loss", log_y=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-every", type=int, default=1, help="val mAP every N epochs (0: never)")
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--bench", type=int, default=0, help="time N iterations and stop")
    args = ap.parse_args(argv)
    wall = dc.Timer()
    os.makedirs(args.out, exist_ok=True)
    r = train(args)
    if r is None:
        return 0
    model, history, train_s, trn, val, tst, warm, total_steps = r
    xtr, ttr, ids_tr = trn
    xte, coco_te, ids_te = tst

    dc.log("evaluating float model on test")
    res_f, dets_f = evaluate(model, xte, coco_te, ids_te)
    dc.log("float test: mAP %.4f mAP50 %.4f (%.0fs)" % (res_f["map"], res_f["map50"], res_f["seconds"]))
    dets_dir = os.path.join(args.data, "dets")
    os.makedirs(dets_dir, exist_ok=True)
    with open(os.path.join(dets_dir, "demo_frcnn_float_test.json"), "w") as f:
        json.dump(dets_f, f)

    ref_path = write_reference_image(args.out, args.data)
    x_ref = [mm.load_image_tensor(ref_path)[0]]

    t = time.time()
    scripted = torch.jit.script(model)
    mm.save_model(args.out, "demo_frcnn_float.pt", model, scripted, lambda: model(x_ref), REF_DESC,
                  {"kind": "float", "model": MODEL_DESC, "classes": CLASS_NAMES,
                   "test_map": round(res_f["map"], 4), "test_map50": round(res_f["map50"], 4)})
    script_s = time.time() - t

    # Scripted model must give the same detections.
    with torch.no_grad():
        a = model(x_ref)[0]
        b = torch.jit.load(os.path.join(args.out, "demo_frcnn_float.pt"))(x_ref)[1][0]
    same = (a["boxes"].shape == b["boxes"].shape and
            torch.allclose(a["boxes"], b["boxes"], atol=1e-4))
    dc.log("scripted float reloaded: same detections on the reference image: %s" % same)

    # ---- INT8: FX PTQ of backbone.body
    t = time.time()
    g = torch.Generator().manual_seed(args.seed + 7)
    calib_idx = torch.randperm(len(ids_tr), generator=g)[:32].tolist()
    qmodel = quantize_body(model, [dc.to_float01(xtr[i]) for i in calib_idx])
    quant_s = time.time() - t
    res_q, dets_q = evaluate(qmodel, xte, coco_te, ids_te)
    dc.log("int8 (FX body) test: mAP %.4f mAP50 %.4f (%.0fs)"
           % (res_q["map"], res_q["map50"], res_q["seconds"]))
    with open(os.path.join(dets_dir, "demo_frcnn_int8_fx_test.json"), "w") as f:
        json.dump(dets_q, f)
    mm.save_model(args.out, "demo_frcnn_int8_fx.pt", qmodel, torch.jit.script(qmodel),
                  lambda: qmodel(x_ref), REF_DESC,
                  {"kind": "int8-fx-ptq-backbone-body", "model": MODEL_DESC,
                   "classes": CLASS_NAMES,
                   "quantized_part": "backbone.body (FX GraphModule, quantize_per_tensor at "
                   "input, dequantize at each returned feature map); FPN, RPN, ROI heads float",
                   "calibration": "32 train images (torch.randperm seed %d), passed through "
                   "model.transform" % (args.seed + 7),
                   "qconfig": "get_default_qconfig_mapping('%s')" % dc.ENGINE,
                   "test_map": round(res_q["map"], 4), "test_map50": round(res_q["map50"], 4)})

    steps_per_epoch = len(ids_tr) // args.batch
    plot_losses(os.path.join(args.out, "demo_frcnn_loss.png"), history, steps_per_epoch,
                "Faster R-CNN (slim FPN) training loss, %d epochs" % args.epochs)
    files = {f: dc.file_mb(os.path.join(args.out, f))
             for f in ("demo_frcnn_float.pt", "demo_frcnn_int8_fx.pt")}
    info = {
        "model": MODEL_DESC,
        "classes": CLASS_NAMES,
        "category_ids": {n: i + 1 for i, n in enumerate(CLASS_NAMES)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {"dir": os.path.abspath(args.data), "train_images": len(ids_tr),
                 "generator": "tools/make_dataset.py"},
        "settings": {"epochs": args.epochs, "batch": args.batch, "optimizer": "AdamW",
                     "lr": args.lr, "weight_decay": args.wd, "warmup_steps": warm,
                     "schedule": "linear warm-up then cosine to 2% of lr",
                     "total_steps": total_steps, "grad_clip_norm": 10.0,
                     "augmentation": "horizontal flip p=0.5", "threads": args.threads,
                     "seed": args.seed, "torch": torch.__version__},
        "epochs": history["epochs"],
        "test_float": brief(res_f),
        "test_int8_fx": brief(res_q),
        "eval": "tools/coco_eval.py (COCO bbox: IoU .50:.05:.95, 101 recall points, "
                "maxDets 100) on the test split; box_score_thresh 0.01",
        "seconds": {"train": round(train_s, 1), "script_and_save": round(script_s, 1),
                    "quantize": round(quant_s, 1), "wall_total": round(wall(), 1)},
        "files_mb": files,
        "scripted_matches_eager": bool(same),
    }
    with open(os.path.join(args.out, "demo_frcnn_train.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    dc.log("done in %.0fs: %s" % (wall(), json.dumps(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
