"""A folder of photo-sized JPEGs (500x375 and 375x500, quality 90) for bench_loader: Fashion-MNIST pictures, three
per image as its R, G, B planes, upscaled. usage: bench_loader_make.py ROOT [N]"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

root, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 512
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    fm = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
for i in range(n):
    size = (500, 375) if i % 3 else (375, 500)
    img = Image.merge("RGB", [Image.fromarray(fm[(3 * i + c) % len(fm)]).resize(size, Image.BICUBIC) for c in range(3)])
    os.makedirs(f"{root}/class{i % 4}", exist_ok=True)
    img.save(f"{root}/class{i % 4}/img{i:05d}.jpg", quality=90)
