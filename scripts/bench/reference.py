"""The upload pipeline as a team would write it with the usual Python tools: OpenCV for
decode/resize/draw/encode, ONNX Runtime for the same PP-OCRv4 detection model with the same
input size rule and post-processing, one thread each. Its input size is PP-OCR's own, whose
Python rounding takes a 4:3 photo's short side (22.5 x 32 at 960) to 704 where the worker
takes it to 736: the worker's network does ~4 % more on such photos. Prints one JSON document like
`bench-pipeline`: median ms per stage per photo size class, and peak RSS.

With --cpu, prints instead the CPU it spends per photo, all stages from the JPEG's bytes to
the two encoded copies, over the given photos one after another (after one untimed pass):
what `scripts/bench/worker-cpu` sets against the worker. With --boxes, the boxes it finds on
each photo, as det_eval.py reads them (`scripts/bench/detector-quality`).

usage: reference.py MODEL DIR [RUNS]
       reference.py MODEL --cpu PHOTO...
       reference.py MODEL --boxes PHOTO..."""
import glob
import json
import os
import resource
import statistics
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

cv2.setNumThreads(1)
model, directory = sys.argv[1], sys.argv[2]
cpu_mode = directory == "--cpu"
boxes_mode = directory == "--boxes"
runs = int(sys.argv[3]) if len(sys.argv) > 3 and not (cpu_mode or boxes_mode) else 5
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode(data):
    # IMREAD_COLOR applies the EXIF orientation, as the pipeline does.
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def detect(img):
    h, w = img.shape[:2]
    scale = min(1.0, 960 / max(h, w))
    rw, rh = (max(32, int(round(v * scale / 32)) * 32) for v in (w, h))
    x = cv2.cvtColor(cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    prob = session.run(None, {input_name: x})[0][0, 0]
    mask = cv2.dilate((prob > 0.3).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:1000]:
        (cx, cy), (bw, bh), angle = cv2.minAreaRect(contour)
        if min(bw, bh) < 3:
            continue
        pts = cv2.boxPoints(((cx, cy), (bw, bh), angle))
        x0, y0 = np.clip(np.floor(pts.min(0)).astype(int), 0, [rw - 1, rh - 1])
        x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int), 0, [rw - 1, rh - 1])
        m = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(m, [(pts - [x0, y0]).astype(np.int32)], 1)
        if cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], m)[0] < 0.5:
            continue
        d = bw * bh * 1.6 / (2 * (bw + bh))
        if min(bw, bh) + 2 * d < 5:
            continue
        grown = cv2.boxPoints(((cx, cy), (bw + 2 * d, bh + 2 * d), angle)) * [w / rw, h / rh]
        lo, hi = grown.min(0), grown.max(0)
        boxes.append((int(max(0, lo[0])), int(max(0, lo[1])), int(min(w, hi[0])), int(min(h, hi[1]))))
    return boxes


def annotate(img, boxes):
    out = img.copy()
    t = max(2, max(img.shape[:2]) // 320)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (x0, y0), (x1, y1), (40, 40, 255), t)
    return cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]


def thumbnail(img):
    h, w = img.shape[:2]
    s = 256 / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) if s < 1 else img
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]


def whole(data):
    img = decode(data)
    annotate(img, detect(img))
    thumbnail(img)


if boxes_mode:
    found = [detect(decode(open(p, "rb").read())) for p in sys.argv[3:]]
    print(json.dumps([[dict(x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for b in boxes] for boxes in found]))
    sys.exit(0)

if cpu_mode:
    photos = [open(p, "rb").read() for p in sys.argv[3:]]
    for data in photos:
        whole(data)
    start = time.process_time()
    for data in photos:
        whole(data)
    print(json.dumps({
        "implementation": f"reference (opencv {cv2.__version__} + onnxruntime {ort.__version__})",
        "ms_per_photo": (time.process_time() - start) * 1000 / len(photos),
    }))
    sys.exit(0)

stages = {}
paths = sorted(glob.glob(os.path.join(directory, "*.jpg")))
for path in paths:  # warm-up over every photo, untimed (as bench-pipeline does)
    img = decode(open(path, "rb").read())
    annotate(img, detect(img)); thumbnail(img)
for path in paths:
    klass = "12MP" if os.path.basename(path).startswith("big") else "1-2MP"
    data = open(path, "rb").read()
    for _ in range(runs):
        times = stages.setdefault(klass, {})
        t = time.perf_counter(); img = decode(data); times.setdefault("decode", []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); boxes = detect(img); times.setdefault("detect", []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); annotate(img, boxes); times.setdefault("annotate", []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); thumbnail(img); times.setdefault("thumbnail", []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        img = decode(data); b = detect(img); annotate(img, b); thumbnail(img)
        times.setdefault("total", []).append((time.perf_counter() - t) * 1000)

print(json.dumps({
    "implementation": f"reference (opencv {cv2.__version__} + onnxruntime {ort.__version__})",
    "runs": runs,
    "classes": {k: {s: statistics.median(v) for s, v in st.items()} for k, st in stages.items()},
    "rss_mb_model_loaded": rss_model,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
