#!/usr/bin/env python3
"""Rewrites the text detector into the same function computed with fewer multiplications,
and checks that it is the same function before writing it.

PP-OCRv4's detector spends half its multiplications in two 3x3 convolutions at a quarter of
the photo's resolution (the neck's finest level, and the head's first layer), over inputs
that are sums and concatenations of cheaper things: nearest-neighbour upsamples of coarser
maps, and 1x1 convolutions of 12 channels scaled per channel by a squeeze-and-excitation
gate. A convolution is linear, so it distributes over those sums; and each piece can be
computed where it is cheap:

- over a nearest upsample by k, a 3x3 convolution is a transposed convolution of the coarse
  map (stride k, kernel k + 2) whose taps are sums of the 3x3 taps: 1/k^2 of the pixels;
- over x * g (per channel) with x = V c a 1x1 convolution without bias, it is a 3x3
  convolution of c with the weights W diag(g) V, composed per photo (g depends on it):
  12 input channels instead of 96;
- the global average of V c is V applied to the global average of c, so the 96-channel map
  x need not be computed at all.

Zero padding commutes with all three, so borders are exact too. The result differs from
the original only by the order of floating-point additions (a few 1e-5 on the probability
map); the check below refuses anything further off. A layer is rewritten only where that
saves at least a fifth of its multiplications.

usage: fold-detector.py ORIGINAL.onnx FOLDED.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

# The size shapes are inferred at (where the rewrites' multiplications are compared: a
# camera's 4:3 photo at the detector's side) and the sizes the rewrite is checked at: small,
# so the reference evaluator is quick, and not square, so no axis is confused with the other.
SHAPE_SIZE = (736, 960)
CHECK_SIZES = [(64, 96), (96, 64)]
TOLERANCE = 1e-4
MIN_SAVING = 0.8
# Runtimes vectorise a transposed convolution across its output channels; below one AVX2
# register's worth (8) it runs mostly empty, and a 1x1 convolution does the same work better.
UNFOLD_BELOW_CHANNELS = 8


class Graph:
    def __init__(self, model):
        self.g = model.graph
        self.consts = {}
        for n in self.g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        for i in self.g.initializer:
            self.consts[i.name] = numpy_helper.to_array(i)
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.shapes = infer_shapes(model)
        self.fresh = 0

    def name(self, stem):
        self.fresh += 1
        return f"fold.{stem}.{self.fresh}"

    def const(self, stem, array):
        name = self.name(stem)
        self.g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        self.consts[name] = array
        return name


def infer_shapes(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[2].dim_value, dims[3].dim_value = 1, *SHAPE_SIZE
    m = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return shapes


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def is_plain_3x3(graph, node):
    if node.op_type != "Conv" or node.input[1] not in graph.consts:
        return False
    a = attrs(node)
    w = graph.consts[node.input[1]]
    return (w.ndim == 4 and tuple(w.shape[2:]) == (3, 3) and a.get("group", 1) == 1
            and list(a.get("strides", [1, 1])) == [1, 1] and list(a.get("dilations", [1, 1])) == [1, 1]
            and list(a.get("pads", [0, 0, 0, 0])) == [1, 1, 1, 1] and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def nearest_scale(graph, node):
    """k when node is a nearest-neighbour upsample by the integer k on both spatial axes."""
    if node.op_type != "Resize" or len(node.input) < 3:
        return None
    a = attrs(node)
    if (a.get("mode", b"nearest") != b"nearest" or a.get("nearest_mode") != b"floor"
            or a.get("coordinate_transformation_mode") != b"asymmetric"):
        return None
    scales = graph.consts.get(node.input[2])
    if scales is None or len(scales) != 4 or list(scales[:2]) != [1, 1] or scales[2] != scales[3]:
        return None
    k = float(scales[2])
    return int(k) if k.is_integer() and k >= 2 else None


def plain_1x1(graph, node):
    """V [co, ci] when node is a 1x1 convolution (one group, stride 1, no padding) with
    constant weights."""
    if node is None or node.op_type != "Conv" or node.input[1] not in graph.consts:
        return None
    v = graph.consts[node.input[1]]
    a = attrs(node)
    if (v.ndim != 4 or tuple(v.shape[2:]) != (1, 1) or a.get("group", 1) != 1
            or list(a.get("strides", [1, 1])) != [1, 1] or any(a.get("pads", [0, 0, 0, 0]))):
        return None
    return v[:, :, 0, 0]


def channel_scaled_1x1(graph, tensor):
    """(c, V, gate, plus_one) when tensor is x * gate or x + x * gate, with x = Conv1x1(V, c)
    without bias and gate a per-channel [1, C, 1, 1] tensor."""
    node = graph.producer.get(tensor)
    if node is None:
        return None
    plus_one = False
    if node.op_type == "Add":
        a, b = node.input
        mul = graph.producer.get(b)
        if mul is None or mul.op_type != "Mul" or a not in mul.input:
            mul = graph.producer.get(a)
            a, b = b, a
            if mul is None or mul.op_type != "Mul" or a not in mul.input:
                return None
        x, plus_one = a, True
    elif node.op_type == "Mul":
        mul, x = node, None
    else:
        return None
    for i, j in ((0, 1), (1, 0)):
        if x is not None and mul.input[i] != x:
            continue
        cand, gate = mul.input[i], mul.input[j]
        conv = graph.producer.get(cand)
        v = plain_1x1(graph, conv)
        if v is None or len(conv.input) > 2:
            continue
        if graph.shapes.get(gate, [])[2:] != [1, 1] or graph.shapes.get(gate, [0, 0])[1] != v.shape[0]:
            continue
        return conv.input[0], v, gate, plus_one
    return None


def fold_matrix(k):
    """R[t + 1, a] = 1 when a 3x3 tap a (0..2) over a k-times nearest upsample reads the coarse
    pixel at fine offset t (-1..k) from the start of its block."""
    r = np.zeros((k + 2, 3), np.float32)
    for t in range(-1, k + 1):
        for a in range(3):
            if 1 - a <= t <= k - a:
                r[t + 1, a] = 1
    return r


def terms_of(graph, tensor, weight, k=1):
    """The pieces a 3x3 convolution with `weight` [co, ci, 3, 3] of `tensor`, upsampled k
    times, splits into, each (source tensor, weight slice, upsampling k, channel-scaled 1x1
    or None): the cheapest split found. The pieces read tensors the model computes anyway, so
    only this convolution's multiplications are compared."""
    plain = [(tensor, weight, k, None)]
    scaled = channel_scaled_1x1(graph, tensor)
    if scaled is not None:
        plain = min(plain, [(tensor, weight, k, scaled)], key=lambda t: cost(graph, t))
    node = graph.producer.get(tensor)
    if node is None:
        return plain
    split = None
    if node.op_type == "Add" and all(graph.shapes.get(i) == graph.shapes.get(tensor) for i in node.input):
        split = terms_of(graph, node.input[0], weight, k) + terms_of(graph, node.input[1], weight, k)
    elif node.op_type == "Concat" and attrs(node).get("axis") == 1 and k == 1:
        split, start = [], 0
        for part in node.input:
            c = graph.shapes.get(part, [0, 0])[1]
            if not c:
                return plain
            split += terms_of(graph, part, weight[:, start:start + c])
            start += c
        if start != weight.shape[1]:
            return plain
    elif (scale := nearest_scale(graph, node)) is not None:
        split = terms_of(graph, node.input[0], weight, k * scale)
    if split is not None and cost(graph, split) < cost(graph, plain):
        return split
    return plain


