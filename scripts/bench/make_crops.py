#!/usr/bin/env python3
"""Photos the detector was not tuned on, made from the test photos: crops at random places
and scales, in the aspect ratios cameras and phones produce (4:3 and 3:4, 3:2, 16:9 and 9:16,
1:1), resized to 0.8-3 MP and saved as JPEGs at a random quality, with the ground truth of
the words that lie wholly inside (det_eval.py's format beside each). A crop that would cut a
word is drawn again, so that no half-word counts against precision.

usage: make_crops.py PHOTO_DIR OUT_DIR [COUNT] [SEED]"""
import glob
import json
import os
import random
import sys

import cv2

ASPECTS = [(4, 3), (3, 4), (3, 2), (16, 9), (9, 16), (1, 1)]
TRIES = 200


def crop_once(rng, img, words, aspect):
    h, w = img.shape[:2]
    ax, ay = aspect
    cw = rng.randint(int(w * 0.45), w)
    ch = cw * ay // ax
    if ch > h:
        ch = rng.randint(int(h * 0.45), h)
        cw = ch * ax // ay
    if cw > w or cw < 64 or ch < 64:
        return None
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    inside, cut = [], False
    for b in words:
        ox = min(b[2], x + cw) - max(b[0], x)
        oy = min(b[3], y + ch) - max(b[1], y)
        if ox <= 0 or oy <= 0:
            continue
        if b[0] >= x and b[1] >= y and b[2] <= x + cw and b[3] <= y + ch:
            inside.append(b)
        else:
            cut = True
    if cut or not inside:
        return None
    return x, y, cw, ch, inside


def main(src, out, count, seed):
    rng = random.Random(seed)
    photos = []
    for f in sorted(glob.glob(os.path.join(src, "*.jpg"))):
        truth = json.load(open(f[:-4] + ".json"))
        photos.append((cv2.imread(f, cv2.IMREAD_COLOR), [w["box"] for w in truth["words"]], truth["words"]))
    os.makedirs(out, exist_ok=True)
    made = 0
    while made < count:
        img, boxes, words = rng.choice(photos)
        aspect = rng.choice(ASPECTS)
        for _ in range(TRIES):
            c = crop_once(rng, img, boxes, aspect)
            if c:
                break
        else:
            continue
        x, y, cw, ch, inside = c
        pixels = rng.uniform(0.8e6, 3.0e6)
        s = (pixels / (cw * ch)) ** 0.5
        tw, th = max(32, round(cw * s)), max(32, round(ch * s))
        sx, sy = tw / cw, th / ch
        crop = cv2.resize(img[y:y + ch, x:x + cw], (tw, th),
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        name = os.path.join(out, f"crop{made:03d}")
        cv2.imwrite(name + ".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(70, 95)])
        kept = [{"text": w["text"], "box": [round((b[0] - x) * sx), round((b[1] - y) * sy),
                                            round((b[2] - x) * sx), round((b[3] - y) * sy)]}
                for w, b in ((w, w["box"]) for w in words) if b in inside]
        json.dump({"width": tw, "height": th, "words": kept}, open(name + ".json", "w"))
        made += 1


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 60,
         int(sys.argv[4]) if len(sys.argv) > 4 else 1)
