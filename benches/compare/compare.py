#!/usr/bin/env python3
"""neulens against ONNX Runtime, side by side (run through run.sh, which makes the venv).

For every case (the five conv shapes of issue 4 and ResNet-8/ResNet-18):
  1. `ort_twin export` writes the lowered graph (batchnorm folded) as JSON + safetensors, a
     deterministic input, neulens's output and the f64 reference output;
  2. this script builds the ONNX twin with `onnx.helper` from those files, checks it with the
     ONNX checker and strict shape inference (every value's shape must equal neulens's), runs it
     in ONNX Runtime and checks max |err| / RMS <= 1e-4 against neulens's output (exit 1 if not);
  3. times neulens (`ort_twin time`, ISA detected at run time) on 1 and 2 threads and ORT with
     1 and 2 threads the same way: warm-up, then single calls timed until --seconds have passed; the
     rounds alternate neulens and ORT so drift on a shared machine hits both;
  4. prints a markdown table and writes it (with the machine details) to --results.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

TOLERANCE = 1e-4
OPSET = 17


class CompareError(Exception):
    """A problem with the inputs or a failed check: printed, exit status 1."""


# --------------------------------------------------------------------------- the ONNX twin


def build_onnx(desc, weights):
    """The ONNX model of a neulens twin description (see benches/src/onnx_twin.rs)."""
    if desc.get("format") != "neulens-onnx-twin" or desc.get("version") != 1:
        raise CompareError("model.json is not a version-1 neulens-onnx-twin description")
    nodes, inits = [], []
    shapes = {}  # value name -> [1, C, H, W]
    counter = [0]

    def fresh(base):
        counter[0] += 1
        return f"{base}/{counter[0]}"

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def tensor(name, ndim=None):
        if name not in weights:
            raise CompareError(f"tensor `{name}` is missing from model.safetensors")
        t = weights[name].astype(np.float32)
        want = desc["tensors"].get(name)
        if want is None or list(t.shape) != want:
            raise CompareError(f"tensor `{name}` has shape {list(t.shape)}, model.json says {want}")
        if ndim is not None and t.ndim != ndim:
            raise CompareError(f"tensor `{name}` should have {ndim} dimensions")
        return const(name, t)

    inp = desc["input"]
    shapes[inp["name"]] = [1, *inp["shape"]]
    graph_inputs = [helper.make_tensor_value_info(inp["name"], TensorProto.FLOAT, [1, *inp["shape"]])]
    reshape_cache = {}

    def scalar_const(name, value):
        if name not in reshape_cache:
            reshape_cache[name] = const(name, np.array(value, dtype=np.float32))
        return reshape_cache[name]

    def shape_const(dims):
        key = tuple(dims)
        if key not in reshape_cache:
            reshape_cache[key] = const(f"shape_{'x'.join(map(str, dims))}", np.array(dims, dtype=np.int64))
        return reshape_cache[key]

    for n in desc["nodes"]:
        name, op = n["name"], n["op"]
        try:
            ins = [x for x in n["inputs"]]
        except (KeyError, TypeError):
            raise CompareError(f"node `{name}` has no inputs list")
        for x in ins:
            if x not in shapes:
                raise CompareError(f"node `{name}` reads `{x}`, which is not defined before it")
        c, h, w = n["shape"]
        act = n.get("act", "none")
        out = name if act == "none" else fresh(name + "/pre")
        if op == "conv":
            conv_in = [ins[0], tensor(n["weight"], 4)]
            if n.get("bias") is not None:
                conv_in.append(tensor(n["bias"], 1))
            nodes.append(helper.make_node(
                "Conv", conv_in, [out], name=name,
                kernel_shape=n["kernel"], strides=n["stride"], pads=n["pads"],
                group=n["groups"], dilations=[1, 1]))
        elif op in ("maxpool", "avgpool"):
            attrs = dict(kernel_shape=n["kernel"], strides=n["stride"], pads=n["pads"])
            if op == "maxpool":
                nodes.append(helper.make_node("MaxPool", [ins[0]], [out], name=name, **attrs))
            else:
                nodes.append(helper.make_node(
                    "AveragePool", [ins[0]], [out], name=name,
                    count_include_pad=int(bool(n["count_include_pad"])), **attrs))
        elif op == "global_avg_pool":
            nodes.append(helper.make_node("GlobalAveragePool", [ins[0]], [out], name=name))
        elif op == "dense":
            flat = fresh(name + "/flat")
            nodes.append(helper.make_node("Flatten", [ins[0]], [flat], axis=1))
            gemm_in = [flat, tensor(n["weight"], 2)]
            if n.get("bias") is not None:
                gemm_in.append(tensor(n["bias"], 1))
            y = fresh(name + "/gemm")
            nodes.append(helper.make_node("Gemm", gemm_in, [y], name=name, transB=1))
            nodes.append(helper.make_node("Reshape", [y, shape_const([1, c, h, w])], [out]))
        elif op == "add":
            if len(ins) < 2:
                raise CompareError(f"add `{name}` has fewer than two inputs")
            nodes.append(helper.make_node("Add" if len(ins) == 2 else "Sum", ins, [out], name=name))
        elif op == "concat":
            nodes.append(helper.make_node("Concat", ins, [out], name=name, axis=1))
        elif op == "flatten":
            nodes.append(helper.make_node("Reshape", [ins[0], shape_const([1, c, h, w])], [out], name=name))
        elif op == "softmax":
            flat = fresh(name + "/flat")
            nodes.append(helper.make_node("Flatten", [ins[0]], [flat], axis=1))
            y = fresh(name + "/softmax")
            nodes.append(helper.make_node("Softmax", [flat], [y], name=name, axis=1))
            nodes.append(helper.make_node("Reshape", [y, shape_const([1, c, h, w])], [out]))
        elif op == "affine":
            scale = weights.get(n["scale"])
            shift = weights.get(n["shift"])
            if scale is None or shift is None or scale.shape != (c,) or shift.shape != (c,):
                raise CompareError(f"affine `{name}`: scale/shift missing or not [{c}]")
            s = const(n["scale"], scale.astype(np.float32).reshape(1, c, 1, 1))
            t = const(n["shift"], shift.astype(np.float32).reshape(1, c, 1, 1))
            y = fresh(name + "/mul")
            nodes.append(helper.make_node("Mul", [ins[0], s], [y], name=name))
            nodes.append(helper.make_node("Add", [y, t], [out]))
        else:
            raise CompareError(f"node `{name}`: unsupported op `{op}`")
        if act == "relu":
            nodes.append(helper.make_node("Relu", [out], [name], name=name + "/relu"))
        elif act == "relu6":
            lo = scalar_const("relu6_min", 0.0)
            hi = scalar_const("relu6_max", 6.0)
            nodes.append(helper.make_node("Clip", [out, lo, hi], [name], name=name + "/relu6"))
        elif act != "none":
            raise CompareError(f"node `{name}`: unsupported activation `{act}`")
        shapes[name] = [1, c, h, w]

    output = desc["output"]
    if output not in shapes:
        raise CompareError(f"the output `{output}` is not a node")
    graph = helper.make_graph(
        nodes, desc["name"], graph_inputs,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shapes[output])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="neulens benches/compare",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    # The newest IR this onnxruntime reads (onnx may write a newer one than ORT knows).
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    known = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        known[vi.name] = dims
    for n in desc["nodes"]:
        if n["name"] in known and known[n["name"]] != shapes[n["name"]]:
            raise CompareError(
                f"node `{n['name']}`: ONNX infers shape {known[n['name']]}, neulens has {shapes[n['name']]}")
    return model


# --------------------------------------------------------------------------- running and timing


def session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


class BoundRun:
    """One ORT session with input and output bound once (io_binding): the timed call is
    `run_with_iobinding`, the cheapest way to call ORT from Python."""

    def __init__(self, sess, x, out_shape):
        self.sess = sess
        self.out = np.zeros(out_shape, dtype=np.float32)
        self.binding = sess.io_binding()
        self.binding.bind_cpu_input(sess.get_inputs()[0].name, x)
        self.binding.bind_ortvalue_output(
            sess.get_outputs()[0].name, ort.OrtValue.ortvalue_from_numpy(self.out))

    def __call__(self):
        self.sess.run_with_iobinding(self.binding)


def time_calls(f, warmup, seconds):
    """Same protocol as `ort_twin time`: warm-up (at least 2 calls), then single calls timed
    until `seconds` have passed and at least 10 were made (at most 100,000). Times in ms."""
    start = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - start < warmup:
        f()
        n += 1
    samples = []
    start = time.perf_counter()
    while (len(samples) < 10 or time.perf_counter() - start < seconds) and len(samples) < 100_000:
        t = time.perf_counter_ns()
        f()
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return samples


def rel_err(a, ref):
    """max |a - ref| / RMS(ref)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if a.shape != ref.shape:
        raise CompareError(f"output sizes differ: {a.size} vs {ref.size}")
    if not np.all(np.isfinite(a)):
        return float("inf")
    rms = float(np.sqrt(np.mean(ref * ref)))
    err = float(np.max(np.abs(a - ref))) if a.size else 0.0
    return err / rms if rms > 0 else err