def cost(graph, terms):
    """Multiplications of the pieces at the size shapes were inferred at."""
    total = 0
    for source, w, k, scaled in terms:
        taps = 9 if k == 1 else (k + 2) ** 2
        if scaled is None:
            total += macs(graph, source, w.shape[0], w.shape[1], taps)
        else:
            c, v = scaled[0], scaled[1]
            total += macs(graph, c, w.shape[0], v.shape[1], taps)
    return total


def macs(graph, tensor, co, ci, taps):
    h, w = graph.shapes[tensor][2:]
    return h * w * co * ci * taps


def emit_term(graph, nodes, source, w, k, scaled):
    """Appends the nodes of one piece and returns its output."""
    co = w.shape[0]
    if k == 1:
        kernel = w.transpose(1, 0, 2, 3)  # [ci, co, 3, 3]: composed over ci below
        op, shape = "Conv", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    else:
        r = fold_matrix(k)
        kernel = np.einsum("ya,xb,oiab->ioyx", r, r, w).astype(np.float32)  # [ci, co, k+2, k+2]
        op, shape = "ConvTranspose", dict(kernel_shape=[k + 2, k + 2], pads=[1, 1, 1, 1], strides=[k, k])
    out = graph.name("term")
    if scaled is None:
        weight = kernel.transpose(1, 0, 2, 3) if op == "Conv" else kernel
        nodes.append(helper.make_node(op, [source, graph.const("w", weight.astype(np.float32))], [out], **shape))
        return out
    c, v, gate, plus_one = scaled
    # K[j, rest] = sum_ci V[ci, j] g[ci] kernel[ci, rest], with g = gate (+ 1), per photo.
    g = graph.name("gate")
    nodes.append(helper.make_node("Reshape", [gate, graph.const("shape", np.array([1, -1], np.int64))], [g]))
    if plus_one:
        g1 = graph.name("gate")
        nodes.append(helper.make_node("Add", [g, graph.const("one", np.array(1, np.float32))], [g1]))
        g = g1
    vt = graph.name("vg")
    nodes.append(helper.make_node("Mul", [graph.const("vt", np.ascontiguousarray(v.T)), g], [vt]))
    flat = graph.name("k")
    nodes.append(helper.make_node("MatMul", [vt, graph.const("kernel", kernel.reshape(kernel.shape[0], -1))], [flat]))
    kern = graph.name("k")
    dims = np.array([v.shape[1], co, *kernel.shape[2:]], np.int64)
    nodes.append(helper.make_node("Reshape", [flat, graph.const("shape", dims)], [kern]))
    if op == "Conv":
        t = graph.name("k")
        nodes.append(helper.make_node("Transpose", [kern], [t], perm=[1, 0, 2, 3]))
        kern = t
    nodes.append(helper.make_node(op, [c, kern], [out], **shape))
    return out


