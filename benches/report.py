#!/usr/bin/env python3
# Turns criterion's saved results (<target>/criterion/**/new/*.json) into the markdown tables of
# docs/BENCHMARKS.md: median and best-sample time, GFLOP/s (2·MACs/t), ratio to the scalar twin.
"""Usage: python3 benches/report.py CRITERION_DIR [CRITERION_DIR ...]

Kernel groups (`<kernel>/<shape>`, one function per ISA) become one table each, with the ratio
of every ISA to the scalar twin of the same run; the `models` group becomes one table with
ms per inference and GMAC/s (rows from every directory given, e.g. a default and a native build).
"""
import json
import pathlib
import sys

ISA_ORDER = ["scalar", "sse2", "avx2-fma", "avx512f", "neon"]


def load(dirs):
    rows = []
    for d in dirs:
        for bench in sorted(pathlib.Path(d).glob("**/new/benchmark.json")):
            meta = json.loads(bench.read_text())
            est = json.loads((bench.parent / "estimates.json").read_text())
            sample = json.loads((bench.parent / "sample.json").read_text())
            best = min(t / n for t, n in zip(sample["times"], sample["iters"]))
            med = est["median"]
            rows.append(
                {
                    "group": meta["group_id"],
                    "func": meta["function_id"],
                    "throughput": meta.get("throughput") or {},
                    "ns": med["point_estimate"],
                    "best": best,
                    "lo": med["confidence_interval"]["lower_bound"],
                    "hi": med["confidence_interval"]["upper_bound"],
                }
            )
    return rows


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def spread(r):
    # Half-width of the median's 95 % confidence interval, in percent of the median.
    return 50.0 * (r["hi"] - r["lo"]) / r["ns"]


def kernel_table(group, rows):
    rows = sorted(rows, key=lambda r: ISA_ORDER.index(r["func"]) if r["func"] in ISA_ORDER else 99)
    tp = rows[0]["throughput"]
    scalar = next((r for r in rows if r["func"] == "scalar"), None)
    if "Elements" in tp and not group.startswith("softmax"):
        unit, head = "macs", f"{tp['Elements'] / 1e6:.3f} M MACs"
    elif "Bytes" in tp:
        unit, head = "bytes", f"{tp['Bytes'] / 1e6:.3f} MB read"
    else:
        unit, head = "elems", f"{tp.get('Elements', 0)} elements"
    col = {"macs": "GFLOP/s", "bytes": "GB/s (input)", "elems": "M elem/s"}[unit]
    out = [
        f"**`{group}`** ({head})",
        "",
        f"| ISA | median time | ±95% CI | best sample | {col} (median) | vs scalar (median) "
        "| vs scalar (best) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def rate(ns):
        s = ns * 1e-9
        if unit == "macs":
            return f"{2 * tp['Elements'] / s / 1e9:.2f}"
        if unit == "bytes":
            return f"{tp['Bytes'] / s / 1e9:.2f}"
        return f"{tp.get('Elements', 0) / s / 1e6:.1f}"

    for r in rows:
        ratio = f"{scalar['ns'] / r['ns']:.2f}×" if scalar else "—"
        ratio_best = f"{scalar['best'] / r['best']:.2f}×" if scalar else "—"
        out.append(
            f"| {r['func']} | {fmt_time(r['ns'])} | {spread(r):.1f}% | {fmt_time(r['best'])} "
            f"| {rate(r['ns'])} | {ratio} | {ratio_best} |"
        )
    return "\n".join(out)


def model_table(rows):
    out = [
        "| model @ kernel ISA | M MACs | median ms / inference | ±95% CI | best sample ms "
        "| GMAC/s (median) | GFLOP/s (median) | GMAC/s (best) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        macs = r["throughput"].get("Elements", 0)
        s, b = r["ns"] * 1e-9, r["best"] * 1e-9
        out.append(
            f"| {r['func']} | {macs / 1e6:.1f} | {r['ns'] / 1e6:.3f} | {spread(r):.1f}% "
            f"| {r['best'] / 1e6:.3f} | {macs / s / 1e9:.2f} | {2 * macs / s / 1e9:.2f} "
            f"| {macs / b / 1e9:.2f} |"
        )
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = load(sys.argv[1:])
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    for g, rs in groups.items():
        if g != "models":
            print(kernel_table(g, rs))
            print()
    if "models" in groups:
        print(model_table(groups["models"]))


if __name__ == "__main__":
    main()
