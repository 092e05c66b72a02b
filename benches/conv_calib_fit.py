#!/usr/bin/env python3
"""Refit the `algo: auto` cost-model constants (neulens-codegen `plan::conv_cost`) from
`conv_calib` output, and show what the fitted model picks on the measured shapes.

Needs numpy (the venv of benches/compare has it). Each TABLE is the markdown output of one
`conv_calib` process, each FEATURES the `-- features` output for the same shapes; several
tables of the same shapes are combined by taking the median per cell (the same shape moves
by up to 15 % from one process to the next on a shared machine).

    cargo run --release -p neulens-benches --bin conv_calib > g1.md     # and g2.md, g3.md
    cargo run --release -p neulens-benches --bin conv_calib -- features > gf.txt
    cargo run --release -p neulens-benches --bin conv_calib -- tiles > t1.md   # t2, t3
    cargo run --release -p neulens-benches --bin conv_calib -- tiles features > tf.txt
    benches/compare/.venv/bin/python benches/conv_calib_fit.py \\
        --grid g1.md g2.md g3.md --grid-features gf.txt \\
        --tiles t1.md t2.md t3.md --tiles-features tf.txt \\
        --set C2=978,665,591,544          # optional: replace one row's µs (direct,F2,F4,F6)

Model (ns), each part a least-squares fit of relative error:
  direct (channels in the lanes): padded MACs × CVEC_MAC + CVEC_CALL
  direct (otherwise):             MACs × (DIRECT_MAC + border fraction × DIRECT_BORDER_MAC)
  Winograd F(m,3):                padded GEMM MACs × WINO_GEMM_MAC + transformed values ×
                                  WINO_TRANSFORM[m] (WINO_TRANSFORM_VEC[m] where F2/F4 gather
                                  whole vectors) + U floats × blocks × WINO_WEIGHT + WINO_CALL
"""
import argparse

import numpy as np

ALGOS = ["direct", "F2", "F4", "F6"]
# Padding (before, after) of the `-- tiles` shapes, in conv_calib's order.
TILE_PADS = [p for _hw in (16, 17, 18, 19) for p in [(0, 0), (1, 0), (0, 1)]]