def fold_conv(graph, conv):
    """The nodes replacing conv, or None where folding would not save a fifth of its
    multiplications."""
    w = graph.consts[conv.input[1]]
    terms = terms_of(graph, conv.input[0], w)
    if len(terms) == 1 and terms[0][2] == 1 and terms[0][3] is None:
        return None
    before, after = cost(graph, [(conv.input[0], w, 1, None)]), cost(graph, terms)
    # Each piece is a layer more to schedule: a small saving is not worth it.
    if after > MIN_SAVING * before:
        return None
    nodes = []
    outs = [emit_term(graph, nodes, source, ws, k, scaled) for source, ws, k, scaled in terms]
    if len(conv.input) > 2 and conv.input[2]:
        outs.append(graph.const("b", graph.consts[conv.input[2]].reshape(1, -1, 1, 1)))
    acc = outs[0]
    for i, o in enumerate(outs[1:]):
        nxt = conv.output[0] if i == len(outs) - 2 else graph.name("sum")
        nodes.append(helper.make_node("Add", [acc, o], [nxt]))
        acc = nxt
    print(f"  {conv.name}: {len(terms)} pieces, {before / 1e6:.0f} -> {after / 1e6:.0f} M multiplications "
          f"at {SHAPE_SIZE[1]}x{SHAPE_SIZE[0]}", file=sys.stderr)
    return nodes


def fold_pooled_1x1(graph, pool):
    """GlobalAveragePool(Conv1x1(V, c)) as Conv1x1(V, GlobalAveragePool(c))."""
    conv = graph.producer.get(pool.input[0])
    if plain_1x1(graph, conv) is None:
        return None
    pooled = graph.name("pooled")
    return [helper.make_node("GlobalAveragePool", [conv.input[0]], [pooled]),
            helper.make_node("Conv", [pooled, *conv.input[1:]], [pool.output[0]], kernel_shape=[1, 1])]