def read_raw(path, dtype, count):
    try:
        v = np.fromfile(path, dtype=dtype)
    except OSError as e:
        raise CompareError(f"cannot read {path}: {e}")
    if v.size != count:
        raise CompareError(f"{path}: {v.size} values, expected {count}")
    return v


def neulens_time(ort_twin, case, variant, warmup, seconds):
    cmd = [ort_twin, "time", case, variant, "--warmup", str(warmup), "--seconds", str(seconds)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()}")
    try:
        d = json.loads(r.stdout.strip().splitlines()[-1])
        return d["samples_ms"], d["isa"]
    except (ValueError, KeyError, IndexError):
        raise CompareError(f"{' '.join(cmd)}: unexpected output {r.stdout[:200]!r}")


def ort_node_profile(model_bytes, x, seconds):
    """Median time per node (ms) of ORT 1T in full-model runs, from ORT's own profiler; node
    names as after ORT's graph optimizations (NCHWc convs are `<layer>_nchwc`)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ort_profile_{os.getpid()}")
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    start, n = time.perf_counter(), 0
    while n < 5 or time.perf_counter() - start < seconds:
        sess.run(None, feed)
        n += 1
    path = sess.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        os.remove(path)
    per_node = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            key = (e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", "?"))
            per_node.setdefault(key, []).append(e["dur"] / 1e3)
    return [(name, op, statistics.median(v)) for (name, op), v in per_node.items()]


def profile_table(ort_twin, case, model_bytes, x, seconds):
    """Per-layer markdown table: neulens in the model and alone (`ort_twin profile`) next to
    ORT 1T per node (its profiler), matched by layer name."""
    cmd = [ort_twin, "profile", case["id"], "--seconds", str(seconds)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompareError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()}")
    layers = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    names = {l["layer"] for l in layers}
    ort_by_layer, ort_other = {}, []
    for name, op, ms in ort_node_profile(model_bytes, x, seconds):
        base = name[: -len("_nchwc")] if name.endswith("_nchwc") else name
        if base in names:
            ort_by_layer.setdefault(base, []).append((op, ms))
        else:
            ort_other.append((name, op, ms))
    lines = [f"**{case['title']}** per layer (ms; neulens `ort_twin profile`, ORT 1T its profiler "
             "in full-model runs, which adds a little per node):", "",
             "| layer | neulens algo | MMACs | weights MB | neulens in model | neulens alone | ORT 1T (op) | ORT / neulens in model |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    tot_nl = tot_alone = tot_ort = 0.0
    for l in layers:
        o = ort_by_layer.get(l["layer"], [])
        o_ms = sum(ms for _, ms in o)
        tot_nl += l["in_model_ms"]
        tot_alone += l["isolated_ms"]
        tot_ort += o_ms
        o_txt = f"{o_ms:.3f} ({', '.join(op for op, _ in o)})" if o else "fused"
        # No ratio for views and µs-sized layers (timer resolution, ORT's per-node overhead).
        ratio = f"{o_ms / l['in_model_ms']:.2f}×" if o and min(o_ms, l["in_model_ms"]) >= 0.005 else ""
        lines.append(f"| {l['layer']} | {l['algo']} | {l['macs'] / 1e6:.1f} | {l['weight_bytes'] / 1e6:.2f} | "
                     f"{l['in_model_ms']:.3f} | {l['isolated_ms']:.3f} | {o_txt} | {ratio} |")
    for name, op, ms in ort_other:
        tot_ort += ms
        lines.append(f"| (ORT only: {name}) | | | | | | {ms:.3f} ({op}) | |")
    lines.append(f"| **total** | | | | **{tot_nl:.3f}** | {tot_alone:.3f} | **{tot_ort:.3f}** | "
                 f"{tot_ort / tot_nl:.2f}× |")
    return "\n".join(lines)


def stats(samples):
    return {"median": statistics.median(samples), "min": min(samples), "n": len(samples)}


# --------------------------------------------------------------------------- report


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_ms(s):
    return f"{s['median']:.3f} ({s['min']:.3f})"


def table(rows):
    head = ("| case | MMACs | neulens algo | neulens 1T ms, median (min) | GFLOP/s | "
            "ORT 1T ms, median (min) | ORT 1T / neulens | neulens 2T ms, median (min) | "
            "ORT 2T ms, median (min) | ORT 2T / neulens 2T | max err / RMS vs ORT |")
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        nl, o1, o2, n2 = r["neulens"], r["ort1"], r["ort2"], r["neulens2"]
        gflops = 2 * r["macs"] / (nl["median"] * 1e-3) / 1e9
        two = (f"{fmt_ms(n2)} | {fmt_ms(o2)} | {o2['median'] / n2['median']:.2f}×" if n2
               else f"– | {fmt_ms(o2)} | –")
        lines.append(
            f"| {r['title']} | {r['macs'] / 1e6:.1f} | {r['algo']} | {fmt_ms(nl)} | {gflops:.0f} | "
            f"{fmt_ms(o1)} | **{o1['median'] / nl['median']:.2f}×** | {two} | {r['err']:.1e} |")
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ort-twin", required=True, help="path of the built ort_twin binary")
    ap.add_argument("--out", default=os.path.join(here, "out"), help="where the exported cases go")
    ap.add_argument("--results", default=os.path.join(here, "results.md"), help="markdown report")
    ap.add_argument("--cases", nargs="*", default=[], help="case ids (default: all)")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per measurement")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per measurement")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per case")
    ap.add_argument("--profile", nargs="*", default=[], metavar="CASE",
                    help="also a per-layer table of these cases (neulens and ORT 1T)")
    args = ap.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1:
        raise CompareError("--seconds must be > 0, --warmup >= 0, --rounds >= 1")

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    r = subprocess.run([args.ort_twin, "export", args.out, *args.cases], text=True)
    if r.returncode != 0:
        raise CompareError("ort_twin export failed (see above)")
    with open(os.path.join(args.out, "manifest.json")) as f:
        manifest = json.load(f)
    unknown = set(args.profile) - {c["id"] for c in manifest["cases"]}
    if unknown:
        raise CompareError(f"--profile: no such case in this run: {', '.join(sorted(unknown))}")

    # 1. Build every twin and check every output before timing anything.
    prepared, accuracy, failures = [], [], []
    for case in manifest["cases"]:
        d = os.path.join(args.out, case["dir"])
        with open(os.path.join(d, "model.json")) as f:
            desc = json.load(f)
        weights = load_file(os.path.join(d, "model.safetensors"))
        model = build_onnx(desc, weights)
        model_bytes = model.SerializeToString()
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(model_bytes)
        n_in = int(np.prod(case["input_shape"]))
        n_out = int(np.prod(case["output_shape"]))
        x = read_raw(os.path.join(d, "input.f32"), "<f4", n_in).reshape(1, *case["input_shape"])
        ref = read_raw(os.path.join(d, "reference.f64"), "<f8", n_out)
        sessions = {t: session(model_bytes, t) for t in (1, 2)}
        ort_out = {t: s.run(None, {s.get_inputs()[0].name: x})[0].ravel() for t, s in sessions.items()}
        for v in case["variants"]:
            nl = read_raw(os.path.join(d, v["output"]), "<f4", n_out)
            errs = {t: rel_err(nl, o) for t, o in ort_out.items()}
            entry = {
                "case": case["id"], "variant": v["variant"], "algo": v["algo"],
                "err_vs_ort_1t": errs[1], "err_vs_ort_2t": errs[2],
                "neulens_vs_f64": rel_err(nl, ref), "ort_vs_f64": rel_err(ort_out[1], ref),
            }
            accuracy.append(entry)
            ok = all(e <= TOLERANCE for e in errs.values())
            print(f"check {case['id']:<9} {v['variant']:<6} {v['algo']:<45} "
                  f"max|err|/RMS vs ORT {errs[1]:.2e} (2T {errs[2]:.2e}), "
                  f"neulens vs f64 {entry['neulens_vs_f64']:.2e}, ORT vs f64 {entry['ort_vs_f64']:.2e} "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
            if not ok:
                failures.append(f"{case['id']} ({v['variant']})")
        prepared.append((case, x, sessions))
    if failures:
        raise CompareError(f"ONNX Runtime and neulens disagree (max |err| / RMS > {TOLERANCE:g}): "
                           + ", ".join(failures))

    # 2. Time: per case, `rounds` alternating rounds of neulens (each variant), ORT 1T, ORT 2T.
    rows, raw = [], {}
    isa = manifest["isa"]
    for case, x, sessions in prepared:
        samples = {}
        for rnd in range(args.rounds):
            for v in case["variants"]:
                s, isa = neulens_time(args.ort_twin, case["id"], v["variant"], args.warmup, args.seconds)
                samples.setdefault(v["variant"], []).extend(s)
            # `algo: auto` on a persistent pool of 2 workers (`infer_pool`; ort_twin checks it
            # equals 1 thread).
            s, _ = neulens_time(args.ort_twin, case["id"], "auto2", args.warmup, args.seconds)
            samples.setdefault("auto2", []).extend(s)
            for t, sess in sessions.items():
                run = BoundRun(sess, x, [1, *case["output_shape"]])
                samples.setdefault(f"ort{t}", []).extend(time_calls(run, args.warmup, args.seconds))
        st = {k: stats(v) for k, v in samples.items()}
        raw[case["id"]] = st
        for v in case["variants"]:
            acc = next(a for a in accuracy if a["case"] == case["id"] and a["variant"] == v["variant"])
            if v["variant"] == "auto":
                title = case["title"]
            else:
                # The case's own kernel against neulens's dense direct kernel on the same weights,
                # same run (issue 5 asks pattern-sparse layers for 3× over it).
                speedup = st["direct"]["median"] / st["auto"]["median"]
                title = (f"{case['title'].split()[0]} direct kernel (same weights; "
                         f"{case['title'].split()[0]} {case['variants'][0]['algo']} {speedup:.2f}× faster)")
            rows.append({
                "title": title, "macs": case["macs"], "algo": v["algo"],
                "neulens": st[v["variant"]], "ort1": st["ort1"], "ort2": st["ort2"],
                "neulens2": st["auto2"] if v["variant"] == "auto" else None,
                "err": acc["err_vs_ort_1t"],
            })
            print(f"time  {case['id']:<9} {v['variant']:<6} neulens {fmt_ms(st[v['variant']])} ms, "
                  f"ORT 1T {fmt_ms(st['ort1'])} ms, neulens 2T {fmt_ms(st['auto2'])} ms, "
                  f"ORT 2T {fmt_ms(st['ort2'])} ms", flush=True)

    profiles = []
    for case, x, sessions in prepared:
        if case["id"] in args.profile:
            with open(os.path.join(args.out, case["dir"], "model.onnx"), "rb") as f:
                profiles.append(profile_table(args.ort_twin, case, f.read(), x, args.seconds))

    load_after = os.getloadavg()
    md = table(rows)
    print()
    print(md)
    acc_lines = ["| case | variant | neulens vs ORT 1T | neulens vs ORT 2T | neulens vs f64 reference | ORT vs f64 reference |",
                 "|---|---|---:|---:|---:|---:|"]
    for a in accuracy:
        acc_lines.append(f"| {a['case']} | {a['variant']} ({a['algo']}) | {a['err_vs_ort_1t']:.2e} | "
                         f"{a['err_vs_ort_2t']:.2e} | {a['neulens_vs_f64']:.2e} | {a['ort_vs_f64']:.2e} |")
    argv, user_args = sys.argv[1:], []
    while argv:
        a = argv.pop(0)
        if a == "--ort-twin":
            argv = argv[1:]
        elif not a.startswith("--ort-twin="):
            user_args.append(a)
    cmdline = " ".join(["benches/compare/run.sh"] + user_args)
    report = f"""# neulens vs ONNX Runtime ({started:%Y-%m-%d %H:%M} UTC)

