//! The spec parser: walks the located YAML tree into the `Spec` AST, checking types, ranges,
//! required and unknown fields, and reporting every problem (not just the first) with its location.

use super::ast::{
    ConvSpec, DenseSpec, GateSpec, InputRef, LayerSpec, Located, MicroflowSpec, OpSpec, PoolSpec,
    Spec, WeightsSpec, DEFAULT_LEVELS,
};
use super::suggest::did_you_mean;
use super::yaml::{self, Node, Value};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::graph::{Act, AlgoRequest, Pad, Shape};

#[path = "prune_spec.rs"]
mod prune_spec;

/// Parses a spec. Returns the spec when it has no error, else every error found.
pub fn parse_spec(text: &str, file: &str) -> Result<Spec, Diagnostics> {
    let mut diags = Diagnostics::new();
    let spec = parse_spec_partial(text, file, &mut diags);
    match spec {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

/// Parses a spec as far as possible: errors go to `diags`, and the parts that could be read are
/// returned (so that later stages can find more errors). `None` only when the text is not YAML or
/// its top level is not a mapping.
pub fn parse_spec_partial(text: &str, file: &str, diags: &mut Diagnostics) -> Option<Spec> {
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err((msg, loc)) => {
            let msg = clean_yaml_message(&msg);
            diags.push(Diagnostic::new(file, loc, format!("invalid YAML: {msg}")));
            return None;
        }
    };
    let mut cx = Cx {
        file,
        diags,
        layer: None,
    };
    cx.spec(&root)
}

/// Keys accepted at the top level.
const TOP_KEYS: &[&str] = &[
    "name",
    "input",
    "weights",
    "budget",
    "prune",
    "layers",
    "microflows",
];
/// Keys of `microflows:`.
const MF_KEYS: &[&str] = &[
    "split_after",
    "grid",
    "levels",
    "gate",
    "theta",
    "window",
    "per_level_bn",
];
/// Largest micro-flow grid side and number of width levels.
const MAX_GRID: i128 = 16;
const MAX_LEVELS: usize = 8;
/// Keys every layer accepts.
const COMMON_KEYS: &[&str] = &["name", "op", "input", "inputs", "act", "param"];
/// Every op, in the order of the documentation.
const OPS: &[&str] = &[
    "conv",
    "batchnorm",
    "maxpool",
    "avgpool",
    "global_avg_pool",
    "dense",
    "add",
    "concat",
    "flatten",
    "softmax",
];
/// Ops that accept a fused `act`.
const ACT_OPS: &[&str] = &[
    "conv",
    "batchnorm",
    "dense",
    "add",
    "maxpool",
    "avgpool",
    "global_avg_pool",
];

/// Largest number of channels of the input.
const MAX_CHANNELS: i128 = 65536;
/// Largest height or width of the input.
const MAX_SIDE: i128 = 16384;
/// Largest conv kernel side.
const MAX_CONV_KERNEL: i128 = 7;
/// Largest conv stride.
const MAX_CONV_STRIDE: i128 = 4;
/// Largest conv padding on one side.
const MAX_CONV_PAD: i128 = 16;
/// Largest pooling kernel side / stride (any larger is certainly a mistake).
const MAX_POOL: i128 = 1024;
/// Largest `out` of conv (channels) and dense (features); bigger weights are caught as absurd.
const MAX_OUT: i128 = 1 << 28;

/// Fields accepted by an op besides the common ones.
fn op_keys(op: &str) -> &'static [&'static str] {
    match op {
        "conv" => &[
            "out", "kernel", "stride", "pad", "groups", "bias", "algo", "prune",
        ],
        "batchnorm" => &["eps"],
        "maxpool" => &["kernel", "stride", "pad"],
        "avgpool" => &["kernel", "stride", "pad", "count_include_pad"],
        "dense" => &["out", "bias"],
        _ => &[],
    }
}

/// Fields an op requires.
fn required_keys(op: &str) -> &'static [&'static str] {
    match op {
        "conv" => &["out", "kernel"],
        "maxpool" | "avgpool" => &["kernel"],
        "dense" => &["out"],
        _ => &[],
    }
}

fn backticked(list: &[&str]) -> String {
    let v: Vec<String> = list.iter().map(|k| format!("`{k}`")).collect();
    v.join(", ")
}

/// The parsing context: where errors go and which layer we are in.
struct Cx<'a> {
    file: &'a str,
    diags: &'a mut Diagnostics,
    layer: Option<String>,
}

