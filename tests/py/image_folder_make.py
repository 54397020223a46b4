"""Writes an ImageFolder tree of real image content (Fashion-MNIST pictures, three of them as the R, G, B planes of
the colour ones) at many sizes and aspect ratios, as JPEG at several qualities and subsamplings and as PNG in the
modes PIL writes (RGB, L, P, P with transparency, RGBA, LA, I;16, 1), plus files ImageFolder must ignore.
usage: image_folder_make.py ROOT"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

root = sys.argv[1]
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    fm = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)

sizes = [(28, 28), (45, 61), (120, 90), (333, 250), (500, 375), (375, 500), (640, 97), (31, 400)]
k = 0


def picture(size, colour):
    global k
    planes = [Image.fromarray(fm[(k + 17 * c) % len(fm)]).resize(size, Image.BICUBIC) for c in range(3)]
    k += 1
    if not colour:
        return planes[0]
    return Image.merge("RGB", planes)


def write(path, img, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)


classes = {"cat": [], "Dog": [], "bird": []}
for i, size in enumerate(sizes):
    rgb, gray = picture(size, True), picture(size, False)
    write(f"{root}/cat/q{i}_50.jpg", rgb, quality=50)
    write(f"{root}/cat/q{i}_95.JPEG", rgb, quality=95, subsampling=0)
    write(f"{root}/Dog/g{i}.jpeg", gray, quality=80)
    write(f"{root}/Dog/rgb{i}.png", rgb)
    write(f"{root}/bird/l{i}.png", gray)
    write(f"{root}/bird/p{i}.png", rgb.quantize(64))
    write(f"{root}/bird/sub/rgba{i}.PNG", Image.merge("RGBA", list(rgb.split()) + [gray]))
    write(f"{root}/bird/sub/la{i}.png", Image.merge("LA", [gray, rgb.split()[1]]))
    if i < 3:
        write(f"{root}/bird/i16_{i}.png", Image.fromarray(np.asarray(gray).astype(np.uint16) * 3 + 100))
        write(f"{root}/bird/one{i}.png", gray.convert("1"))
        write(f"{root}/cat/q{i}_75.jpg", rgb, quality=75, subsampling=1)
        p = rgb.quantize(16)
        write(f"{root}/Dog/ptrans{i}.png", p, transparency=3)
# Files and folders ImageFolder ignores: other extensions, no extension, a file at the root.
for name in ["cat/notes.txt", "cat/.DS_Store", "bird/anim.gif", "Dog/README", "readme.txt", "Dog/x.jpg.bak"]:
    with open(f"{root}/{name}", "w") as f:
        f.write("not an image\n")
