#!/usr/bin/env python3
"""Trains a NeuLens micro-flow supernet and its gate on cluttered 96×96 canvases, and exports
the neulens spec, the weights, a compact test set with PyTorch's reference outputs, and metrics.

The model is written so that PyTorch computes exactly what the compiled spec computes:

- convolutions are cross-correlations with symmetric padding, bias and a fused ReLU; no
  batchnorm (neulens would use one set of statistics for every width level);
- a width level with fraction f keeps the leading round(f·C) output channels of every supernet
  conv (and the matching input slice of the next one); the split layer (`down`) always emits its
  full width, because the tail expects it;
- adaptive inference cuts the image into a 3×3 grid of overlapping tiles whose windows are run
  backwards from the split layer's output blocks (exactly as neulens-codegen/src/microflow does),
  so each tile's output block equals the untiled supernet's output at that level restricted to
  the block. A per-tile level assignment is therefore computed here as: the untiled supernet at
  every level, one 8×8 block of the split map per tile taken from its level, then the tail;
- the gate sees exactly the tile's input window: conv 3×3 stride 2 pad 1 + ReLU, global max
  pool, dense(levels); argmax = level (0 = widest), softmax max = confidence.

Training (the NeuLens way): one shared weight set; after a widest-level warm-up, every step runs
all width levels on whole images (the widest learns from the labels, narrower ones from the
widest level's soft labels), plus two passes with mixed per-tile levels (one random, one shaped
like a gate's decision: object tiles wide, the others narrow). Then the gate: labels per tile
(by default the most compressed level whose logit change, with the other tiles at the widest,
stays within --label-eps of the decision margin; greedy match-label-raise is --labels mlr), loss
= class-balanced cross-entropy on those labels + 0.7 × compression (the expected MACs of the
tile under the gate's softmax, relative to its widest micro-flow), and a threshold calibration
on fresh training canvases (train/README.md).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from prepare_data import WORK, make_canvases  # noqa: E402

LEVELS = [1.0, 0.75, 0.5, 0.375, 0.25]
GRID = 3
IMAGE = 96
GATE_CH, GATE_K, GATE_S = 16, 3, 2
THETA = 0.9
WINDOW = GRID  # the spec's default Δw

# (name, out channels, kernel, stride, pad); all conv + ReLU. `down` is the split layer.
ARCH = {
    "digits": [("stem", 16, 3, 2, 1), ("c1", 32, 3, 1, 1), ("down", 32, 3, 2, 1),
               ("c3", 48, 3, 2, 1), ("c4", 64, 3, 2, 1)],
    "fashion": [("stem", 16, 3, 2, 1), ("c1", 32, 3, 1, 1), ("down", 32, 3, 2, 1),
                ("c3", 48, 3, 2, 1), ("c4", 64, 3, 2, 1)],
}
SPLIT = "down"
CLASSES = {
    "digits": [str(d) for d in range(10)],
    "fashion": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Ankle boot"],
}


def keep(c, f):
    """Channels a level keeps: round half away from zero, like Rust's f64::round."""
    return min(c, int(math.floor(f * c + 0.5)))