Generated by `benches/compare/compare.py` (`{cmdline}`); see benches/compare/README.md.

- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; load average {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end
- neulens ISA (detected at run time): {isa}; one thread (`infer_slices`), and 2 threads (`infer_pool` on a persistent `neulens::parallel::Pool`: convs split by output channels, Winograd by tiles, pattern-sparse by rows)
- onnxruntime {ort.__version__} (CPUExecutionProvider, ORT_ENABLE_ALL, sequential, inter-op 1 thread), onnx {onnx.__version__}, numpy {np.__version__}, Python {platform.python_version()}
- timing: {args.rounds} alternating rounds per case, each {args.warmup:g} s warm-up + {args.seconds:g} s of single timed calls; median (min) of all calls, in ms; ORT called through io_binding
- ratios are ORT median / neulens median: > 1 means neulens is faster. "ORT 2T" is ORT with 2 intra-op threads, compared with neulens on 2 threads.
- GFLOP/s = 2 × dense direct-convolution MACs / neulens median (effective for Winograd and pattern-sparse)

{md}

Accuracy (max |err| / RMS of the second output; the check is neulens vs ORT <= {TOLERANCE:g}):

{chr(10).join(acc_lines)}
"""
    for p in profiles:
        print()
        print(p)
        report += "\n" + p + "\n"
    with open(args.results, "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "timings.json"), "w") as f:
        json.dump({"started": started.isoformat(), "isa": isa, "stats": raw, "accuracy": accuracy}, f, indent=1)
    print(f"\nwritten {args.results}")


if __name__ == "__main__":
    try:
        main()
    except CompareError as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    except (OSError, ValueError, KeyError, onnx.checker.ValidationError) as e:
        # Missing or malformed export files, a bad --ort-twin path, an invalid ONNX twin.
        print(f"compare.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
