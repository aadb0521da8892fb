#!/usr/bin/python3
"""Writes the INT8 QDQ form of a float ONNX model with python3-onnx alone, as ONNX Runtime's
quantizer lays it out: every Conv's weight as an int8 initializer (symmetric, per output
channel) behind a DequantizeLinear, and every Conv's activation input behind a
QuantizeLinear -> DequantizeLinear pair (uint8, asymmetric, range calibrated on images with
OpenCV DNN). With --outputs, every Conv's output too (after the Relu when that is all the
Conv feeds), so that each Conv sits between a DequantizeLinear and a QuantizeLinear, the
pattern an INT8 kernel replaces. Independent of QuantScope's own quantizer: the test models
of docs/onnx.md.

    make_qdq_onnx.py FLOAT.onnx OUT.onnx IMAGE [IMAGE ...] [--size W H] [--outputs]
"""
import argparse

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def load(path, size):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--size", nargs=2, type=int, default=None, help="W H the images are resized to")
    ap.add_argument("--outputs", action="store_true", help="quantize every Conv's output (after its Relu) too")
    args = ap.parse_args()
    model = onnx.load(args.model)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    size = tuple(args.size) if args.size else (shape[3], shape[2])

    # activation ranges of every Conv's input (and output), over the calibration images
    net = cv2.dnn.readNetFromONNX(args.model)
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = []
    if args.outputs:
        for c in convs:
            after = readers.get(c.output[0], [])
            outputs.append(after[0].output[0] if len(after) == 1 and after[0].op_type == "Relu" else c.output[0])
    inputs = sorted({c.input[0] for c in convs} | set(outputs))
    names = ["onnx_node!" + producer[t].name for t in inputs if t in producer]
    low = {t: 0.0 for t in inputs}
    high = {t: 0.0 for t in inputs}
    for path in args.images:
        x = load(path, size)
        net.setInput(x)
        blobs = dict(zip(names, net.forward(names))) if names else {}
        for t in inputs:
            v = x if t not in producer else blobs["onnx_node!" + producer[t].name]
            low[t], high[t] = min(low[t], float(v.min())), max(high[t], float(v.max()))

    nodes, extra = [], []
    for t in outputs:  # every reader of a quantized output reads its Q/DQ pair
        for n in readers.get(t, []):
            n.input[:] = [i + "_dq" if i == t else i for i in n.input]
        for o in graph.output:
            if o.name == t:
                raise SystemExit(f"{t}: a graph output; --outputs quantizes inner values only")
    for t in inputs:  # one Q/DQ pair per activation, shared by the convs reading it
        scale = max(high[t] - low[t], 1e-8) / 255.0
        zp = int(np.clip(np.rint(-low[t] / scale), 0, 255))
        extra += [numpy_helper.from_array(np.array(scale, np.float32), t + "_scale"),
                  numpy_helper.from_array(np.array(zp, np.uint8), t + "_zero_point")]
        nodes += [helper.make_node("QuantizeLinear", [t, t + "_scale", t + "_zero_point"], [t + "_q"],
                                   name=t + "_QuantizeLinear"),
                  helper.make_node("DequantizeLinear", [t + "_q", t + "_scale", t + "_zero_point"], [t + "_dq"],
                                   name=t + "_DequantizeLinear")]
    for conv in convs:
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float32)
        scale = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1), 1e-8) / 127.0
        q = np.clip(np.rint(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        base = conv.input[1]
        extra += [numpy_helper.from_array(q, base + "_quantized"),
                  numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
                  numpy_helper.from_array(np.zeros(w.shape[0], np.int8), base + "_zero_point")]
        nodes.append(helper.make_node("DequantizeLinear", [base + "_quantized", base + "_scale", base + "_zero_point"],
                                      [base + "_dq"], name=base + "_DequantizeLinear", axis=0))
        if not conv.input[0].endswith("_dq"):
            conv.input[0] = conv.input[0] + "_dq"
        conv.input[1] = base + "_dq"
    # the float weights go; Q/DQ nodes run before the graph's own nodes read them
    kept = [i for i in graph.initializer if i.name not in {c.input[1][:-3] for c in convs}]
    del graph.initializer[:]
    graph.initializer.extend(kept + extra)
    own = list(graph.node)
    del graph.node[:]
    order = []
    for n in own:  # each Q/DQ pair right before the first node that needs it
        for q in nodes:
            if q not in order and any(o in n.input for o in q.output):
                deps = [m for m in nodes if m not in order and any(o in q.input for o in m.output)]
                order += deps + [q]
        order.append(n)
    graph.node.extend(order)
    onnx.checker.check_model(model)
    onnx.save(model, args.out)


if __name__ == "__main__":
    main()