def unfold_strided_transpose(graph, node):
    """A transposed convolution whose kernel equals its stride (no overlap, no padding) as a
    1x1 convolution to co * s * s channels and a depth-to-space: the same products, laid out
    as one matrix product."""
    if node.op_type != "ConvTranspose" or node.input[1] not in graph.consts:
        return None
    w = graph.consts[node.input[1]]  # [ci, co, s, s]
    a = attrs(node)
    s = list(a.get("strides", [1, 1]))
    if (w.ndim != 4 or a.get("group", 1) != 1 or s[0] != s[1] or list(w.shape[2:]) != s
            or any(a.get("pads", [0, 0, 0, 0])) or any(a.get("output_padding", [0, 0]))
            or list(a.get("dilations", [1, 1])) != [1, 1] or "output_shape" in a):
        return None
    ci, co, k = w.shape[0], w.shape[1], s[0]
    flat = w.reshape(ci, co * k * k).T.reshape(co * k * k, ci, 1, 1)  # channel c * k * k + dy * k + dx
    inputs = [node.input[0], graph.const("w", np.ascontiguousarray(flat))]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(graph.const("b", np.repeat(graph.consts[node.input[2]], k * k)))
    spread = graph.name("spread")
    return [helper.make_node("Conv", inputs, [spread], kernel_shape=[1, 1]),
            helper.make_node("DepthToSpace", [spread], [node.output[0]], blocksize=k, mode="CRD")]


def remove_dead(graph_proto):
    nodes = list(graph_proto.node)
    while True:
        used = {i for n in nodes for i in n.input} | {o.name for o in graph_proto.output}
        alive = [n for n in nodes if any(o in used for o in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del graph_proto.node[:]
    graph_proto.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    inits = [i for i in graph_proto.initializer if i.name in used]
    del graph_proto.initializer[:]
    graph_proto.initializer.extend(inits)


def fold(model):
    graph = Graph(model)
    replaced = {}
    for node in list(graph.g.node):
        if is_plain_3x3(graph, node):
            new = fold_conv(graph, node)
            if new:
                replaced[node.name or node.output[0]] = new
    # Pools are rewritten after the convolutions so that a map the folds no longer read is
    # not computed for its average alone.
    for node in list(graph.g.node):
        if node.op_type == "GlobalAveragePool":
            new = fold_pooled_1x1(graph, node)
            if new:
                replaced[node.name or node.output[0]] = new
    for node in list(graph.g.node):
        new = unfold_strided_transpose(graph, node)
        if new and graph.consts[node.input[1]].shape[1] < UNFOLD_BELOW_CHANNELS:
            replaced[node.name or node.output[0]] = new
    nodes = []
    for node in graph.g.node:
        nodes += replaced.get(node.name or node.output[0], [node])
    del graph.g.node[:]
    graph.g.node.extend(nodes)
    remove_dead(graph.g)
    return len(replaced)


def with_logits(model):
    """A copy whose output is the network's value before its final sigmoid, where one is: the
    probabilities themselves are mostly 0 or 1, which would hide a difference."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    out = m.graph.output[0].name
    node = next((n for n in m.graph.node if out in n.output), None)
    if node is not None and node.op_type == "Sigmoid":
        del m.graph.output[:]
        m.graph.output.append(helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    return m


def check(original, folded):
    """The largest difference between the two models' outputs, relative to the outputs' scale,
    on random photos at the check sizes."""
    rng = np.random.default_rng(7)
    a, b = ReferenceEvaluator(with_logits(original)), ReferenceEvaluator(with_logits(folded))
    name = original.graph.input[0].name
    worst = 0.0
    for h, w in CHECK_SIZES:
        x = rng.normal(0, 1, (1, 3, h, w)).astype(np.float32)
        ya, yb = a.run(None, {name: x})[0], b.run(None, {name: x})[0]
        if ya.shape != yb.shape:
            sys.exit(f"fold-detector: the folded model's output is {yb.shape}, the original's {ya.shape}")
        worst = max(worst, float(np.abs(ya - yb).max() / max(1.0, np.abs(ya).max())))
    if worst > TOLERANCE:
        sys.exit(f"fold-detector: the folded model differs from the original by {worst:g} "
                 f"(more than {TOLERANCE:g}); not written")
    return worst


def main(src, dst):
    original = onnx.load(src)
    folded = onnx.ModelProto()
    folded.CopyFrom(original)
    count = fold(folded)
    onnx.checker.check_model(folded)
    worst = check(original, folded)
    onnx.save(folded, dst)
    print(f"fold-detector: {count} layers rewritten; largest difference from the original "
          f"{worst:.1e}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