def cvec_applies(c, h):
    """conv::cvec::applies for a square 3×3 stride-1 conv with c_in = c and an h-pixel map."""
    if c >= 64 and h <= 16:
        return True
    wq = h + 2
    computed = -(-(h * wq) // 48) * 48
    return 5 * h * h < 4 * computed


def wino_features(f, k):
    """(GEMM MACs, transformed values, U floats × blocks, gathered as vectors) of tile k from a
    features line: four fields per tile, or three in files written before the vector gather
    (gathered lane by lane)."""
    per = 4 if len(f) >= 16 else 3
    x = [float(v) for v in f[4 + per * k:4 + per * (k + 1)]]
    return (x[0], x[1], x[2], bool(x[3]) if per == 4 else False)


def read(tables, features, pads):
    meas = []
    for path in tables:
        rows = [
            line for line in open(path)
            if line.startswith("|") and not line.startswith("|---") and "shape" not in line
        ]
        meas.append([
            [float(x) if x.strip() not in ("–", "") else np.inf
             for x in row.strip().strip("|").split("|")[3:7]]
            for row in rows
        ])
    feats = [line.strip().split(";") for line in open(features) if ";" in line]
    shapes = []
    for i, f in enumerate(feats):
        c, h, macs = int(f[1]), int(f[2]), float(f[3])
        before, after = pads[i] if pads else (1, 1)
        inner = (h - before - after) / h
        shapes.append(dict(
            name=f[0] if f[0] and f[0] != "tiny" else f"{c}@{h}", c=c, h=h, macs=macs, border=1 - inner * inner,
            cvec=cvec_applies(c, h) and not pads,
            wino=[wino_features(f, k) for k in range(3)],
            us=[float(np.median([m[i][k] for m in meas])) for k in range(4)],
        ))
    return shapes


def lsq(rows, times):
    """Least squares of relative error: minimise Σ (row·x / t − 1)²."""
    a = np.array([[v / t for v in r] for r, t in zip(rows, times)])
    x = np.linalg.lstsq(a, np.ones(len(a)), rcond=None)[0]
    return x, a @ x - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", nargs="+", required=True)
    ap.add_argument("--grid-features", required=True)
    ap.add_argument("--tiles", nargs="*", default=[])
    ap.add_argument("--tiles-features")
    ap.add_argument("--extra", nargs="*", default=[],
                    help="more tables of pad-1 shapes (e.g. `conv_calib -- shape ...` rows); "
                         "they calibrate the direct kernel only (tiny convs: their Winograd "
                         "times are too coarse to fit, and direct wins them)")
    ap.add_argument("--extra-features")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=d,f2,f4,f6")
    ap.add_argument("--search-vec", metavar="GEMM,T2,T4,T6,WEIGHT,CALL",
                    help="keep these Winograd constants and set only COST_WINO_TRANSFORM_VEC, "
                         "to the pair (steps of 0.005) whose picks are on average the closest "
                         "to the fastest measured (a full least-squares refit can trade the "
                         "picks of small maps for a better fit of big ones)")
    ap.add_argument("--cvec", metavar="MAC,CALL",
                    help="use these channel-vectorized constants instead of the fitted ones "
                         "(the residuals and picks below then use them)")
    ap.add_argument("--u-cap", type=float, default=262144,
                    help="floats of U per tile block the U term counts (COST_WINO_WEIGHT_CAP; "
                         "the rest streams behind the GEMM, which prefetches it)")
    args = ap.parse_args()
    shapes = read(args.grid, args.grid_features, None)
    if args.tiles:
        shapes += read(args.tiles, args.tiles_features, TILE_PADS)
    if args.extra:
        for sh in read(args.extra, args.extra_features, None):
            sh["direct_only"] = True
            shapes.append(sh)
    for s in args.set:
        name, us = s.split("=")
        for sh in shapes:
            if sh["name"] == name:
                sh["us"] = [float(x) for x in us.split(",")]

    def padded(sh):
        return sh["macs"] * (-(-sh["c"] // 16) * 16) / sh["c"]

    direct = [sh for sh in shapes if not sh["cvec"]]
    d, dres = lsq([[sh["macs"], sh["macs"] * sh["border"]] for sh in direct],
                  [sh["us"][0] * 1e3 for sh in direct])
    cv = [sh for sh in shapes if sh["cvec"]]
    c, cres = lsq([[padded(sh), 1.0] for sh in cv], [sh["us"][0] * 1e3 for sh in cv])
    if args.cvec:
        c = np.array([float(x) for x in args.cvec.split(",")])
        cres = np.array([(padded(sh) * c[0] + c[1]) / (sh["us"][0] * 1e3) - 1 for sh in cv])
    # Winograd columns: GEMM MACs; transformed values of F2, F4, F6 gathered lane by lane; of F2,
    # F4 gathered as vectors; U floats × blocks; calls.
    def capped(sh, k, weights):
        """U floats × blocks with each block's U counted up to --u-cap (winograd.rs: U is
        positions × c_in × c_out rounded up to MR = 8 per block)."""
        per = [16, 36, 64][k] * sh["c"] * (-(-sh["c"] // 8) * 8)
        return weights / per * min(per, args.u_cap)

    rows, times = [], []
    for sh in shapes:
        for k in range(3 if not sh.get("direct_only") else 0):
            gemm, values, weights, vec = sh["wino"][k]
            weights = capped(sh, k, weights)
            if gemm == 0 or not np.isfinite(sh["us"][k + 1]):
                continue
            r = [gemm, 0.0, 0.0, 0.0, 0.0, 0.0, weights, 1.0]
            r[(4 if vec else 1) + k] = values
            rows.append(r)
            times.append(sh["us"][k + 1] * 1e3)
    cols = np.array(rows).any(axis=0)  # a column no shape has (no vector gather measured)
    w = np.zeros(len(cols))
    w[cols], wres = lsq([np.array(r)[cols] for r in rows], times)
    def est(sh, k):
        if k == 0:
            if sh["cvec"]:
                return padded(sh) * c[0] + c[1]
            return sh["macs"] * (d[0] + sh["border"] * d[1])
        gemm, values, weights, vec = sh["wino"][k - 1]
        weights = capped(sh, k - 1, weights)
        return np.inf if gemm == 0 else (
            gemm * w[0] + values * w[(3 if vec else 0) + k] + weights * w[6] + w[7])

    def pick_miss(sh):
        """How much slower than the fastest measured the model's pick is."""
        e = [est(sh, k) for k in range(4)]
        return sh["us"][int(np.argmin(e))] / min(sh["us"]) - 1

    if args.search_vec:
        fixed = [float(x) for x in args.search_vec.split(",")]
        w[:] = fixed[:4] + [0.0, 0.0] + fixed[4:]
        best = None
        for v2 in np.arange(0.02, 0.25, 0.005):
            for v4 in np.arange(0.05, 0.35, 0.005):
                w[4], w[5] = v2, v4
                m = np.mean([pick_miss(sh) for sh in shapes])
                if best is None or m < best[0] - 1e-12:
                    best = (m, v2, v4)
        w[4], w[5] = best[1], best[2]
        wres = np.array([np.dot(r, w) / t - 1 for r, t in zip(rows, times)])

    print(f"COST_DIRECT_MAC {d[0]:.5f}  COST_DIRECT_BORDER_MAC {d[1]:.5f}"
          f"   (residuals {dres.min():+.0%} .. {dres.max():+.0%})")
    print(f"COST_CVEC_MAC {c[0]:.5f}  COST_CVEC_CALL {c[1]:.0f}"
          f"   (residuals {cres.min():+.0%} .. {cres.max():+.0%})")
    print(f"COST_WINO_GEMM_MAC {w[0]:.4f}  COST_WINO_TRANSFORM [{w[1]:.3f}, {w[2]:.3f}, "
          f"{w[3]:.3f}]  COST_WINO_TRANSFORM_VEC [{w[4]:.3f}, {w[5]:.3f}]  "
          f"COST_WINO_WEIGHT {w[6]:.4f}  COST_WINO_CALL {w[7]:.0f}"
          f"   (residuals {wres.min():+.0%} .. {wres.max():+.0%})")
    print()
    print("| shape | c | map | µs direct / F2 / F4 / F6 | fastest | pick | est. µs |")
    print("|---|---:|---:|---|---|---|---|")
    misses = []
    for sh in shapes:
        e = [est(sh, k) for k in range(4)]
        pick, fast = int(np.argmin(e)), int(np.argmin(sh["us"]))
        miss = sh["us"][pick] / sh["us"][fast] - 1
        misses.append(miss)
        print(f"| {sh['name']} | {sh['c']} | {sh['h']} | "
              f"{' / '.join(f'{x:.1f}' for x in sh['us'])} | {ALGOS[fast]} | {ALGOS[pick]}"
              f"{f' (+{miss:.0%})' if miss > 0.005 else ''} | "
              f"{' / '.join(f'{x / 1e3:.1f}' for x in e)} |")
    print(f"\npick slower than the fastest: mean {np.mean(misses):.2%}, worst {max(misses):.1%}")


if __name__ == "__main__":
    main()