impl Cx<'_> {
    fn diag(&self, loc: Loc, msg: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::new(self.file, loc, msg);
        match &self.layer {
            Some(l) => d.layer(l.clone()),
            None => d,
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn wrong_type(&mut self, key: &str, node: &Node, expected: &str) {
        let d = self
            .diag(node.loc, format!("wrong type for `{key}`"))
            .expected(expected)
            .found(node.value.kind());
        self.push(d);
    }

    /// An integer in `min..=max`.
    fn int(&mut self, key: &str, node: &Node, min: i128, max: i128) -> Option<i128> {
        let Value::Int(v) = node.value else {
            self.wrong_type(key, node, "an integer");
            return None;
        };
        if v < min || v > max {
            let msg = if v == 0 && min == 1 {
                format!("zero size: `{key}` must be at least 1")
            } else {
                format!("`{key}` is out of range")
            };
            let d = self
                .diag(node.loc, msg)
                .expected(format!("{min} ≤ {key} ≤ {max}"))
                .found(v.to_string());
            self.push(d);
            return None;
        }
        Some(v)
    }

    fn usize(&mut self, key: &str, node: &Node, min: i128, max: i128) -> Option<usize> {
        let v = self.int(key, node, min, max)?;
        match usize::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                let d = self.diag(node.loc, format!("`{key}` is too large for this machine"));
                self.push(d);
                None
            }
        }
    }

    fn u64(&mut self, key: &str, node: &Node, min: i128) -> Option<u64> {
        let v = self.int(key, node, min, i128::from(u64::MAX))?;
        u64::try_from(v).ok()
    }

    fn bool(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, node, "`true` or `false`");
                None
            }
        }
    }

    fn string<'n>(&mut self, key: &str, node: &'n Node) -> Option<&'n str> {
        match node.as_str() {
            Some(s) => Some(s),
            None => {
                self.wrong_type(key, node, "a string");
                None
            }
        }
    }

    /// One of `choices`.
    fn choice<'n>(&mut self, key: &str, node: &'n Node, choices: &[&str]) -> Option<&'n str> {
        let s = self.string(key, node)?;
        if choices.contains(&s) {
            return Some(s);
        }
        let hint = did_you_mean(s, choices.iter().copied());
        let d = self
            .diag(node.loc, format!("unknown {key} `{s}`{hint}"))
            .expected(format!("one of {}", backticked(choices)));
        self.push(d);
        None
    }

    /// An integer or a list `[h, w]`, each in `min..=max`.
    fn pair(&mut self, key: &str, node: &Node, min: i128, max: i128) -> Option<[usize; 2]> {
        match &node.value {
            Value::Int(_) => self.usize(key, node, min, max).map(|v| [v, v]),
            Value::Seq(items) if items.len() == 2 => {
                let a = items.first().and_then(|n| self.usize(key, n, min, max));
                let b = items.get(1).and_then(|n| self.usize(key, n, min, max));
                Some([a?, b?])
            }
            _ => {
                self.wrong_type(key, node, "an integer or a list [height, width]");
                None
            }
        }
    }

    /// Padding: `p`, `[ph, pw]`, `[top, left, bottom, right]` or `{ top, left, bottom, right }`.
    fn pad(&mut self, node: &Node, max: i128) -> Option<Pad> {
        let side = |cx: &mut Self, n: &Node| cx.usize("pad", n, 0, max);
        match &node.value {
            Value::Int(_) => side(self, node).map(|p| Pad {
                top: p,
                left: p,
                bottom: p,
                right: p,
            }),
            Value::Seq(items) if items.len() == 2 || items.len() == 4 => {
                let v: Vec<Option<usize>> = items.iter().map(|n| side(self, n)).collect();
                let v: Option<Vec<usize>> = v.into_iter().collect();
                match *v?.as_slice() {
                    [ph, pw] => Some(Pad {
                        top: ph,
                        left: pw,
                        bottom: ph,
                        right: pw,
                    }),
                    [top, left, bottom, right] => Some(Pad {
                        top,
                        left,
                        bottom,
                        right,
                    }),
                    _ => None,
                }
            }
            Value::Map(entries) => {
                let mut pad = Pad::default();
                let mut ok = true;
                for (k, v) in entries {
                    let slot = match k.as_str() {
                        Some("top") => &mut pad.top,
                        Some("left") => &mut pad.left,
                        Some("bottom") => &mut pad.bottom,
                        Some("right") => &mut pad.right,
                        _ => {
                            let name = k.as_str().map_or_else(|| k.value.kind(), str::to_string);
                            let hint = did_you_mean(&name, ["top", "left", "bottom", "right"]);
                            let d = self
                                .diag(k.loc, format!("unknown field `{name}` in `pad`{hint}"))
                                .expected("`top`, `left`, `bottom` or `right`");
                            self.push(d);
                            ok = false;
                            continue;
                        }
                    };
                    match side(self, v) {
                        Some(p) => *slot = p,
                        None => ok = false,
                    }
                }
                ok.then_some(pad)
            }
            _ => {
                self.wrong_type(
                    "pad",
                    node,
                    "an integer, [ph, pw], [top, left, bottom, right] or { top, left, bottom, right }",
                );
                None
            }
        }
    }

    fn spec(&mut self, root: &Node) -> Option<Spec> {
        let Some(entries) = root.as_map() else {
            let d = self
                .diag(root.loc, "the spec must be a mapping")
                .expected("`name`, `input`, `weights`, `layers`, ...")
                .found(root.value.kind());
            self.push(d);
            return None;
        };
        let default_name = default_model_name(self.file);
        let mut spec = Spec {
            name: default_name,
            input: None,
            weights: None,
            arena_budget: None,
            prune: None,
            layers: Vec::new(),
            layers_loc: root.loc,
            microflows: None,
        };
        let (mut has_input, mut has_weights, mut has_layers) = (false, false, false);
        for (k, v) in entries {
            match k.as_str() {
                Some("name") => {
                    if let Some(n) = self.model_name(v) {
                        spec.name = n;
                    }
                }
                Some("input") => {
                    has_input = true;
                    spec.input = self.input(v);
                }
                Some("weights") => {
                    has_weights = true;
                    spec.weights = self.weights(v);
                }
                Some("budget") => spec.arena_budget = self.budget(v),
                Some("prune") => {
                    spec.prune = self.prune_setting(v).map(|s| Located::new(s, v.loc));
                }
                Some("layers") => {
                    has_layers = true;
                    spec.layers_loc = v.loc;
                    spec.layers = self.layers(v);
                }
                Some("microflows") => spec.microflows = self.microflows(v),
                other => {
                    let name = other.map_or_else(|| k.value.kind(), str::to_string);
                    let hint = did_you_mean(&name, TOP_KEYS.iter().copied());
                    let d = self
                        .diag(k.loc, format!("unknown top-level field `{name}`{hint}"))
                        .expected(format!("one of {}", backticked(TOP_KEYS)));
                    self.push(d);
                }
            }
        }
        for (present, key, what) in [
            (has_input, "input", "{ channels: C, height: H, width: W }"),
            (
                has_weights,
                "weights",
                "a safetensors file name or { random: SEED }",
            ),
            (has_layers, "layers", "a list of layers"),
        ] {
            if !present {
                let d = self
                    .diag(root.loc, format!("missing field `{key}`"))
                    .expected(what);
                self.push(d);
            }
        }
        Some(spec)
    }

    fn model_name(&mut self, v: &Node) -> Option<String> {
        let s = self.string("name", v)?;
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Some(s.to_ascii_lowercase())
        } else {
            let d = self
                .diag(v.loc, format!("invalid model name `{s}`"))
                .expected("a name matching [A-Za-z_][A-Za-z0-9_]*");
            self.push(d);
            None
        }
    }

    fn input(&mut self, v: &Node) -> Option<Located<Shape>> {
        let Some(entries) = v.as_map() else {
            self.wrong_type("input", v, "{ channels: C, height: H, width: W }");
            return None;
        };
        let (mut c, mut h, mut w) = (None, None, None);
        for (k, x) in entries {
            match k.as_str() {
                Some("channels") => c = self.usize("channels", x, 1, MAX_CHANNELS),
                Some("height") => h = self.usize("height", x, 1, MAX_SIDE),
                Some("width") => w = self.usize("width", x, 1, MAX_SIDE),
                other => {
                    let name = other.map_or_else(|| k.value.kind(), str::to_string);
                    let hint = did_you_mean(&name, ["channels", "height", "width"]);
                    let d = self
                        .diag(k.loc, format!("unknown field `{name}` in `input`{hint}"))
                        .expected("`channels`, `height` and `width`");
                    self.push(d);
                }
            }
        }
        for key in ["channels", "height", "width"] {
            if v.get(key).is_none() {
                let d = self.diag(v.loc, format!("missing field `{key}` in `input`"));
                self.push(d);
            }
        }
        // An unknown key is reported but does not stop shape inference.
        Some(Located::new(Shape::new(c?, h?, w?), v.loc))
    }

    fn weights(&mut self, v: &Node) -> Option<Located<WeightsSpec>> {
        match &v.value {
            Value::Str(s) if !s.is_empty() => {
                Some(Located::new(WeightsSpec::File(s.clone()), v.loc))
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (k, x) = entries.first()?;
                if k.as_str() == Some("random") {
                    let seed = self.u64("random", x, 0)?;
                    Some(Located::new(WeightsSpec::Random(seed), v.loc))
                } else {
                    let name = k.as_str().map_or_else(|| k.value.kind(), str::to_string);
                    let d = self
                        .diag(k.loc, format!("unknown field `{name}` in `weights`"))
                        .expected("`random`");
                    self.push(d);
                    None
                }
            }
            _ => {
                self.wrong_type("weights", v, "a safetensors file name or { random: SEED }");
                None
            }
        }
    }

    fn budget(&mut self, v: &Node) -> Option<(u64, Loc)> {
        let Some(entries) = v.as_map() else {
            self.wrong_type("budget", v, "{ arena_bytes: N }");
            return None;
        };
        if v.get("arena_bytes").is_none() {
            let d = self.diag(v.loc, "missing field `arena_bytes` in `budget`");
            self.push(d);
        }
        let mut out = None;
        for (k, x) in entries {
            if k.as_str() == Some("arena_bytes") {
                out = self.u64("arena_bytes", x, 1).map(|b| (b, x.loc));
            } else {
                let name = k.as_str().map_or_else(|| k.value.kind(), str::to_string);
                let d = self
                    .diag(k.loc, format!("unknown field `{name}` in `budget`"))
                    .expected("`arena_bytes`");
                self.push(d);
            }
        }
        out
    }

    /// A number (integer or float).
    fn number(&mut self, key: &str, node: &Node) -> Option<f64> {
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) if f.is_finite() => Some(f),
            _ => {
                self.wrong_type(key, node, "a number");
                None
            }
        }
    }

    /// A list of numbers, each checked by `ok` (which says what was expected when it fails).
    fn numbers(
        &mut self,
        key: &str,
        node: &Node,
        ok: impl Fn(f64) -> Result<(), &'static str>,
    ) -> Option<Vec<f64>> {
        let Some(items) = node.as_seq() else {
            self.wrong_type(key, node, "a list of numbers");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut good = true;
        for it in items {
            match self.number(key, it) {
                Some(v) => match ok(v) {
                    Ok(()) => out.push(v),
                    Err(expected) => {
                        let d = self
                            .diag(it.loc, format!("`{key}` value out of range"))
                            .expected(expected)
                            .found(v.to_string());
                        self.push(d);
                        good = false;
                    }
                },
                None => good = false,
            }
        }
        good.then_some(out)
    }

    /// `microflows: { split_after, grid, levels, gate, theta, window }`.
    fn microflows(&mut self, v: &Node) -> Option<MicroflowSpec> {
        let Some(entries) = v.as_map() else {
            self.wrong_type(
                "microflows",
                v,
                "{ split_after: LAYER, grid: K, levels: [...], gate: {...} }",
            );
            return None;
        };
        let mut mf = MicroflowSpec {
            loc: v.loc,
            split_after: None,
            grid: None,
            levels: Located::new(DEFAULT_LEVELS.to_vec(), v.loc),
            gate: None,
            theta: 0.9,
            window: None,
            per_level_bn: false,
        };
        let mut ok = true;
        for (k, x) in entries {
            match k.as_str() {
                Some("split_after") => {
                    mf.split_after = self
                        .string("split_after", x)
                        .map(|s| Located::new(s.to_string(), x.loc));
                    ok &= mf.split_after.is_some();
                }
                Some("grid") => {
                    mf.grid = self
                        .usize("grid", x, 1, MAX_GRID)
                        .map(|g| Located::new(g, x.loc));
                    ok &= mf.grid.is_some();
                }
                Some("levels") => match self.levels(x) {
                    Some(l) => mf.levels = Located::new(l, x.loc),
                    None => ok = false,
                },
                Some("gate") => {
                    mf.gate = self.gate(x).map(|g| Located::new(g, x.loc));
                    ok &= mf.gate.is_some();
                }
                Some("theta") => match self.number("theta", x) {
                    Some(t) if (0.0..=1.0).contains(&t) => mf.theta = t,
                    Some(t) => {
                        let d = self
                            .diag(x.loc, "`theta` is out of range")
                            .expected("0 ≤ theta ≤ 1 (a gate confidence)")
                            .found(t.to_string());
                        self.push(d);
                        ok = false;
                    }
                    None => ok = false,
                },
                Some("window") => {
                    mf.window = self.usize("window", x, 1, MAX_GRID * MAX_GRID);
                    ok &= mf.window.is_some();
                }
                Some("per_level_bn") => match self.bool("per_level_bn", x) {
                    Some(b) => mf.per_level_bn = b,
                    None => ok = false,
                },
                other => {
                    let name = other.map_or_else(|| k.value.kind(), str::to_string);
                    let hint = did_you_mean(&name, MF_KEYS.iter().copied());
                    let d = self
                        .diag(
                            k.loc,
                            format!("unknown field `{name}` in `microflows`{hint}"),
                        )
                        .expected(format!("one of {}", backticked(MF_KEYS)));
                    self.push(d);
                    ok = false;
                }
            }
        }
        for (key, what) in [
            ("split_after", "the name of the last supernet layer"),
            ("grid", "the number of tiles per side, e.g. `grid: 3`"),
            (
                "gate",
                "`{ weights: gate }`, `{ energy: [thresholds] }` or `{ fixed: LEVEL }`",
            ),
        ] {
            if v.get(key).is_none() {
                let d = self
                    .diag(v.loc, format!("missing field `{key}` in `microflows`"))
                    .expected(what);
                self.push(d);
                ok = false;
            }
        }
        if let Some(g) = &mf.gate {
            let n = mf.levels.value.len();
            match &g.value {
                GateSpec::Energy(t) if t.len() + 1 != n => {
                    let d = self
                        .diag(
                            g.loc,
                            "the energy gate needs one threshold per level but the narrowest",
                        )
                        .expected(format!("{} thresholds for {n} levels", n.saturating_sub(1)))
                        .found(format!("{} thresholds", t.len()));
                    self.push(d);
                    ok = false;
                }
                GateSpec::Fixed(l) if *l >= n => {
                    let d = self
                        .diag(g.loc, "the fixed gate level does not exist")
                        .expected(format!("a level index 0..{}", n - 1))
                        .found(l.to_string());
                    self.push(d);
                    ok = false;
                }
                _ => {}
            }
        }
        ok.then_some(mf)
    }

    /// `levels: [1.0, 0.75, ...]`: fractions in (0, 1], strictly decreasing.
    fn levels(&mut self, x: &Node) -> Option<Vec<f64>> {
        let l = self.numbers("levels", x, |f| {
            if f > 0.0 && f <= 1.0 {
                Ok(())
            } else {
                Err("a channel fraction 0 < f ≤ 1")
            }
        })?;
        if l.is_empty() || l.len() > MAX_LEVELS {
            let d = self
                .diag(x.loc, "wrong number of width levels")
                .expected(format!("1 to {MAX_LEVELS} levels"))
                .found(l.len().to_string());
            self.push(d);
            return None;
        }
        if l.windows(2).any(|w| w[1] >= w[0]) {
            let d = self
                .diag(
                    x.loc,
                    "width levels must be strictly decreasing (widest first)",
                )
                .found(format!("{l:?}"));
            self.push(d);
            return None;
        }
        Some(l)
    }

    /// `gate: { weights: P, channels, kernel, stride } | { energy: [...] } | { fixed: L }`.
    fn gate(&mut self, x: &Node) -> Option<GateSpec> {
        const GATE_KEYS: &[&str] = &["weights", "channels", "kernel", "stride", "energy", "fixed"];
        let Some(entries) = x.as_map() else {
            self.wrong_type(
                "gate",
                x,
                "`{ weights: gate }`, `{ energy: [thresholds] }` or `{ fixed: LEVEL }`",
            );
            return None;
        };
        let (mut param, mut channels, mut kernel, mut stride) = (None, 16, 3, 2);
        let (mut energy, mut fixed) = (None, None);
        let mut ok = true;
        for (k, y) in entries {
            match k.as_str() {
                Some("weights") => param = self.string("weights", y).map(str::to_string),
                Some("channels") => match self.usize("channels", y, 1, 4096) {
                    Some(c) => channels = c,
                    None => ok = false,
                },
                Some("kernel") => match self.usize("kernel", y, 1, MAX_CONV_KERNEL) {
                    Some(c) => kernel = c,
                    None => ok = false,
                },
                Some("stride") => match self.usize("stride", y, 1, MAX_CONV_STRIDE) {
                    Some(c) => stride = c,
                    None => ok = false,
                },
                Some("energy") => {
                    energy = self.numbers("energy", y, |t| {
                        if t >= 0.0 {
                            Ok(())
                        } else {
                            Err("a threshold ≥ 0")
                        }
                    });
                    ok &= energy.is_some();
                    if let Some(t) = &energy {
                        if t.windows(2).any(|w| w[1] >= w[0]) {
                            let d = self
                                .diag(y.loc, "energy thresholds must be strictly decreasing")
                                .found(format!("{t:?}"));
                            self.push(d);
                            ok = false;
                        }
                    }
                }
                Some("fixed") => {
                    fixed = self.usize("fixed", y, 0, MAX_LEVELS as i128 - 1);
                    ok &= fixed.is_some();
                }
                other => {
                    let name = other.map_or_else(|| k.value.kind(), str::to_string);
                    let hint = did_you_mean(&name, GATE_KEYS.iter().copied());
                    let d = self
                        .diag(k.loc, format!("unknown field `{name}` in `gate`{hint}"))
                        .expected(format!("one of {}", backticked(GATE_KEYS)));
                    self.push(d);
                    ok = false;
                }
            }
        }
        let kinds = ["weights", "energy", "fixed"]
            .iter()
            .filter(|k| x.get(k).is_some())
            .count();
        if kinds != 1 {
            let d = self
                .diag(
                    x.loc,
                    "a gate is exactly one of a learned gate, an energy heuristic or a fixed level",
                )
                .expected("one of `weights`, `energy`, `fixed`")
                .found(format!("{kinds} of them"));
            self.push(d);
            return None;
        }
        if !ok {
            return None;
        }
        Some(match (param, energy, fixed) {
            (Some(param), _, _) => GateSpec::Learned {
                param,
                channels,
                kernel,
                stride,
            },
            (_, Some(e), _) => GateSpec::Energy(e),
            (_, _, Some(f)) => GateSpec::Fixed(f),
            _ => return None,
        })
    }

    fn layers(&mut self, v: &Node) -> Vec<LayerSpec> {
        let Some(items) = v.as_seq() else {
            self.wrong_type("layers", v, "a list of layers");
            return Vec::new();
        };
        if items.is_empty() {
            let d = self
                .diag(v.loc, "`layers` is empty")
                .expected("at least one layer");
            self.push(d);
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let layer = self.layer(i, item);
            self.layer = None;
            out.push(layer);
        }
        out
    }

    fn layer(&mut self, index: usize, node: &Node) -> LayerSpec {
        let mut layer = LayerSpec {
            name: format!("<layer {}>", index + 1),
            name_loc: node.loc,
            loc: node.loc,
            inputs: None,
            inputs_loc: node.loc,
            act: Act::None,
            param: String::new(),
            param_loc: node.loc,
            op: None,
            field_locs: Vec::new(),
        };
        let Some(entries) = node.as_map() else {
            let d = self
                .diag(node.loc, format!("layer {} is not a mapping", index + 1))
                .expected("{ name: ..., op: ..., ... }")
                .found(node.value.kind());
            self.push(d);
            return layer;
        };
        // The name first, so that every later error names the layer.
        match node.get("name") {
            Some(n) => {
                layer.name_loc = n.loc;
                if let Some(s) = self.string("name", n) {
                    layer.name = s.to_string();
                    self.check_layer_name(s, n.loc);
                }
            }
            None => {
                let d = self.diag(
                    node.loc,
                    format!("layer {}: missing field `name`", index + 1),
                );
                self.push(d);
            }
        }
        self.layer = Some(layer.name.clone());
        layer.param.clone_from(&layer.name);
        layer.field_locs = entries
            .iter()
            .filter_map(|(k, v)| k.as_str().map(|s| (s.to_string(), v.loc)))
            .collect();

        let op = match node.get("op") {
            Some(o) => self.choice("op", o, OPS),
            None => {
                let d = self
                    .diag(node.loc, "missing field `op`")
                    .expected(format!("one of {}", backticked(OPS)));
                self.push(d);
                None
            }
        };

        // Common fields; op fields are collected for the op parser.
        let mut op_fields: Vec<(&str, &Node)> = Vec::new();
        let mut ok = op.is_some();
        let mut inputs_key: Option<&str> = None;
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                let d = self.diag(k.loc, format!("unknown field {}", k.value.kind()));
                self.push(d);
                continue;
            };
            match key {
                "name" | "op" => {}
                "input" | "inputs" => {
                    if let Some(prev) = inputs_key {
                        let d = self
                            .diag(k.loc, format!("both `{prev}` and `{key}` are given"))
                            .expected("only one of them");
                        self.push(d);
                        continue;
                    }
                    inputs_key = Some(key);
                    layer.inputs_loc = v.loc;
                    match self.input_refs(key, v) {
                        Some(refs) => layer.inputs = Some(refs),
                        None => ok = false,
                    }
                }
                "act" => {
                    if let Some(op) = op.filter(|o| !ACT_OPS.contains(o)) {
                        let d = self
                            .diag(k.loc, format!("`act` is not allowed on op `{op}`"))
                            .expected(format!("`act` only on {}", backticked(ACT_OPS)));
                        self.push(d);
                        continue;
                    }
                    layer.act = match self.choice("act", v, &["none", "relu", "relu6"]) {
                        Some("relu") => Act::Relu,
                        Some("relu6") => Act::Relu6,
                        _ => Act::None,
                    };
                }
                "param" => {
                    if let Some(p) = self.string("param", v) {
                        layer.param = p.to_string();
                        layer.param_loc = v.loc;
                    }
                }
                _ => match op {
                    Some(o) if op_keys(o).contains(&key) => op_fields.push((key, v)),
                    Some(o) => {
                        let keys: Vec<&str> =
                            COMMON_KEYS.iter().chain(op_keys(o)).copied().collect();
                        let hint = did_you_mean(key, keys.iter().copied());
                        let d = self
                            .diag(k.loc, format!("unknown field `{key}` for op `{o}`{hint}"))
                            .expected(format!("one of {}", backticked(&keys)));
                        self.push(d);
                    }
                    // The op is unknown: its fields cannot be checked.
                    None => {}
                },
            }
        }
        let Some(op) = op else { return layer };

        // Input count.
        let n_inputs = layer.inputs.as_ref().map_or(1, Vec::len);
        let multi = matches!(op, "add" | "concat");
        if multi && n_inputs < 2 {
            let d = self
                .diag(
                    layer.inputs_loc,
                    format!("op `{op}` needs at least 2 inputs"),
                )
                .expected("`inputs: [a, b, ...]`")
                .found(format!(
                    "{n_inputs} input{}",
                    if n_inputs == 1 { "" } else { "s" }
                ));
            self.push(d);
        } else if !multi && n_inputs != 1 {
            let d = self
                .diag(
                    layer.inputs_loc,
                    format!("op `{op}` takes exactly one input"),
                )
                .expected("1 input")
                .found(format!("{n_inputs} inputs"));
            self.push(d);
        }

        let missing: Vec<&str> = required_keys(op)
            .iter()
            .copied()
            .filter(|r| !op_fields.iter().any(|(k, _)| k == r))
            .collect();
        for key in &missing {
            let d = self.diag(node.loc, format!("missing field `{key}` for op `{op}`"));
            self.push(d);
        }
        let parsed = self.op(op, &op_fields);
        if ok && missing.is_empty() {
            layer.op = parsed;
        }
        layer
    }

    fn check_layer_name(&mut self, s: &str, loc: Loc) {
        if s == "input" {
            let d = self.diag(loc, "`input` is a reserved name (it means the model input)");
            self.push(d);
        } else if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            let d = self
                .diag(loc, format!("invalid layer name `{s}`"))
                .expected("letters, digits, `_` and `.` only");
            self.push(d);
        }
    }

    fn input_refs(&mut self, key: &str, v: &Node) -> Option<Vec<InputRef>> {
        let one = |n: &Node| {
            n.as_str().map(|s| InputRef {
                name: s.to_string(),
                loc: n.loc,
            })
        };
        match &v.value {
            Value::Str(_) => one(v).map(|r| vec![r]),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for it in items {
                    match one(it) {
                        Some(r) => out.push(r),
                        None => {
                            self.wrong_type(key, it, "a layer name");
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.wrong_type(key, v, "a layer name or a list of layer names");
                None
            }
        }
    }

    /// Parses the op-specific fields. `None` if any is invalid (already reported).
    fn op(&mut self, op: &str, fields: &[(&str, &Node)]) -> Option<OpSpec> {
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, n)| *n);
        let mut ok = true;
        // Each optional field: parse when given, default otherwise; record failures.
        macro_rules! field {
            ($key:expr, $default:expr, |$n:ident| $parse:expr) => {
                match get($key) {
                    Some($n) => match $parse {
                        Some(v) => v,
                        None => {
                            ok = false;
                            $default
                        }
                    },
                    None => $default,
                }
            };
        }
        let spec = match op {
            "conv" => {
                let out = field!("out", 1, |n| self.usize("out", n, 1, MAX_OUT));
                let kernel = field!("kernel", [1, 1], |n| self.pair(
                    "kernel",
                    n,
                    1,
                    MAX_CONV_KERNEL
                ));
                let stride = field!("stride", [1, 1], |n| self.pair(
                    "stride",
                    n,
                    1,
                    MAX_CONV_STRIDE
                ));
                let pad = field!("pad", Pad::default(), |n| self.pad(n, MAX_CONV_PAD));
                let groups = field!("groups", 1, |n| self.usize("groups", n, 1, MAX_CHANNELS));
                let bias = field!("bias", None, |n| self.bool("bias", n).map(Some));
                let algo = field!("algo", AlgoRequest::Auto, |n| {
                    self.choice(
                        "algo",
                        n,
                        &[
                            "auto",
                            "direct",
                            "winograd2",
                            "winograd4",
                            "winograd6",
                            "pattern",
                        ],
                    )
                    .map(|a| match a {
                        "direct" => AlgoRequest::Direct,
                        "pattern" => AlgoRequest::Pattern,
                        "winograd2" => AlgoRequest::Winograd2,
                        "winograd4" => AlgoRequest::Winograd4,
                        "winograd6" => AlgoRequest::Winograd6,
                        _ => AlgoRequest::Auto,
                    })
                });
                let prune = field!("prune", None, |n| self
                    .prune_setting(n)
                    .map(|s| Some(Located::new(s, n.loc))));
                OpSpec::Conv(ConvSpec {
                    out,
                    kernel,
                    stride,
                    pad,
                    groups,
                    bias,
                    algo,
                    prune,
                })
            }
            "batchnorm" => {
                let eps = field!("eps", 1e-5, |n| self.eps(n));
                OpSpec::BatchNorm { eps }
            }
            "maxpool" | "avgpool" => {
                let kernel = field!("kernel", [1, 1], |n| self.pair("kernel", n, 1, MAX_POOL));
                let stride = field!("stride", kernel, |n| self.pair("stride", n, 1, MAX_POOL));
                let pad = field!("pad", Pad::default(), |n| self.pool_pad(n, kernel));
                let count_include_pad = field!("count_include_pad", true, |n| self
                    .bool("count_include_pad", n));
                let p = PoolSpec {
                    kernel,
                    stride,
                    pad,
                    count_include_pad,
                };
                if op == "maxpool" {
                    OpSpec::MaxPool(p)
                } else {
                    OpSpec::AvgPool(p)
                }
            }
            "global_avg_pool" => OpSpec::GlobalAvgPool,
            "dense" => {
                let out = field!("out", 1, |n| self.usize("out", n, 1, MAX_OUT));
                let bias = field!("bias", None, |n| self.bool("bias", n).map(Some));
                OpSpec::Dense(DenseSpec { out, bias })
            }
            "add" => OpSpec::Add,
            "concat" => OpSpec::Concat,
            "flatten" => OpSpec::Flatten,
            _ => OpSpec::Softmax,
        };
        ok.then_some(spec)
    }

    fn eps(&mut self, n: &Node) -> Option<f64> {
        let v = match n.value {
            Value::Float(x) => x,
            // Integers are exact enough here (eps: 1 is odd but valid).
            Value::Int(i) => i as f64,
            _ => {
                self.wrong_type("eps", n, "a number");
                return None;
            }
        };
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            let d = self
                .diag(n.loc, "`eps` must be a positive number")
                .expected("eps > 0")
                .found(v.to_string());
            self.push(d);
            None
        }
    }

    /// Pooling padding: each side at most half the kernel (PyTorch's rule).
    fn pool_pad(&mut self, n: &Node, kernel: [usize; 2]) -> Option<Pad> {
        let pad = self.pad(n, MAX_POOL)?;
        let [kh, kw] = kernel;
        if pad.top.max(pad.bottom) > kh / 2 || pad.left.max(pad.right) > kw / 2 {
            let d = self
                .diag(n.loc, "pooling padding must be at most half the kernel")
                .expected(format!(
                    "top, bottom ≤ {}, left, right ≤ {}",
                    kh / 2,
                    kw / 2
                ))
                .found(format!(
                    "top {}, left {}, bottom {}, right {}",
                    pad.top, pad.left, pad.bottom, pad.right
                ));
            self.push(d);
            return None;
        }
        Some(pad)
    }
}

