"""Writes an ImageFolder tree of real photographs: scikit-image's sample pictures (Debian's python3-skimage ships
them in skimage/data), cropped to several sizes and aspect ratios and saved as JPEG at several qualities and
chroma subsamplings and as PNG in modes RGB, L, P and RGBA; plus the package's own JPEG photos unchanged.
usage: photo_folder_make.py ROOT SKIMAGE_DATA_DIR"""
import os
import sys

from PIL import Image

root, data = sys.argv[1], sys.argv[2]
photos = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "camera.png"]
# (left, top) as fractions of the free room, then (width, height): landscape, portrait, small, thin, odd sizes
crops = [(0.5, 0.5, 400, 300), (0.2, 0.7, 240, 320), (0.9, 0.1, 97, 61), (0.3, 0.3, 41, 260)]


def save(img, path, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)


for name in photos:
    src = Image.open(f"{data}/{name}")
    stem = name.split(".")[0]
    for k, (fx, fy, w, h) in enumerate(crops):
        w, h = min(w, src.width), min(h, src.height)
        x, y = int(fx * (src.width - w)), int(fy * (src.height - h))
        c = src.crop((x, y, x + w, y + h))
        rgb = c.convert("RGB")
        save(rgb, f"{root}/{stem}/c{k}_q50.jpg", quality=50)
        save(rgb, f"{root}/{stem}/c{k}_q90_444.jpg", quality=90, subsampling=0)
        save(c, f"{root}/{stem}/c{k}_q75.jpeg", quality=75, subsampling=1)
        save(rgb, f"{root}/{stem}/c{k}_rgb.png")
        save(c.convert("L"), f"{root}/{stem}/c{k}_l.png")
        save(rgb.quantize(256), f"{root}/{stem}/c{k}_p.png")
        save(Image.merge("RGBA", list(rgb.split()) + [c.convert("L")]), f"{root}/{stem}/c{k}_rgba.png")
# Camera JPEGs as the package ships them (progressive or baseline, with whatever markers they carry).
for name in ["rocket.jpg", "hubble_deep_field.jpg"]:
    os.makedirs(f"{root}/originals", exist_ok=True)
    with open(f"{data}/{name}", "rb") as f, open(f"{root}/originals/{name}", "wb") as g:
        g.write(f.read())