class Net(torch.nn.Module):
    def __init__(self, arch, classes=10):
        super().__init__()
        self.arch = arch
        self.split = [a[0] for a in arch].index(SPLIT)
        cin = 1
        for name, cout, k, s, p in arch:
            self.add_module(name, torch.nn.Conv2d(cin, cout, k, s, p))
            cin = cout
        self.fc = torch.nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.zeros_(m.bias)
        self.gate = torch.nn.Module()
        self.gate.conv = torch.nn.Conv2d(1, GATE_CH, GATE_K, GATE_S, GATE_K // 2)
        self.gate.fc = torch.nn.Linear(GATE_CH, len(LEVELS))

    def supernet(self, x, level):
        """The layers up to and including the split, at width level `level`, untiled."""
        f = LEVELS[level]
        cin = x.shape[1]
        for i, (name, cout, k, s, p) in enumerate(self.arch[: self.split + 1]):
            conv = getattr(self, name)
            co = cout if i == self.split else keep(cout, f)
            x = F.relu(F.conv2d(x, conv.weight[:co, :cin], conv.bias[:co], s, p))
            cin = co
        return x

    def tail(self, s):
        x = s
        for name, cout, k, st, p in self.arch[self.split + 1:]:
            x = F.relu(getattr(self, name)(x))
        return self.fc(x.amax((2, 3)))  # the spec's global max pool

    def forward(self, x):
        return self.tail(self.supernet(x, 0))

    def gate_logits(self, windows):
        """Gate logits per tile: `windows[t]` is the batch of tile t's input windows."""
        out = []
        for w in windows:
            h = F.relu(self.gate.conv(w))
            out.append(self.gate.fc(h.amax((2, 3))))
        return torch.stack(out, 1)  # [B, T, L]


# ---- tile geometry (the same backward region rule as neulens-codegen/src/microflow) ----

def window_need(start, end, k, s, pad, size):
    a = max(0, start * s - pad)
    b = min(size, max(0, (end - 1) * s + k - pad))
    return min(a, b), b


def geometry(arch):
    """Per tile: input window (rows, cols), and per supernet conv its output region size."""
    split = [a[0] for a in arch].index(SPLIT)
    sizes = [IMAGE]
    for _, _, k, s, p in arch[: split + 1]:
        sizes.append((sizes[-1] + 2 * p - k) // s + 1)
    n = sizes[-1]
    assert n % GRID == 0, "the grid must divide the split map"
    blk = n // GRID
    tiles = []
    for ty in range(GRID):
        for tx in range(GRID):
            rows, cols = (ty * blk, (ty + 1) * blk), (tx * blk, (tx + 1) * blk)
            regions = [None] * (split + 2)
            regions[split + 1] = (rows, cols)
            for i in range(split, -1, -1):
                _, _, k, s, p = arch[i]
                (r0, r1), (c0, c1) = regions[i + 1]
                regions[i] = (window_need(r0, r1, k, s, p, sizes[i]),
                              window_need(c0, c1, k, s, p, sizes[i]))
            tiles.append({"in_rows": regions[0][0], "in_cols": regions[0][1],
                          "out_rows": rows, "out_cols": cols, "regions": regions})
    return tiles, sizes, blk


def macs_table(arch, tiles, sizes, classes=10):
    split = [a[0] for a in arch].index(SPLIT)
    dense, cin = 0, 1
    for i, (_, cout, k, s, p) in enumerate(arch):
        if i <= split:
            o = sizes[i + 1]
        else:
            o = (sizes[-1] + 2 * p - k) // s + 1
            sizes = sizes + [o]
        dense += o * o * cout * cin * k * k
        cin = cout
    dense += cin * classes
    tail = dense
    cin = 1
    for i, (_, cout, k, s, p) in enumerate(arch[: split + 1]):
        tail -= sizes[i + 1] ** 2 * cout * cin * k * k
        cin = cout
    tile_macs = []
    for t in tiles:
        row = []
        for f in LEVELS:
            m, cin = 0, 1
            for i, (_, cout, k, s, p) in enumerate(arch[: split + 1]):
                co = cout if i == split else keep(cout, f)
                (r0, r1), (c0, c1) = t["regions"][i + 1]
                m += (r1 - r0) * (c1 - c0) * co * cin * k * k
                cin = co
            row.append(m)
        tile_macs.append(row)
    gate_macs = []
    for t in tiles:
        h = t["in_rows"][1] - t["in_rows"][0]
        w = t["in_cols"][1] - t["in_cols"][0]
        p = GATE_K // 2
        oh, ow = (h + 2 * p - GATE_K) // GATE_S + 1, (w + 2 * p - GATE_K) // GATE_S + 1
        gate_macs.append(oh * ow * GATE_CH * GATE_K * GATE_K + GATE_CH * len(LEVELS))
    return dense, tail, tile_macs, gate_macs


def tail_sizes(arch):
    sizes = [IMAGE]
    for _, _, k, s, p in arch:
        sizes.append((sizes[-1] + 2 * p - k) // s + 1)
    return sizes


def windows(x, tiles):
    return [x[:, :, t["in_rows"][0]: t["in_rows"][1], t["in_cols"][0]: t["in_cols"][1]]
            for t in tiles]


def mix(S, lv, blk):
    """Split maps S [L, B, C, H, W] and per-tile levels lv [B, T] → the stitched map."""
    B = lv.shape[0]
    idx = lv.view(B, GRID, GRID).repeat_interleave(blk, 1).repeat_interleave(blk, 2)
    idx = idx[None, :, None].expand(1, B, S.shape[2], S.shape[3], S.shape[4])
    return S.gather(0, idx)[0]


def control(levels, conf, tile_macs, fixed, budget, theta=THETA, window=WINDOW):
    """Port of neulens::microflow::control (same order, same stopping point)."""
    T, R = len(levels), len(tile_macs[0])
    levels = [min(int(l), R - 1) for l in levels]
    now = fixed + sum(tile_macs[t][levels[t]] for t in range(T))
    if now <= budget:
        return levels, True
    key = [((c if not math.isnan(c) else 0.0) >= theta, c if not math.isnan(c) else 0.0)
           for c in conf]
    order = sorted(range(T), key=lambda t: key[t])  # stable, like the insertion sort
    start = 0
    while start < T:
        end = min(start + max(window, 1), T)
        while True:
            stepped = False
            for t in order[start:end]:
                if levels[t] < R - 1:
                    now += tile_macs[t][levels[t] + 1] - tile_macs[t][levels[t]]
                    levels[t] += 1
                    stepped = True
                    if now <= budget:
                        return levels, True
            if not stepped:
                break
        start = end
    return levels, now <= budget


def to_input(u8):
    """u8 canvases [B, 96, 96] → f32 [B, 1, 96, 96] in [0, 1] (what the Rust test feeds too)."""
    return (torch.from_numpy(np.ascontiguousarray(u8)).float() / 255.0)[:, None]


def soft_ce(logits, target_probs):
    return -(target_probs * F.log_softmax(logits, 1)).sum(1).mean()


def object_tiles(pos, blk, scale, min_overlap=3):
    """[B, T] bool: which tiles' output blocks overlap the object (28×28 at `pos`) by at least
    `min_overlap` input pixels in both directions (`scale` input pixels per split-map pixel)."""
    side = blk * scale
    lo = torch.arange(GRID) * side
    y0, x0 = torch.from_numpy(pos[:, 0])[:, None], torch.from_numpy(pos[:, 1])[:, None]
    oy = (torch.minimum(y0 + 28, lo + side) - torch.maximum(y0, lo)) >= min_overlap  # [B, GRID]
    ox = (torch.minimum(x0 + 28, lo + side) - torch.maximum(x0, lo)) >= min_overlap
    return (oy[:, :, None] & ox[:, None, :]).reshape(len(pos), GRID * GRID)


def train_supernet(net, data, args, blk, rng):
    params = [p for n, p in net.named_parameters() if not n.startswith("gate.")]
    per_epoch = args.train_canvases // args.batch
    L = len(LEVELS)
    first = 0
    if args.init:  # resume after the warm-up from its checkpoint
        net.load_state_dict(torch.load(args.init))
        first = args.warmup_epochs
    for ep in range(first, args.epochs):
        if ep == 0:  # warm-up: the widest level alone, one-cycle schedule
            opt = torch.optim.Adam(params, lr=args.lr)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=args.lr, total_steps=args.warmup_epochs * per_epoch, pct_start=0.15)
        if ep == args.warmup_epochs:  # all levels: a fresh, lower, cosine-annealed rate
            opt = torch.optim.Adam(params, lr=args.joint_lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=(args.epochs - args.warmup_epochs) * per_epoch)
        # Curriculum: little clutter in the first epochs, the test-time amount from the third.
        clutter = [(0, 1), (2, 4)][ep] if ep < 2 else (3, 6)
        if ep == args.warmup_epochs and not args.init:
            torch.save(net.state_dict(), os.path.join(WORK, f"{args.dataset}_warmup.pt"))
        canv, lab, pos = make_canvases(data["train_objects"], data["train_labels"],
                                       data["train_objects"], rng, n=args.train_canvases,
                                       progress=f"epoch {ep + 1}/{args.epochs} canvases",
                                       clutter=clutter)
        perm = rng.permutation(len(canv))
        bar = tqdm(range(len(canv) // args.batch), desc=f"epoch {ep + 1}/{args.epochs} train",
                   unit="batch")
        run_loss, run_acc = 0.0, 0.0
        for b in bar:
            ii = perm[b * args.batch: (b + 1) * args.batch]
            x = to_input(canv[ii]).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(lab[ii])
            # bf16 autocast (AMX/AVX-512 BF16 where the CPU has them) for speed; evaluation,
            # gate labels and the exported reference outputs are f32.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
                if ep < args.warmup_epochs:  # the widest level alone, on labels
                    logits0 = net(x).float()
                    loss = F.cross_entropy(logits0, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    acc = (logits0.argmax(1) == y).float().mean().item()
                    run_loss = 0.95 * run_loss + 0.05 * loss.item() if b else loss.item()
                    run_acc = 0.95 * run_acc + 0.05 * acc if b else acc
                    bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}")
                    continue
                S = torch.stack([net.supernet(x, l) for l in range(L)])
                logits0 = net.tail(S[0]).float()
                loss = F.cross_entropy(logits0, y)
                soft = F.softmax(logits0.detach(), 1)
                # In-place distillation: every narrower level learns the widest level's soft
                # labels, each with weight --narrow-weight (a total of 1 over the four levels
                # undertrained them; more than that undid the warm-up in the first runs).
                for l in range(1, L):
                    loss = loss + args.narrow_weight * soft_ce(net.tail(S[l]).float(), soft)
                # Mixed levels, as adaptive inference stitches them: one pass with a random
                # level per tile, and one shaped like a gate's decision (the tiles that hold the
                # object at one of the three widest levels, the others at one of the two
                # narrowest), so the tail learns to ignore narrow background tiles.
                T = GRID * GRID
                lv = torch.from_numpy(rng.integers(0, L, size=(len(ii), T)))
                loss = loss + soft_ce(net.tail(mix(S, lv, blk)).float(), soft)
                if args.object_mix > 0:
                    obj = object_tiles(pos[ii], blk, IMAGE // (GRID * blk))
                    wide = torch.from_numpy(rng.integers(0, 3, size=(len(ii), T)))
                    narrow = torch.from_numpy(rng.integers(L - 2, L, size=(len(ii), T)))
                    lv = torch.where(obj, wide, narrow)
                    loss = loss + args.object_mix * soft_ce(net.tail(mix(S, lv, blk)).float(),
                                                            soft)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run_loss = 0.95 * run_loss + 0.05 * loss.item() if b else loss.item()
            acc = (logits0.argmax(1) == y).float().mean().item()
            run_acc = 0.95 * run_acc + 0.05 * acc if b else acc
            bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}")


@torch.no_grad()
def split_maps(net, x, bs=250):
    """Untiled supernet at every level: [L, N, C, H, W]."""
    out = []
    for i in range(0, len(x), bs):
        xb = x[i: i + bs].contiguous(memory_format=torch.channels_last)
        out.append(torch.stack([net.supernet(xb, l) for l in range(len(LEVELS))]))
    return torch.cat(out, 1)


@torch.no_grad()
def tail_logits(net, S, lv, blk, bs=500):
    return torch.cat([net.tail(mix(S[:, i: i + bs], lv[i: i + bs], blk))
                      for i in range(0, S.shape[1], bs)])


@torch.no_grad()
def mlr_labels(net, S, y, blk, min_prob, rng):
    """Match-label-raise: every tile starts at the widest level; in a random tile order, raise
    one tile's compression step by step while the prediction stays correct (and the true class
    keeps probability ≥ min_prob); the tile's label is the last level that passed. Images the
    widest level gets wrong are dropped (returned mask)."""
    L, N = S.shape[0], S.shape[1]
    T = GRID * GRID
    lv = torch.zeros(N, T, dtype=torch.long)

    def ok(levels):
        p = F.softmax(tail_logits(net, S, levels, blk), 1)
        return (p.argmax(1) == y) & (p.gather(1, y[:, None])[:, 0] >= min_prob)

    valid = ok(lv)
    order = rng.permutation(T)
    for t in tqdm(order, desc="gate labels (match-label-raise)", unit="tile"):
        active = valid.clone()
        for l in range(1, L):
            trial = lv.clone()
            trial[active, t] = l
            good = ok(trial) & active
            lv[good, t] = l
            active = good
            if not active.any():
                break
    return lv, valid


@torch.no_grad()
def independent_labels(net, S, y, blk, min_prob):
    """Per tile, the most compressed level at which the image stays correct (true class with
    probability ≥ min_prob) while every other tile runs at the widest level, every level up to it
    passing too. A tile's label then depends on that tile alone (the greedy match-label-raise
    order made the same tile's label depend on which tiles had been raised before it). Images the
    widest level gets wrong are dropped (returned mask)."""
    L, N = S.shape[0], S.shape[1]
    T = GRID * GRID
    lv = torch.zeros(N, T, dtype=torch.long)

    def ok(levels):
        p = F.softmax(tail_logits(net, S, levels, blk), 1)
        return (p.argmax(1) == y) & (p.gather(1, y[:, None])[:, 0] >= min_prob)

    base = torch.zeros(N, T, dtype=torch.long)
    valid = ok(base)
    for t in tqdm(range(T), desc="gate labels (per tile, others widest)", unit="tile"):
        active = valid.clone()
        for l in range(1, L):
            trial = base.clone()
            trial[:, t] = l
            good = ok(trial) & active
            lv[good, t] = l
            active = good
            if not active.any():
                break
    return lv, valid


@torch.no_grad()
def margin_labels(net, S, y, blk, eps):
    """Per tile, the most compressed level whose effect on the logits stays small against the
    decision margin: with every other tile at the widest level, max_k |z_k − z_k(widest)| ≤ eps ×
    (top-1 − top-2 logit of the widest), for that level and every wider one. Below eps = 0.5 no
    single tile can flip the prediction; a tile whose content the tail ignores (background,
    clutter the max pool does not pick) gets the narrowest level, one that holds the object a
    wider one. Images the widest level gets wrong are dropped (returned mask)."""
    L, N = S.shape[0], S.shape[1]
    T = GRID * GRID
    base = torch.zeros(N, T, dtype=torch.long)
    z0 = tail_logits(net, S, base, blk)
    top2 = z0.topk(2, 1).values
    margin = (top2[:, 0] - top2[:, 1]).clamp(min=1e-6)
    valid = z0.argmax(1) == y
    lv = torch.zeros(N, T, dtype=torch.long)
    for t in tqdm(range(T), desc="gate labels (logit change vs margin)", unit="tile"):
        active = valid.clone()
        for l in range(1, L):
            trial = base.clone()
            trial[:, t] = l
            d = (tail_logits(net, S, trial, blk) - z0).abs().amax(1) / margin
            good = (d <= eps) & active
            lv[good, t] = l
            active = good
            if not active.any():
                break
    return lv, valid


def train_gate(net, x, labels, valid, tiles, tile_macs, args, rng):
    cost = torch.tensor([[m / row[0] for m in row] for row in tile_macs])  # [T, L]
    opt = torch.optim.Adam(net.gate.parameters(), lr=args.gate_lr)
    idx = torch.nonzero(valid)[:, 0].numpy()
    # Optional class balance: weight each level's labels by (mean count / its count)^balance.
    counts = torch.bincount(labels[valid].reshape(-1), minlength=len(LEVELS)).double()
    cw = (counts.mean() / counts.clamp(min=1)) ** args.gate_balance
    cw = (cw / (cw * counts).sum() * counts.sum()).float()
    steps = max(1, args.gate_epochs * (len(idx) // args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.gate_lr, total_steps=steps,
                                                pct_start=0.1)
    for ep in range(args.gate_epochs):
        perm = rng.permutation(idx)
        bar = tqdm(range(len(perm) // args.batch), desc=f"gate epoch {ep + 1}/{args.gate_epochs}",
                   unit="batch")
        for b in bar:
            ii = torch.from_numpy(perm[b * args.batch: (b + 1) * args.batch])
            g = net.gate_logits(windows(x[ii], tiles))  # [B, T, L]
            lab = labels[ii]
            rec = F.cross_entropy(g.reshape(-1, g.shape[-1]), lab.reshape(-1), weight=cw)
            comp = (F.softmax(g, -1) * cost[None]).sum(-1).mean()
            loss = rec + args.compression * comp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            acc = (g.argmax(-1) == lab).float().mean().item()
            bar.set_postfix(rec=f"{rec.item():.3f}", comp=f"{comp.item():.3f}", acc=f"{acc:.3f}")


@torch.no_grad()
def calibrate_gate(net, data, tiles, blk, macs, args, rng):
    """Moves the gate's decision threshold for the narrowest level: subtracts δ from that
    level's bias (a grid 0, 0.25, …, 4), choosing the smallest δ whose accuracy on fresh
    *training* canvases is within --calibrate-loss points of the dense model's on them. The gate
    is trained with its compression term; this sets the operating point on the
    accuracy/MACs curve without looking at the test set. Returns the chosen δ."""
    dense, tail, tile_macs, gate_macs = macs
    canv, lab, _ = make_canvases(data["train_objects"], data["train_labels"],
                                 data["train_objects"], rng, n=args.calibrate_canvases,
                                 progress="calibration canvases")
    x, y = to_input(canv), torch.from_numpy(lab)
    S = split_maps(net, x)
    dense_acc = (tail_logits(net, S, torch.zeros(len(y), GRID * GRID, dtype=torch.long), blk)
                 .argmax(1) == y).float().mean().item()
    bias = net.gate.fc.bias
    b0 = bias[-1].item()
    chosen, rows = None, []
    for k in range(17):
        delta = 0.25 * k
        bias[-1] = b0 - delta
        lv, _ = gate_decisions(net, x, tiles)
        acc = (tail_logits(net, S, lv, blk).argmax(1) == y).float().mean().item()
        m = (torch.tensor([[tile_macs[t][int(l)] for t, l in enumerate(r)] for r in lv])
             .sum(1).double().mean().item() + tail + sum(gate_macs)) / dense
        rows.append({"delta": delta, "accuracy": acc, "macs_vs_dense": m})
        print(f"calibration δ {delta:.2f}: {100 * acc:.2f} % (dense {100 * dense_acc:.2f} %) "
              f"at {100 * m:.1f} % MACs")
        if acc >= dense_acc - args.calibrate_loss / 100:
            chosen = delta
            break
    if chosen is None:  # never within the allowance: the most accurate δ
        chosen = max(rows, key=lambda r: r["accuracy"])["delta"]
    bias[-1] = b0 - chosen
    args.calibration = {"dense_accuracy": dense_acc, "chosen_delta": chosen, "sweep": rows}
    return chosen


@torch.no_grad()
def gate_decisions(net, x, tiles, bs=500):
    g = torch.cat([net.gate_logits(windows(x[i: i + bs], tiles)) for i in range(0, len(x), bs)])
    p = F.softmax(g, -1)
    conf, lv = p.max(-1)
    return lv, conf


@torch.no_grad()
def evaluate(net, x, y, tiles, blk, macs, fractions):
    """Accuracy and mean MACs of every policy, with the compiled semantics."""
    dense, tail, tile_macs, gate_macs = macs
    T, L = len(tiles), len(LEVELS)
    S = split_maps(net, x)
    res = {"n": int(len(y))}
    dense_logits = torch.cat([net(x[i: i + 250]) for i in range(0, len(x), 250)])
    res["dense"] = {"accuracy": (dense_logits.argmax(1) == y).float().mean().item(),
                    "macs": dense}
    level_logits = []
    res["levels"] = []
    for l in range(L):
        lg = tail_logits(net, S, torch.full((len(y), T), l, dtype=torch.long), blk)
        level_logits.append(lg)
        m = tail + sum(tile_macs[t][l] for t in range(T))
        res["levels"].append({"fraction": LEVELS[l],
                              "accuracy": (lg.argmax(1) == y).float().mean().item(),
                              "macs": m, "macs_vs_dense": m / dense})
    glv, gconf = gate_decisions(net, x, tiles)
    gsum = sum(gate_macs)

    def policy(lv):
        lg = tail_logits(net, S, lv, blk)
        m = torch.tensor([[tile_macs[t][int(l)] for t, l in enumerate(row)] for row in lv])
        total = (m.sum(1) + tail + gsum).double()
        return lg, {"accuracy": (lg.argmax(1) == y).float().mean().item(),
                    "mean_macs": total.mean().item(),
                    "mean_macs_vs_dense": total.mean().item() / dense,
                    "level_histogram": torch.bincount(lv.reshape(-1), minlength=L).tolist()}

    gate_logits, res["gate"] = policy(glv)
    res["budget"] = []
    for f in fractions:
        b = int(dense * np.float64(np.float32(f)))
        lvs = [control(glv[i].tolist(), gconf[i].tolist(), tile_macs, gsum + tail, b)[0]
               for i in range(len(y))]
        _, r = policy(torch.tensor(lvs))
        r["fraction"] = f
        r["budget_macs"] = b
        res["budget"].append(r)
    return res, dense_logits, torch.stack(level_logits), glv, gconf, gate_logits


def spec_yaml(name, arch, ds, sizes):
    lines = [
        f"# A trained NeuLens micro-flow supernet on cluttered {ds} (one 28×28 object at a random",
        "# position on a 96×96 canvas with noise and clutter). Generated by train/train.py; the",
        "# weights, the shipped test set and the metrics come from the same run (see train/README.md).",
        "# The supernet is stem → c1 → down (the split, a stride-2 conv that emits its full width);",
        "# each of the 3×3 tiles runs it at one of five widths chosen by the learned gate, and the",
        "# tail (two 3×3 stride-2 convs, global max pool, dense) runs once on the stitched",
        "# 32×24×24 map. No batchnorm: one set of statistics could not serve every width.",
        f"name: {name}",
        "input: { channels: 1, height: 96, width: 96 }",
        f"weights: {name}.safetensors",
        "layers:",
    ]
    for lname, cout, k, s, p in arch:
        st = f", stride: {s}" if s != 1 else ""
        lines.append(f"  - {{ name: {lname}, op: conv, out: {cout}, kernel: {k}{st}, pad: {p}, act: relu }}")
    lines += [
        f"  - {{ name: gmp, op: maxpool, kernel: {sizes[-1]}, stride: {sizes[-1]} }}   # global max pool",
        "  - { name: fc, op: dense, out: 10 }",
        "microflows:",
        f"  split_after: {SPLIT}",
        f"  grid: {GRID}",
        f"  levels: [{', '.join(repr(f) for f in LEVELS)}]",
        f"  gate: {{ weights: gate, channels: {GATE_CH}, kernel: {GATE_K}, stride: {GATE_S} }}",
        f"  theta: {THETA}",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=["digits", "fashion"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=32)
    ap.add_argument("--warmup-epochs", type=int, default=16,
                    help="first epochs train the widest level alone (on labels)")
    ap.add_argument("--train-canvases", type=int, default=9600, help="fresh canvases per epoch")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--joint-lr", type=float, default=7e-4)
    ap.add_argument("--gate-canvases", type=int, default=8000)
    ap.add_argument("--gate-epochs", type=int, default=30)
    ap.add_argument("--gate-lr", type=float, default=1e-2)
    ap.add_argument("--compression", type=float, default=0.7, help="weight of the compression loss")
    ap.add_argument("--mlr-min-prob", type=float, default=0.7,
                    help="gate labels: the true class must keep at least this probability")
    ap.add_argument("--labels", choices=["mlr", "independent", "margin"], default="margin",
                    help="gate labels: greedy match-label-raise; per tile with others widest, "
                    "correct with --mlr-min-prob; per tile with others widest, logit change "
                    "within --label-eps of the margin")
    ap.add_argument("--label-eps", type=float, default=0.3)
    ap.add_argument("--min-label", type=int, default=None,
                    help="clamp gate labels to this level or narrower (1: never the widest); "
                    "default 1 for fashion, 0 for digits")
    ap.add_argument("--calibrate-loss", type=float, default=0.5,
                    help="gate threshold: the accuracy (points) the gate may lose against dense "
                    "on fresh training canvases (negative: no calibration)")
    ap.add_argument("--calibrate-canvases", type=int, default=2000)
    ap.add_argument("--gate-channels", type=int, default=GATE_CH)
    ap.add_argument("--gate-kernel", type=int, default=GATE_K)
    ap.add_argument("--gate-stride", type=int, default=GATE_S)
    ap.add_argument("--gate-balance", type=float, default=0.5,
                    help="class-balance exponent of the gate's cross-entropy (0 = none)")
    ap.add_argument("--narrow-weight", type=float, default=0.5,
                    help="distillation weight of each narrower level in the all-level epochs")
    ap.add_argument("--object-mix", type=float, default=1.0,
                    help="weight of the gate-shaped mixed pass (object tiles wide, others narrow)")
    ap.add_argument("--ship", type=int, default=256, help="test canvases shipped in specs/data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", type=int, default=1, help="bf16 autocast for supernet training")
    ap.add_argument("--out", default=os.path.join(ROOT, "specs"))
    ap.add_argument("--load", help="skip supernet training: load these weights")
    ap.add_argument("--init", help="skip the warm-up: start from this warm-up checkpoint")
    args = ap.parse_args()
    if args.min_label is None:
        # Fashion's labels put 12 % of the tiles at the widest level although uniform 0.75 is as
        # accurate as dense; without the widest level its gate spends MACs where they help.
        args.min_label = {"digits": 0, "fashion": 1}[args.dataset]
    # The gate's shape is read from these module constants by Net, macs_table and spec_yaml.
    globals().update(GATE_CH=args.gate_channels, GATE_K=args.gate_kernel,
                     GATE_S=args.gate_stride)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    data = dict(np.load(os.path.join(WORK, f"{args.dataset}.npz")))
    arch = ARCH[args.dataset]
    net = Net(arch)
    tiles, sizes, blk = geometry(arch)
    macs = macs_table(arch, tiles, sizes)
    dense, tail, tile_macs, gate_macs = macs
    print(f"dense MACs {dense:,}, tail {tail:,}, gate {sum(gate_macs):,}; tile windows: "
          + ", ".join(f"{t['in_rows']}×{t['in_cols']}" for t in tiles))

    if args.load:
        if args.load.endswith(".pt"):
            sd = torch.load(args.load)
        else:
            from safetensors.torch import load_file
            sd = load_file(args.load)
        # The gate keeps its seeded initialisation (the same as in a full run, where supernet
        # training does not touch it), so its shape may differ from the checkpoint's.
        sd = {k: v for k, v in sd.items() if not k.startswith("gate.")}
        net.load_state_dict(sd, strict=False)
    else:
        train_supernet(net, data, args, blk, rng)
        # The supernet with the untrained gate: `--load` on it redoes only the gate stage
        # (which draws from its own seeded generator, so it equals the full run's).
        torch.save(net.state_dict(), os.path.join(WORK, f"{args.dataset}_supernet.pt"))
    net.eval()
    t_super = time.time() - t0
    rng = np.random.default_rng(args.seed + 1000)

    # Gate: labels on fresh training canvases, then train.
    canv, lab, _ = make_canvases(data["train_objects"], data["train_labels"],
                                 data["train_objects"], rng, n=args.gate_canvases,
                                 progress="gate canvases")
    xg, yg = to_input(canv), torch.from_numpy(lab)
    # Labels depend only on the supernet and the seeded gate canvases: cache them per checkpoint.
    key = (f"{args.labels}_{args.mlr_min_prob if args.labels != 'margin' else args.label_eps}"
           f"_{args.gate_canvases}_{args.seed}")
    cache = os.path.join(WORK, f"{args.dataset}_labels_{key}.pt")
    S = split_maps(net, xg) if not (args.load and os.path.exists(cache)) else None
    if S is None:
        labels, valid = torch.load(cache)
    elif args.labels == "mlr":
        labels, valid = mlr_labels(net, S, yg, blk, args.mlr_min_prob, rng)
    elif args.labels == "independent":
        labels, valid = independent_labels(net, S, yg, blk, args.mlr_min_prob)
    else:
        labels, valid = margin_labels(net, S, yg, blk, args.label_eps)
    if S is not None:
        torch.save((labels, valid), cache)
    labels = labels.clamp(min=args.min_label)
    del S
    hist = torch.bincount(labels[valid].reshape(-1), minlength=len(LEVELS)).tolist()
    print(f"gate labels: {int(valid.sum())} of {len(valid)} canvases correct at the widest level; "
          f"label histogram {hist}")
    if not args.load or args.gate_epochs > 0:
        train_gate(net, xg, labels, valid, tiles, tile_macs, args, rng)

    if args.calibrate_loss >= 0:
        calibrate_gate(net, data, tiles, blk, macs, args, rng)

    # Evaluation: the full held-out test set, then the shipped subset.
    fractions = [0.6, 0.5, 0.45, 0.4, 0.35, 0.3]
    xt, yt = to_input(data["test_canvases"]), torch.from_numpy(data["test_labels"])
    full, *_ = evaluate(net, xt, yt, tiles, blk, macs, fractions)
    n = args.ship
    sub, dl, ll, glv, gconf, glog = evaluate(net, xt[:n], yt[:n], tiles, blk, macs, fractions)
    metrics = {
        "dataset": args.dataset, "seed": args.seed, "args": vars(args),
        "dense_macs": dense, "tail_macs": tail, "gate_macs": sum(gate_macs),
        "tile_macs": tile_macs, "tile_windows": [[*t["in_rows"], *t["in_cols"]] for t in tiles],
        "gate_label_histogram": hist, "train_seconds": round(time.time() - t0, 1),
        "supernet_seconds": round(t_super, 1),
        "test": full, "shipped": sub,
    }

    # Export.
    name = args.dataset
    os.makedirs(os.path.join(args.out, "data"), exist_ok=True)
    sd = {k: v.detach().contiguous().float() for k, v in net.state_dict().items()}
    save_file(sd, os.path.join(args.out, f"{name}.safetensors"))
    with open(os.path.join(args.out, f"{name}.yaml"), "w") as f:
        f.write(spec_yaml(name, arch, {"digits": "MNIST digits",
                                       "fashion": "Fashion-MNIST items"}[name], tail_sizes(arch)))
    meta = {
        "dense_correct": str(int(round(sub["dense"]["accuracy"] * n))),
        "level_correct": ",".join(str(int(round(r["accuracy"] * n))) for r in sub["levels"]),
        "gate_correct": str(int(round(sub["gate"]["accuracy"] * n))),
        "gate_mean_macs": repr(sub["gate"]["mean_macs"]),
        "budget_fractions": ",".join(repr(r["fraction"]) for r in sub["budget"]),
        "budget_correct": ",".join(str(int(round(r["accuracy"] * n))) for r in sub["budget"]),
        "budget_mean_macs": ",".join(repr(r["mean_macs"]) for r in sub["budget"]),
        "dense_macs": str(dense),
        "tile_windows": json.dumps(metrics["tile_windows"]),
        "tile_macs": json.dumps(tile_macs),
    }
    save_np({
        "images": data["test_canvases"][:n][:, None].astype(np.uint8),
        "labels": data["test_labels"][:n].astype(np.int64),
        "logits": dl.numpy().astype(np.float32),
        "level_logits": ll.numpy().astype(np.float32),
        "gate_levels": glv.numpy().astype(np.uint8),
        "gate_confidence": gconf.numpy().astype(np.float32),
        "gate_logits": glog.numpy().astype(np.float32),
    }, os.path.join(args.out, "data", f"{name}_test.safetensors"), metadata=meta)
    with open(os.path.join(args.out, "data", f"{name}_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    summarize(metrics)
    return 0


def summarize(m):
    for key in ["test", "shipped"]:
        r = m[key]
        d = r["dense"]["accuracy"]
        print(f"== {m['dataset']} {key} set ({r['n']} canvases): dense {100 * d:.2f} % "
              f"at {m['dense_macs']:,} MACs")
        for lv in r["levels"]:
            print(f"   uniform {lv['fraction']:<5}: {100 * lv['accuracy']:.2f} % at "
                  f"{100 * lv['macs_vs_dense']:.1f} % MACs")
        g = r["gate"]
        print(f"   gate         : {100 * g['accuracy']:.2f} % at {100 * g['mean_macs_vs_dense']:.1f} % "
              f"MACs, levels {g['level_histogram']}")
        for b in r["budget"]:
            print(f"   budget {b['fraction']:<5}: {100 * b['accuracy']:.2f} % at "
                  f"{100 * b['mean_macs_vs_dense']:.1f} % MACs")


if __name__ == "__main__":
    sys.exit(main())