/// The default model name: the file stem, made into a lowercase identifier.
fn default_model_name(file: &str) -> String {
    let stem = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = s.trim_matches('_');
    if trimmed.is_empty() {
        return "model".to_string();
    }
    s = trimmed.to_string();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "model_");
    }
    s
}

/// Drops the `error: line L column C:` prefix of the YAML parser's message (the diagnostic shows
/// the location already).
fn clean_yaml_message(msg: &str) -> String {
    let mut m = msg.trim();
    m = m.strip_prefix("error:").unwrap_or(m).trim_start();
    if let Some(rest) = m.strip_prefix("line ") {
        let mut parts = rest.splitn(2, ": ");
        let loc_part = parts.next().unwrap_or("");
        if let Some(tail) = parts.next() {
            if loc_part.split_whitespace().count() == 3 {
                m = tail;
            }
        }
    }
    // Parser hints about its own options mean nothing to a spec author.
    let m = m.split(", set ").next().unwrap_or(m);
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "specs/net.yaml";
    const HEAD: &str =
        "input: { channels: 3, height: 8, width: 8 }\nweights: { random: 1 }\nlayers:\n";

    fn spec(layers: &str) -> String {
        format!("{HEAD}{layers}")
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse_spec(text, FILE).expect_err("should fail").items
    }

    fn one_error(text: &str) -> Diagnostic {
        let d = errors(text);
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }

    /// 1-based (line, column) of the first occurrence of `needle`.
    fn pos(text: &str, needle: &str) -> (u64, u64) {
        let off = text.find(needle).expect("needle");
        let before = &text[..off];
        let line = before.matches('\n').count() + 1;
        let col = off - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line as u64, col as u64)
    }

    fn at(d: &Diagnostic) -> (u64, u64) {
        (d.loc.line, d.loc.column)
    }

    fn only_op(text: &str) -> OpSpec {
        let s = parse_spec(text, FILE).unwrap();
        s.layers.into_iter().next_back().unwrap().op.unwrap()
    }

    #[test]
    fn parses_the_top_level() {
        let text = "name: ResNet8\ninput: { channels: 3, height: 32, width: 16 }\nweights: resnet8.safetensors\nbudget: { arena_bytes: 262144 }\nlayers:\n  - { name: layer1.0.conv1, op: conv, out: 16, kernel: 3 }\n";
        let s = parse_spec(text, FILE).unwrap();
        assert_eq!(s.name, "resnet8");
        assert_eq!(s.input.map(|i| i.value), Some(Shape::new(3, 32, 16)));
        assert_eq!(
            s.weights.map(|w| w.value),
            Some(WeightsSpec::File("resnet8.safetensors".into()))
        );
        assert_eq!(
            s.arena_budget,
            Some((
                262144,
                Loc {
                    line: 4,
                    column: 24,
                    ..s.arena_budget.unwrap().1
                }
            ))
        );
        assert_eq!(s.layers.len(), 1);
        assert_eq!(s.layers[0].name, "layer1.0.conv1");
        assert_eq!(s.layers[0].param, "layer1.0.conv1");
        let r = parse_spec(
            &spec("  - { name: a, op: softmax }\n"),
            "dir/My-Net.v2.yaml",
        )
        .unwrap();
        assert_eq!(
            r.name, "my_net_v2",
            "default: the file stem as an identifier"
        );
        assert_eq!(r.weights.map(|w| w.value), Some(WeightsSpec::Random(1)));
        assert_eq!(r.layers[0].inputs, None);
    }

    #[test]
    fn parses_every_form_of_kernel_stride_and_pad() {
        let conv = |fields: &str| match only_op(&spec(&format!(
            "  - {{ name: c, op: conv, out: 2, {fields} }}\n"
        ))) {
            OpSpec::Conv(c) => c,
            other => panic!("{other:?}"),
        };
        let c = conv("kernel: 3");
        assert_eq!(
            (c.kernel, c.stride, c.pad, c.groups),
            ([3, 3], [1, 1], Pad::default(), 1)
        );
        assert_eq!((c.bias, c.algo), (None, AlgoRequest::Auto));
        let c = conv("kernel: [1, 7], stride: [2, 1], pad: [0, 3], bias: false, algo: direct");
        assert_eq!((c.kernel, c.stride), ([1, 7], [2, 1]));
        assert_eq!(
            c.pad,
            Pad {
                top: 0,
                left: 3,
                bottom: 0,
                right: 3
            }
        );
        assert_eq!((c.bias, c.algo), (Some(false), AlgoRequest::Direct));
        for (name, want) in [
            ("winograd2", AlgoRequest::Winograd2),
            ("winograd4", AlgoRequest::Winograd4),
            ("winograd6", AlgoRequest::Winograd6),
            ("auto", AlgoRequest::Auto),
        ] {
            assert_eq!(conv(&format!("kernel: 3, algo: {name}")).algo, want);
        }
        let c = conv("kernel: 3, pad: [1, 2, 3, 4]");
        assert_eq!(
            c.pad,
            Pad {
                top: 1,
                left: 2,
                bottom: 3,
                right: 4
            }
        );
        let c = conv("kernel: 3, pad: { bottom: 1, right: 2 }");
        assert_eq!(
            c.pad,
            Pad {
                top: 0,
                left: 0,
                bottom: 1,
                right: 2
            }
        );
        let c = conv("kernel: 3, pad: 16");
        assert_eq!(c.pad.top, 16);

        let pool = |op: &str, fields: &str| {
            only_op(&spec(&format!("  - {{ name: p, op: {op}, {fields} }}\n")))
        };
        let OpSpec::MaxPool(p) = pool("maxpool", "kernel: 3") else {
            panic!()
        };
        assert_eq!(
            (p.kernel, p.stride, p.pad),
            ([3, 3], [3, 3], Pad::default())
        );
        let OpSpec::AvgPool(p) = pool("avgpool", "kernel: [2, 4], pad: [1, 2]") else {
            panic!()
        };
        assert_eq!((p.stride, p.count_include_pad), ([2, 4], true));
        let OpSpec::BatchNorm { eps } = pool("batchnorm", "eps: 1") else {
            panic!()
        };
        assert_eq!(eps, 1.0);
        let OpSpec::Dense(d) = pool("dense", "out: 10, bias: true") else {
            panic!()
        };
        assert_eq!((d.out, d.bias), (10, Some(true)));
    }

    #[test]
    fn accepts_input_and_inputs() {
        let s = parse_spec(
            &spec("  - { name: a, op: softmax, input: input }\n  - { name: b, op: concat, input: [a, input] }\n  - { name: c, op: add, inputs: [a, b], act: relu }\n  - { name: d, op: softmax, inputs: c }\n"),
            FILE,
        )
        .unwrap();
        let names = |i: usize| -> Vec<String> {
            s.layers[i]
                .inputs
                .as_ref()
                .unwrap()
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        assert_eq!(names(0), ["input"]);
        assert_eq!(names(1), ["a", "input"]);
        assert_eq!(names(2), ["a", "b"]);
        assert_eq!(names(3), ["c"]);
        assert_eq!(s.layers[2].act, Act::Relu);
    }

    #[test]
    fn error_malformed_yaml() {
        let text = "input: { channels: 3\nlayers: [\n";
        let d = one_error(text);
        assert!(d.message.starts_with("invalid YAML: "), "{}", d.message);
        assert!(!d.message.contains("line"), "{}", d.message);
        assert!(d.loc.line >= 2, "{:?}", d.loc);
        let d = one_error("layers:\n  - name: a\n    op: conv\n    op: dense\n");
        assert_eq!(d.message, "invalid YAML: duplicate mapping key: op");
        assert_eq!(at(&d), (4, 5));
        assert_eq!(
            d.to_string(),
            "specs/net.yaml:4:5: error: invalid YAML: duplicate mapping key: op"
        );
    }

    #[test]
    fn error_unknown_op() {
        let text = spec("  - { name: c1, op: convv, out: 4 }\n");
        let d = one_error(&text);
        assert_eq!(d.message, "unknown op `convv`, did you mean `conv`?");
        assert_eq!(at(&d), pos(&text, "convv"));
        assert_eq!(d.layer.as_deref(), Some("c1"));
    }

    #[test]
    fn error_unknown_field() {
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3, strides: 2 }\n");
        let d = one_error(&text);
        assert_eq!(
            d.to_string(),
            format!("specs/net.yaml:4:{}: error: layer `c1`: unknown field `strides` for op `conv`, did you mean `stride`? (expected one of `name`, `op`, `input`, `inputs`, `act`, `param`, `out`, `kernel`, `stride`, `pad`, `groups`, `bias`, `algo`, `prune`)", pos(&text, "strides").1)
        );
        // Pool-only and avgpool-only fields.
        let d = one_error(&spec(
            "  - { name: p, op: maxpool, kernel: 2, count_include_pad: true }\n",
        ));
        assert_eq!(
            d.message,
            "unknown field `count_include_pad` for op `maxpool`"
        );
    }

    #[test]
    fn error_missing_required_field() {
        let text = spec("  - { name: c1, op: conv, kernel: 3 }\n");
        let d = one_error(&text);
        assert_eq!(d.message, "missing field `out` for op `conv`");
        assert_eq!(
            (at(&d), d.layer.as_deref()),
            (pos(&text, "{ name: c1"), Some("c1"))
        );
        let d = one_error(&spec("  - name: p\n    op: maxpool\n"));
        assert_eq!(d.message, "missing field `kernel` for op `maxpool`");
        assert_eq!(at(&d), (4, 5));
        let d = one_error(&spec("  - { op: softmax }\n"));
        assert_eq!(
            (d.message.as_str(), d.layer.as_deref()),
            ("layer 1: missing field `name`", None)
        );
        let d = one_error(&spec("  - { name: s }\n"));
        assert_eq!(d.message, "missing field `op`");
    }

    #[test]
    fn error_bad_type() {
        let text = spec("  - { name: c1, op: conv, out: abc, kernel: 3 }\n");
        let d = one_error(&text);
        assert_eq!(
            d.to_string(),
            format!("specs/net.yaml:4:{}: error: layer `c1`: wrong type for `out` (expected an integer, found string `abc`)", pos(&text, "abc").1)
        );
        let d = one_error(&spec(
            "  - { name: c1, op: conv, out: 2, kernel: 3, bias: 1 }\n",
        ));
        assert_eq!(d.to_string(), "specs/net.yaml:4:52: error: layer `c1`: wrong type for `bias` (expected `true` or `false`, found integer `1`)");
        let d = one_error(&spec(
            "  - { name: c1, op: conv, out: 2, kernel: [3, 3, 3] }\n",
        ));
        assert_eq!(d.found.as_deref(), Some("a list"));
        let d = one_error(&spec("  - { name: b, op: batchnorm, eps: -1.0 }\n"));
        assert_eq!(d.message, "`eps` must be a positive number");
        let d = one_error(&spec(
            "  - { name: c1, op: conv, out: 2, kernel: 3, pad: { up: 1 } }\n",
        ));
        assert_eq!(d.message, "unknown field `up` in `pad`");
    }

    #[test]
    fn error_out_of_range_values() {
        let text = spec("  - { name: c1, op: conv, out: 2, kernel: [3, 9] }\n");
        let d = one_error(&text);
        assert_eq!(d.to_string(), format!("specs/net.yaml:4:{}: error: layer `c1`: `kernel` is out of range (expected 1 ≤ kernel ≤ 7, found 9)", pos(&text, "9]").1));
        let d = one_error(&spec(
            "  - { name: c1, op: conv, out: 2, kernel: 3, pad: 17 }\n",
        ));
        assert_eq!(d.expected.as_deref(), Some("0 ≤ pad ≤ 16"));
        let d = one_error(&spec("  - { name: p, op: maxpool, kernel: 3, pad: 2 }\n"));
        assert_eq!(d.message, "pooling padding must be at most half the kernel");
        assert_eq!(
            d.expected.as_deref(),
            Some("top, bottom ≤ 1, left, right ≤ 1")
        );
    }

    #[test]
    fn error_zero_size() {
        let text = "input: { channels: 0, height: 8, width: 8 }\nweights: { random: 1 }\nlayers:\n  - { name: s, op: softmax }\n";
        let d = one_error(text);
        assert_eq!(d.to_string(), "specs/net.yaml:1:20: error: zero size: `channels` must be at least 1 (expected 1 ≤ channels ≤ 65536, found 0)");
        let d = one_error(&spec("  - { name: fc, op: dense, out: 0 }\n"));
        assert_eq!(
            (d.message.as_str(), d.layer.as_deref()),
            ("zero size: `out` must be at least 1", Some("fc"))
        );
    }

    #[test]
    fn error_act_on_flatten() {
        let text = spec("  - { name: f, op: flatten, act: relu }\n");
        let d = one_error(&text);
        assert_eq!(d.message, "`act` is not allowed on op `flatten`");
        assert_eq!((at(&d), d.layer.as_deref()), (pos(&text, "act"), Some("f")));
        let d = one_error(&spec("  - { name: c, op: softmax, act: relu }\n"));
        assert_eq!(d.message, "`act` is not allowed on op `softmax`");
        let d = one_error(&spec(
            "  - { name: c, op: add, inputs: [input, input], act: gelu }\n",
        ));
        assert_eq!(d.message, "unknown act `gelu`, did you mean `relu`?");
    }

    #[test]
    fn error_layer_names() {
        let d = one_error(&spec("  - { name: input, op: softmax }\n"));
        assert_eq!(
            d.message,
            "`input` is a reserved name (it means the model input)"
        );
        assert_eq!(at(&d), (4, 13));
        let d = one_error(&spec("  - { name: a-b, op: softmax }\n"));
        assert_eq!(d.message, "invalid layer name `a-b`");
        let d = one_error(&format!(
            "name: 9lives\n{HEAD}  - {{ name: a, op: softmax }}\n"
        ));
        assert_eq!(
            (d.message.as_str(), at(&d)),
            ("invalid model name `9lives`", (1, 7))
        );
    }

    #[test]
    fn error_input_counts() {
        let d = one_error(&spec("  - { name: r, op: add }\n"));
        assert_eq!(d.message, "op `add` needs at least 2 inputs");
        assert_eq!(d.found.as_deref(), Some("1 input"));
        let text = spec("  - { name: r, op: softmax, inputs: [input, input] }\n");
        let d = one_error(&text);
        assert_eq!(
            (d.message.as_str(), at(&d)),
            ("op `softmax` takes exactly one input", pos(&text, "[input"))
        );
        let d = one_error(&spec(
            "  - { name: r, op: softmax, input: input, inputs: [input] }\n",
        ));
        assert_eq!(d.message, "both `input` and `inputs` are given");
        let d = one_error(&spec("  - { name: r, op: softmax, input: 3 }\n"));
        assert_eq!(d.message, "wrong type for `input`");
    }

    #[test]
    fn error_top_level() {
        let text = "input: { channels: 3, height: 8, width: 8 }\nwieghts: x.safetensors\nmicroflows: { grid: 3 }\nlayers: []\n";
        let d = errors(text);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "specs/net.yaml:2:1: error: unknown top-level field `wieghts`, did you mean `weights`? (expected one of `name`, `input`, `weights`, `budget`, `prune`, `layers`, `microflows`)",
                "specs/net.yaml:3:13: error: missing field `split_after` in `microflows` (expected the name of the last supernet layer)",
                "specs/net.yaml:3:13: error: missing field `gate` in `microflows` (expected `{ weights: gate }`, `{ energy: [thresholds] }` or `{ fixed: LEVEL }`)",
                "specs/net.yaml:4:9: error: `layers` is empty (expected at least one layer)",
                "specs/net.yaml:1:1: error: missing field `weights` (expected a safetensors file name or { random: SEED })",
            ]
        );
        let d = one_error("weights: { random: 1 }\nlayers: [{ name: a, op: softmax }]\n");
        assert_eq!(d.message, "missing field `input`");
        let d = one_error("input: { channels: 3, height: 8 }\nweights: { random: 1 }\nlayers: [{ name: a, op: softmax }]\n").message;
        assert!(d.contains("missing field `width` in `input`"), "{d}");
        let d = errors("input: { channels: 3, height: 8, width: 8 }\nweights: { random: -1 }\nlayers: [{ name: a, op: softmax }]\n");
        assert_eq!(d[0].to_string(), "specs/net.yaml:2:20: error: `random` is out of range (expected 0 ≤ random ≤ 18446744073709551615, found -1)");
        let d = errors(&format!(
            "budget: {{ arena: 1 }}\n{HEAD}  - {{ name: a, op: softmax }}\n"
        ));
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "missing field `arena_bytes` in `budget`",
                "unknown field `arena` in `budget`"
            ]
        );
        let e = errors(&format!(
            "budget: {{}}\n{HEAD}  - {{ name: a, op: softmax }}\n"
        ));
        assert_eq!(e[0].message, "missing field `arena_bytes` in `budget`");
        let d = one_error("- 1\n- 2\n");
        assert_eq!(d.message, "the spec must be a mapping");
    }

    #[test]
    fn parses_microflows() {
        let text = format!(
            "{HEAD}  - {{ name: a, op: softmax }}\nmicroflows:\n  split_after: a\n  grid: 2\n  levels: [1, 0.5]\n  gate: {{ energy: [0.3] }}\n  theta: 0.8\n  window: 3\n"
        );
        let s = parse_spec(&text, "specs/net.yaml").unwrap();
        let mf = s.microflows.unwrap();
        assert_eq!(mf.split_after.unwrap().value, "a");
        assert_eq!(mf.grid.unwrap().value, 2);
        assert_eq!(mf.levels.value, vec![1.0, 0.5]);
        assert_eq!(mf.gate.unwrap().value, GateSpec::Energy(vec![0.3]));
        assert_eq!((mf.theta, mf.window), (0.8, Some(3)));
        let text = format!(
            "{HEAD}  - {{ name: a, op: softmax }}\nmicroflows: {{ split_after: a, grid: 3, gate: {{ weights: g, channels: 8 }} }}\n"
        );
        let mf = parse_spec(&text, "specs/net.yaml")
            .unwrap()
            .microflows
            .unwrap();
        assert_eq!(mf.levels.value, DEFAULT_LEVELS.to_vec());
        assert_eq!(
            mf.gate.unwrap().value,
            GateSpec::Learned {
                param: "g".into(),
                channels: 8,
                kernel: 3,
                stride: 2
            }
        );
    }

    #[test]
    fn error_microflows() {
        let text = format!(
            "{HEAD}  - {{ name: a, op: softmax }}\nmicroflows:\n  split_after: 3\n  grid: 0\n  levels: [1, 0.5, 0.6, 0]\n  gate: {{ energy: [0.1], fixed: 1 }}\n  thetta: 1\n"
        );
        let d = errors(&text);
        let shown: Vec<String> = d
            .iter()
            .map(|d| format!("{}:{} {}", d.loc.line, d.loc.column, d.message))
            .collect();
        let line = |n: &str| text.lines().position(|l| l.contains(n)).unwrap() + 1;
        assert_eq!(
            shown,
            [
                format!("{}:16 wrong type for `split_after`", line("split_after")),
                format!("{}:9 zero size: `grid` must be at least 1", line("grid:")),
                format!("{}:25 `levels` value out of range", line("levels")),
                format!("{}:9 a gate is exactly one of a learned gate, an energy heuristic or a fixed level", line("gate")),
                format!("{}:3 unknown field `thetta` in `microflows`, did you mean `theta`?", line("thetta")),
            ]
        );
        let text = format!(
            "{HEAD}  - {{ name: a, op: softmax }}\nmicroflows: {{ split_after: a, grid: 2, levels: [1, 0.5, 0.75], gate: {{ fixed: 2 }} }}\n"
        );
        let msgs: Vec<String> = errors(&text).iter().map(|d| d.to_string()).collect();
        assert!(
            msgs[0].contains("width levels must be strictly decreasing"),
            "{msgs:?}"
        );
        let text = format!(
            "{HEAD}  - {{ name: a, op: softmax }}\nmicroflows: {{ split_after: a, grid: 2, levels: [1, 0.5], gate: {{ energy: [0.2, 0.1] }} }}\n"
        );
        let d = one_error(&text);
        assert_eq!(
            d.to_string().split(": error: ").nth(1).unwrap(),
            "the energy gate needs one threshold per level but the narrowest (expected 1 thresholds for 2 levels, found 2 thresholds)"
        );
    }

    #[test]
    fn yaml_messages_lose_their_location_prefix() {
        assert_eq!(
            clean_yaml_message("error: line 5 column 5: duplicate mapping key: op, set X"),
            "duplicate mapping key: op"
        );
        assert_eq!(clean_yaml_message("unexpected end"), "unexpected end");
    }
}
