#!/usr/bin/env python3
"""Builds a tiny ONNX model shaped like a YOLOv8/v11 export (input `images` [1, 3, 640, 640],
output `output0` [1, 84, N]) whose output is fixed: the candidates below, whatever the photo.
The tests check that the worker letterboxes, decodes, suppresses per class and draws labels
exactly as these candidates say. Writes MODEL.onnx and MODEL.json (the candidates).

usage: make-test-yolo.py OUT.onnx
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIDE = 640
CLASSES = 80
# (centre x, centre y, width, height) in input pixels, class, score.
CANDIDATES = [
    (200, 300, 120, 200, 0, 0.90),   # person
    (205, 305, 120, 200, 0, 0.60),   # the same person again: suppressed by NMS
    (210, 300, 100, 150, 16, 0.80),  # a dog over the person: another class, kept
    (480, 320, 100, 60, 2, 0.10),    # a car below the confidence threshold: dropped
    (500, 330, 80, 80, 1, 0.55),     # a bicycle
]


def main(out):
    n = len(CANDIDATES)
    table = np.zeros((1, 4 + CLASSES, n), dtype=np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(CANDIDATES):
        table[0, 0:4, i] = (cx, cy, w, h)
        table[0, 4 + cls, i] = score
    # output0 = table + 0 * mean(images): a real graph from input to output, fixed result.
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m1"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["m1"], ["m2"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["m2", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "test-yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + CLASSES, n])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.zeros(1, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="gallery tests")
    onnx.checker.check_model(model)
    onnx.save(model, out)
    with open(out.rsplit(".", 1)[0] + ".json", "w") as f:
        json.dump({"side": SIDE, "candidates": CANDIDATES}, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
