//! Pattern pruning at build time (PatDNN, ALGORITHMS.md §2): owns the `prune:` settings, the
//! prune-or-dense decision per layer, library distillation, projection onto the library,
//! connectivity pruning, the build-report lines and the write-back of pruned weights and masks.
//!
//! It runs on the validated graph before batchnorm folding (`compile` and the tests call
//! [`apply`]), so the pruned weights are in the units of the user's `state_dict`; folding scales
//! whole filters, which keeps every zero.
//!
//! Rules (documented in docs/ARCHITECTURE.md, "Pattern pruning"):
//! - a layer is pruned when it has a prune setting, is 3×3 / stride 1 or 2 / groups 1, and either says
//!   `algo: pattern` or says `algo: auto` and [`crate::plan::pattern_cost`] beats the cheapest
//!   dense algorithm; otherwise it keeps its dense weights (never pruned *and* Winograd);
//! - the library of a group of layers (same `patterns` and `library`) is the given list, or the
//!   K most frequent top-4 masks (centre forced; ties: smaller mask) over the nonzero 3×3
//!   kernels of the group's pruned layers;
//! - each kernel is projected onto the library mask with the most energy (ties: lower id);
//! - each filter keeps its `round(connectivity · c_in)` (at least 1) kernels of largest projected
//!   L2 norm (ties: lower channel), all-zero kernels never; everything else becomes zero.
//!
//! Weights that already follow a library (after mask-aware fine-tuning) are kept exactly: their
//! top-4 masks are the library, each kernel's support fits its mask, and the zeroed kernels are
//! the ones connectivity pruning drops.

use crate::diag::Loc;
use crate::graph::{AlgoRequest, Graph, Op};
use crate::plan;
use neulens_kernels::pattern::{self as kpat, ALL_MASKS, CENTRE, PRUNED};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub mod check;

/// Default library size (PatDNN's recommendation).
pub const DEFAULT_PATTERNS: usize = 8;
/// Default fraction of kernels kept.
pub const DEFAULT_CONNECTIVITY: f64 = 0.5;
/// Default warning threshold: fraction of a layer's weight energy the projection may remove.
pub const DEFAULT_WARN_LOSS: f64 = 0.5;

/// Where the pattern library comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Library {
    /// Distilled from the model (the K most frequent top-4 masks).
    Auto,
    /// Given masks (bit `ky * 3 + kx`), each with 4 taps including the centre.
    Masks(Vec<u16>),
}

/// The fields of a `prune:` mapping as written (unset fields take the model-wide default, then
/// the built-in defaults).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneFields {
    pub patterns: Option<usize>,
    pub connectivity: Option<f64>,
    pub library: Option<Library>,
    pub warn_loss: Option<f64>,
}

/// A `prune:` value: `off`, or a mapping.
#[derive(Clone, Debug, PartialEq)]
pub enum PruneSetting {
    Off,
    On(PruneFields),
}

/// A complete pruning configuration of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneConfig {
    /// Library size K (1–56).
    pub patterns: usize,
    /// Fraction of kernels kept, in (0, 1].
    pub connectivity: f64,
    pub library: Library,
    /// Warn when the projection removes more than this fraction of the layer's weight energy.
    pub warn_loss: f64,
}

/// The pattern assignment of a pruned layer (after [`apply`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Index of the library in [`PruneReport::libraries`].
    pub library: usize,
    /// The library's masks.
    pub masks: Vec<u16>,
    /// Per kernel (`oc * c_in + ic`): pattern id or [`PRUNED`].
    pub assign: Vec<u8>,
}

/// Pruning state of one conv: its configuration, and after [`apply`] the assignment (pruned) or
/// the reason it stays dense.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPrune {
    pub config: PruneConfig,
    /// The `state_dict` prefix of the layer's weights (for the write-back).
    pub param: String,
    /// Location of the `prune:` value that applies (the layer's or the model-wide one).
    pub loc: Loc,
    pub assigned: Option<Assignment>,
    /// Why the layer is pruned or kept dense, with the cost estimates (the build report).
    pub why: String,
}

/// Merges a layer's setting over the model-wide default. `None`: not pruned.
pub fn merge(default: Option<&PruneSetting>, layer: Option<&PruneSetting>) -> Option<PruneConfig> {
    let (d, l) = match (default, layer) {
        (_, Some(PruneSetting::Off)) => return None,
        (None | Some(PruneSetting::Off), None) => return None,
        (Some(PruneSetting::On(d)), l) => (d.clone(), l),
        (None | Some(PruneSetting::Off), l) => (PruneFields::default(), l),
    };
    let l = match l {
        Some(PruneSetting::On(f)) => f.clone(),
        _ => PruneFields::default(),
    };
    let library = l.library.or(d.library).unwrap_or(Library::Auto);
    let patterns = match (&library, l.patterns.or(d.patterns)) {
        (_, Some(k)) => k,
        (Library::Masks(m), None) => m.len(),
        (Library::Auto, None) => DEFAULT_PATTERNS,
    };
    Some(PruneConfig {
        patterns,
        connectivity: l
            .connectivity
            .or(d.connectivity)
            .unwrap_or(DEFAULT_CONNECTIVITY),
        library,
        warn_loss: l.warn_loss.or(d.warn_loss).unwrap_or(DEFAULT_WARN_LOSS),
    })
}

/// The top-4 mask of a 3×3 kernel: the centre plus the 3 other taps of largest |w| (ties: lower
/// tap index).
pub fn top4_mask(w: &[f32]) -> u16 {
    let mut idx: Vec<usize> = (0..9).filter(|&b| b != 4).collect();
    idx.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()).then(a.cmp(&b)));
    idx[..3].iter().fold(CENTRE, |m, &b| m | 1 << b)
}

/// Energy of `w ⊙ mask`.
pub fn masked_energy(w: &[f32], mask: u16) -> f64 {
    (0..9)
        .filter(|&b| mask >> b & 1 != 0)
        .map(|b| f64::from(w[b]) * f64::from(w[b]))
        .sum()
}

/// The library pattern with the most energy on `w` (ties: lower id), and that energy.
pub fn project(w: &[f32], masks: &[u16]) -> (usize, f64) {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &m) in masks.iter().enumerate() {
        let e = masked_energy(w, m);
        if e > best.1 {
            best = (i, e);
        }
    }
    best
}

/// The `k` most frequent top-4 masks of the nonzero kernels (ties: smaller mask), padded with
/// the first unused masks of [`ALL_MASKS`] when fewer than `k` occur.
pub fn distil<'a>(kernels: impl Iterator<Item = &'a [f32]>, k: usize) -> Vec<u16> {
    let mut count: BTreeMap<u16, usize> = BTreeMap::new();
    for w in kernels {
        if w.iter().any(|&v| v != 0.0) {
            *count.entry(top4_mask(w)).or_default() += 1;
        }
    }
    let mut by: Vec<(u16, usize)> = count.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut lib: Vec<u16> = by.into_iter().take(k).map(|(m, _)| m).collect();
    for &m in &ALL_MASKS {
        if lib.len() >= k {
            break;
        }
        if !lib.contains(&m) {
            lib.push(m);
        }
    }
    lib
}

/// Kernels kept per filter: `round(connectivity · c_in)`, at least 1, at most `c_in`.
pub fn kept_per_filter(connectivity: f64, c_in: usize) -> usize {
    ((connectivity * c_in as f64).round() as usize).clamp(1, c_in.max(1))
}

/// Pruned weights and the assignment of one layer (OIHW 3×3, `c_out × c_in` kernels).
pub struct Pruned {
    pub weight: Vec<f32>,
    pub assign: Vec<u8>,
    /// Total energy, energy after projection, energy after connectivity pruning.
    pub energy: (f64, f64, f64),
    pub kept: usize,
}

/// Projects every kernel onto `masks` and keeps the `kept_per_filter` strongest per filter.
pub fn prune_layer(
    w: &[f32],
    c_out: usize,
    c_in: usize,
    masks: &[u16],
    connectivity: f64,
) -> Pruned {
    let keep = kept_per_filter(connectivity, c_in);
    let mut weight = vec![0.0f32; w.len()];
    let mut assign = vec![PRUNED; c_out * c_in];
    let (mut total, mut projected, mut kept_e, mut kept) = (0.0, 0.0, 0.0, 0);
    for oc in 0..c_out {
        let mut ks: Vec<(usize, usize, f64)> = (0..c_in)
            .map(|ic| {
                let k = &w[(oc * c_in + ic) * 9..(oc * c_in + ic) * 9 + 9];
                total += masked_energy(k, 0x1ff);
                let (pid, e) = project(k, masks);
                projected += e;
                (ic, pid, e)
            })
            .collect();
        ks.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        for &(ic, pid, e) in ks.iter().take(keep) {
            if e <= 0.0 {
                continue;
            }
            let base = (oc * c_in + ic) * 9;
            for b in 0..9 {
                if masks[pid] >> b & 1 != 0 {
                    weight[base + b] = w[base + b];
                }
            }
            assign[oc * c_in + ic] = pid as u8;
            kept_e += e;
            kept += 1;
        }
    }
    Pruned {
        weight,
        assign,
        energy: (total, projected, kept_e),
        kept,
    }
}

/// What [`apply`] did, for the build report and the write-back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneReport {
    /// Each library: its masks and the layers that use it.
    pub libraries: Vec<(Vec<u16>, Vec<String>)>,
    /// Report lines (one per layer with a prune setting).
    pub lines: Vec<String>,
    /// Warnings (energy removed above the layer's `warn_loss`).
    pub warnings: Vec<String>,
}

impl PruneReport {
    /// The report section (empty when no layer has a prune setting).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (masks, layers)) in self.libraries.iter().enumerate() {
            let shown: Vec<String> = masks.iter().map(|&m| mask_str(m)).collect();
            out.push(format!(
                "pattern library {i} ({} patterns, rows top/mid/bottom): {} — used by {}",
                masks.len(),
                shown.join(" "),
                layers.join(", ")
            ));
        }
        out.extend(self.lines.iter().cloned());
        out.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        out
    }
}

/// A mask as `xxx/.x./...` (rows top to bottom).
pub fn mask_str(m: u16) -> String {
    let mut s = String::new();
    for ky in 0..3 {
        if ky > 0 {
            s.push('/');
        }
        for kx in 0..3 {
            s.push(if m >> (ky * 3 + kx) & 1 != 0 {
                'x'
            } else {
                '.'
            });
        }
    }
    s
}

/// Decides, distils, projects and prunes every conv with a prune setting. Returns the graph with
/// pruned weights (`ConvOp::prune.assigned` set, `algo` = `Pattern`) and the report. Graphs
/// without prune settings come back unchanged.
pub fn apply(g: &Graph) -> (Graph, PruneReport) {
    let mut out = g.clone();
    let mut report = PruneReport::default();
    // 1. Decide per layer.
    let mut pruned: Vec<usize> = Vec::new();
    let weights = plan::Weights::of_model(g);
    for (i, n) in g.nodes.iter().enumerate() {
        let Op::Conv(c) = &n.op else { continue };
        let Some(lp) = &c.prune else { continue };
        let p = plan::conv_params(g, i, c);
        let keep = kept_per_filter(lp.config.connectivity, p.c_in);
        let kernels = keep * p.c_out;
        let pp = kpat::PatternParams {
            conv: p,
            patterns: lp.config.patterns,
            kernels,
        };
        let pcost = plan::pattern_cost(&pp);
        let (dense_algo, dense_why) = plan::choose_conv_algo_in(&p, dense_request(c.algo), weights);
        let dcost = plan::conv_cost_in(&p, dense_algo, weights);
        let costs = format!(
            "est. pattern {:.1} µs (density {:.3}) vs {} {:.1} µs",
            pcost / 1e3,
            kernels as f64 * 4.0 / (p.c_out * p.c_in * 9) as f64,
            dense_algo.name(),
            dcost / 1e3
        );
        let (prune, why) = if !kpat::supported(&p) {
            (
                false,
                format!(
                    "kept dense: the pattern kernel needs stride 1 or 2 (found {}×{})",
                    p.sh, p.sw
                ),
            )
        } else {
            match c.algo {
                AlgoRequest::Pattern => (true, format!("pruned: forced (algo: pattern); {costs}")),
                AlgoRequest::Auto if pcost < dcost => (true, format!("pruned: {costs}")),
                AlgoRequest::Auto => (false, format!("kept dense: {costs}")),
                _ => (false, format!("kept dense: {dense_why}")),
            }
        };
        if let Op::Conv(oc) = &mut out.nodes[i].op {
            if let Some(olp) = &mut oc.prune {
                olp.why = why;
            }
        }
        if prune {
            pruned.push(i);
        }
    }
    // 2. Libraries per (patterns, library) group, from the layers that are pruned.
    let mut groups: Vec<(usize, Library, Vec<usize>)> = Vec::new();
    for &i in &pruned {
        let Op::Conv(c) = &g.nodes[i].op else {
            continue;
        };
        let Some(lp) = &c.prune else { continue };
        match groups
            .iter_mut()
            .find(|(k, l, _)| *k == lp.config.patterns && *l == lp.config.library)
        {
            Some(gr) => gr.2.push(i),
            None => groups.push((lp.config.patterns, lp.config.library.clone(), vec![i])),
        }
    }
    for (k, lib, layers) in groups {
        let masks = match &lib {
            Library::Masks(m) => m.clone(),
            Library::Auto => distil(
                layers.iter().flat_map(|&i| match &g.nodes[i].op {
                    Op::Conv(c) => c.weight.data.chunks_exact(9).collect::<Vec<_>>(),
                    _ => Vec::new(),
                }),
                k,
            ),
        };
        let lib_id = report.libraries.len();
        let mut names = Vec::new();
        for &i in &layers {
            let n = &g.nodes[i];
            let Op::Conv(c) = &n.op else { continue };
            let Some(lp) = &c.prune else { continue };
            let c_in = c.weight.shape.get(1).copied().unwrap_or(0);
            let pr = prune_layer(
                &c.weight.data,
                c.out_channels,
                c_in,
                &masks,
                lp.config.connectivity,
            );
            let (total, proj, kept_e) = pr.energy;
            let frac = |e: f64| if total > 0.0 { 1.0 - e / total } else { 0.0 };
            let exact = pr.weight == c.weight.data;
            report.lines.push(format!(
                "pattern pruning `{}`: {} of {} kernels kept, projection removes {:.1} % of the weight energy, connectivity {:.1} % more{}",
                n.name,
                pr.kept,
                c.out_channels * c_in,
                100.0 * frac(proj),
                100.0 * (frac(kept_e) - frac(proj)),
                if exact { " (weights already follow the library: kept exactly)" } else { "" }
            ));
            if frac(proj) > lp.config.warn_loss {
                report.warnings.push(format!(
                    "layer `{}`: the pattern projection removes {:.1} % of its weight energy (more than warn_loss {:.1} %); fine-tune with the masks (see `Model::write_pruned`)",
                    n.name,
                    100.0 * frac(proj),
                    100.0 * lp.config.warn_loss
                ));
            }
            names.push(n.name.clone());
            if let Op::Conv(oc) = &mut out.nodes[i].op {
                oc.weight.data = pr.weight;
                oc.algo = AlgoRequest::Pattern;
                if let Some(olp) = &mut oc.prune {
                    olp.assigned = Some(Assignment {
                        library: lib_id,
                        masks: masks.clone(),
                        assign: pr.assign,
                    });
                }
            }
        }
        report.libraries.push((masks, names));
    }
    for n in &out.nodes {
        if let Op::Conv(c) = &n.op {
            if let Some(lp) = c.prune.as_ref().filter(|lp| lp.assigned.is_none()) {
                report
                    .lines
                    .push(format!("pattern pruning `{}`: {}", n.name, lp.why));
            }
        }
    }
    (out, report)
}

/// The dense algorithm request a layer competes with: its own, `Auto` for `Pattern`.
fn dense_request(a: AlgoRequest) -> AlgoRequest {
    match a {
        AlgoRequest::Pattern => AlgoRequest::Auto,
        other => other,
    }
}

/// The pruned weights and masks of a pruned graph as safetensors tensors: `<param>.weight`
/// (OIHW, zeros where pruned) and `<param>.mask` (1 where a weight is kept, else 0) for every
/// pattern-pruned conv, in graph order.
pub fn pruned_tensors(pruned: &Graph) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    for n in &pruned.nodes {
        let Op::Conv(c) = &n.op else { continue };
        let Some(lp) = &c.prune else { continue };
        let Some(a) = &lp.assigned else { continue };
        let mut mask = vec![0.0f32; c.weight.data.len()];
        for (k, &pid) in a.assign.iter().enumerate() {
            if pid == PRUNED {
                continue;
            }
            for b in 0..9 {
                if a.masks[pid as usize] >> b & 1 != 0 {
                    mask[k * 9 + b] = 1.0;
                }
            }
        }
        out.push((
            format!("{}.weight", lp.param),
            c.weight.shape.clone(),
            c.weight.data.clone(),
        ));
        out.push((format!("{}.mask", lp.param), c.weight.shape.clone(), mask));
    }
    out
}

/// Writes [`pruned_tensors`] to a safetensors file (f32).
pub fn write_pruned(pruned: &Graph, path: &std::path::Path) -> std::io::Result<()> {
    let t = pruned_tensors(pruned);
    let refs: Vec<(&str, &[usize], &[f32])> = t
        .iter()
        .map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice()))
        .collect();
    crate::weights::safetensors::write(path, &refs)
}

/// One summary line per library for messages: `8 patterns: x.x/xxx/... ...`.
pub fn library_summary(masks: &[u16]) -> String {
    let mut s = format!("{} patterns:", masks.len());
    for &m in masks {
        let _ = write!(s, " {}", mask_str(m));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_model;
    use neulens_kernels::pattern::valid_mask;
    use std::path::Path;

    const HEAD: &str = "input: { channels: 6, height: 9, width: 11 }\nweights: { random: 3 }\n";

    fn load(text: &str) -> Graph {
        load_model(text, "specs/p.yaml", Path::new("."))
            .unwrap()
            .graph
    }

    fn errors(text: &str) -> Vec<crate::diag::Diagnostic> {
        load_model(text, "specs/p.yaml", Path::new("."))
            .expect_err("should fail")
            .items
    }

    fn conv<'a>(g: &'a Graph, name: &str) -> &'a crate::graph::ConvOp {
        match &g.nodes.iter().find(|n| n.name == name).unwrap().op {
            Op::Conv(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// Random weights as a tensor set: every kernel of `c_out × c_in`.
    fn rand_kernels(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n * 9)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn top4_projection_and_distillation() {
        let w = [0.1, -0.9, 0.0, 0.5, 0.01, 0.2, 0.3, 0.0, -0.6];
        // Centre forced, then |−0.9|, |−0.6|, 0.5.
        assert_eq!(top4_mask(&w), 1 << 4 | 1 << 1 | 1 << 8 | 1 << 3);
        // Projection equals the brute-force argmax over the library.
        let kernels = rand_kernels(300, 7);
        let lib = distil(kernels.chunks_exact(9), 8);
        assert_eq!(lib.len(), 8);
        assert!(lib.iter().all(|&m| valid_mask(m)));
        for k in kernels.chunks_exact(9) {
            let (pid, e) = project(k, &lib);
            let best = lib
                .iter()
                .map(|&m| {
                    (0..9)
                        .filter(|b| m >> b & 1 != 0)
                        .map(|b| (k[b] as f64).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(e, best);
            assert_eq!(masked_energy(k, lib[pid]), best);
        }
        // Frequencies: the most common top-4 mask comes first.
        let mut many = Vec::new();
        for _ in 0..5 {
            many.extend_from_slice(&w);
        }
        many.extend_from_slice(&kernels[..9]);
        assert_eq!(distil(many.chunks_exact(9), 2)[0], top4_mask(&w));
        // Fewer masks than K: padded with unused valid masks; all-zero kernels do not vote.
        let lib = distil([0.0f32; 18].chunks_exact(9), 3);
        assert_eq!(lib, ALL_MASKS[..3]);
    }

    #[test]
    fn invariants_of_a_pruned_model() {
        let text = format!(
            "{HEAD}prune: {{ patterns: 6, connectivity: 0.5 }}\nlayers:\n  - {{ name: c1, op: conv, out: 8, kernel: 3, pad: 1, prune: off }}\n  - {{ name: c2, op: conv, out: 10, kernel: 3, pad: 1, algo: pattern }}\n  - {{ name: c3, op: conv, out: 7, kernel: 3, pad: 1, algo: pattern, prune: {{ connectivity: 0.3 }} }}\n  - {{ name: c4, op: conv, out: 4, kernel: 1 }}\n  - {{ name: c5, op: conv, out: 4, kernel: 3, stride: 2, pad: 1, algo: pattern }}\n  - {{ name: c6, op: conv, out: 4, kernel: 3, stride: 3, pad: 1 }}\n"
        );
        let g = load(&text);
        assert!(conv(&g, "c1").prune.is_none());
        assert!(
            conv(&g, "c4").prune.is_none(),
            "1×1: the default does not apply"
        );
        let (p, report) = apply(&g);
        let mut distinct = std::collections::BTreeSet::new();
        for (name, c_in, c_out, rate) in [("c2", 8, 10, 0.5), ("c3", 10, 7, 0.3), ("c5", 4, 4, 0.5)]
        {
            let c = conv(&p, name);
            let a = c.prune.as_ref().unwrap().assigned.as_ref().unwrap();
            assert_eq!(c.algo, AlgoRequest::Pattern);
            let kept = a.assign.iter().filter(|&&x| x != PRUNED).count();
            assert_eq!(kept, c_out * kept_per_filter(rate, c_in), "{name}");
            for f in 0..c_out {
                let n = a.assign[f * c_in..(f + 1) * c_in]
                    .iter()
                    .filter(|&&x| x != PRUNED)
                    .count();
                assert_eq!(n, kept_per_filter(rate, c_in), "balanced per filter");
            }
            let orig = conv(&g, name);
            for (k, w) in c.weight.data.chunks_exact(9).enumerate() {
                let nz = w.iter().filter(|&&v| v != 0.0).count();
                if a.assign[k] == PRUNED {
                    assert_eq!(nz, 0);
                    continue;
                }
                // Exactly 4 nonzeros with the centre, equal to the original there, and the
                // mask is the brute-force best library pattern of the original kernel.
                assert_eq!(nz, 4);
                assert!(w[4] != 0.0);
                let m = a.masks[a.assign[k] as usize];
                distinct.insert(m);
                let o = &orig.weight.data[k * 9..k * 9 + 9];
                for b in 0..9 {
                    assert_eq!(w[b], if m >> b & 1 != 0 { o[b] } else { 0.0 });
                }
                let best = a
                    .masks
                    .iter()
                    .map(|&m| masked_energy(o, m))
                    .fold(0.0, f64::max);
                assert_eq!(masked_energy(o, m), best);
            }
        }
        assert!(distinct.len() <= 6, "{distinct:?}");
        assert_eq!(report.libraries.len(), 1);
        assert_eq!(report.libraries[0].1, ["c2", "c3", "c5"]);
        // c6 (stride 3) keeps its dense weights, with the reason.
        assert_eq!(conv(&p, "c6").weight, conv(&g, "c6").weight);
        let notes = report.notes().join("\n");
        assert!(
            notes.contains("`c6`: kept dense: the pattern kernel needs stride 1 or 2 (found 3×3)"),
            "{notes}"
        );
        assert!(
            notes.contains("pattern pruning `c2`: 40 of 80 kernels kept"),
            "{notes}"
        );
    }

    #[test]
    fn weights_that_follow_a_library_are_kept_exactly() {
        let text = format!(
            "{HEAD}layers:\n  - {{ name: a, op: conv, out: 12, kernel: 3, pad: 1, algo: pattern, prune: {{ patterns: 4, connectivity: 0.5 }} }}\n  - {{ name: b, op: conv, out: 5, kernel: 3, pad: 1, algo: pattern, prune: {{ patterns: 4, connectivity: 0.5 }} }}\n"
        );
        let g = load(&text);
        let (p1, r1) = apply(&g);
        // "Fine-tune" (scale the kept weights) and prune again: same masks, same weights.
        let mut g2 = p1.clone();
        for n in &mut g2.nodes {
            if let Op::Conv(c) = &mut n.op {
                for w in &mut c.weight.data {
                    *w *= 1.5;
                }
                let lp = c.prune.as_mut().unwrap();
                lp.assigned = None;
                c.algo = AlgoRequest::Pattern;
            }
        }
        let (p2, r2) = apply(&g2);
        for name in ["a", "b"] {
            let (c1, c2, cg2) = (conv(&p1, name), conv(&p2, name), conv(&g2, name));
            assert_eq!(c2.weight, cg2.weight, "{name}: kept exactly");
            let (a1, a2) = (
                c1.prune.as_ref().unwrap().assigned.as_ref().unwrap(),
                c2.prune.as_ref().unwrap().assigned.as_ref().unwrap(),
            );
            let masks = |a: &Assignment| -> Vec<u16> {
                a.assign
                    .iter()
                    .map(|&x| if x == PRUNED { 0 } else { a.masks[x as usize] })
                    .collect()
            };
            assert_eq!(masks(a1), masks(a2));
        }
        assert_eq!(r1.libraries[0].0.len(), 4);
        assert!(
            r2.lines.iter().all(|l| l.contains("kept exactly")),
            "{:?}",
            r2.lines
        );
        assert!(r2.warnings.is_empty());
        assert!(!r1.warnings.is_empty() || r1.lines.iter().all(|l| !l.contains("kept exactly")));
    }

    #[test]
    fn explicit_library_and_write_back() {
        let text = format!(
            "{HEAD}layers:\n  - {{ name: a, op: conv, out: 3, kernel: 3, pad: 1, algo: pattern, prune: {{ library: [[0,1,0, 1,1,1, 0,0,0], [[0,0,0],[0,1,1],[0,1,1]]], connectivity: 1 }} }}\n"
        );
        let g = load(&text);
        let c = conv(&g, "a");
        assert_eq!(c.prune.as_ref().unwrap().config.patterns, 2);
        let (p, _) = apply(&g);
        let a = conv(&p, "a")
            .prune
            .as_ref()
            .unwrap()
            .assigned
            .clone()
            .unwrap();
        assert_eq!(a.masks, [0x03a, 0x1b0]);
        assert!(
            a.assign.iter().all(|&x| x != PRUNED),
            "connectivity 1 keeps every kernel"
        );
        let t = pruned_tensors(&p);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].0.as_str(), t[1].0.as_str()), ("a.weight", "a.mask"));
        assert_eq!(t[1].1, [3, 6, 3, 3]);
        for (w, m) in t[0].2.iter().zip(&t[1].2) {
            assert!(*m == 1.0 || *w == 0.0);
        }
        assert_eq!(t[1].2.iter().filter(|&&m| m == 1.0).count(), 3 * 6 * 4);
        let dir = std::env::temp_dir().join(format!("neulens-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_pruned(&p, &dir.join("p.safetensors")).unwrap();
        let f =
            crate::weights::safetensors::SafeTensorsFile::open(&dir.join("p.safetensors")).unwrap();
        assert_eq!(f.names(), ["a.mask", "a.weight"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn auto_decides_by_cost_and_never_prunes_and_winograds() {
        // A wide 3×3 conv at connectivity 0.1 is far cheaper pruned; at 1.0 (density 4/9 only)
        // against Winograd it is not: C3's shape, 256→256 on 14×14, est. pattern 601 µs against
        // F(4,3) 505 (measured F(4,3) 489–523 µs; the pattern kernel 279–286 at density 2/9).
        let text = "input: { channels: 256, height: 14, width: 14 }\nweights: { random: 1 }\nlayers:\n  - { name: s, op: conv, out: 256, kernel: 3, pad: 1, prune: { connectivity: 0.1 } }\n  - { name: d, op: conv, out: 256, kernel: 3, pad: 1, prune: { connectivity: 1.0 } }\n";
        let (p, r) = apply(&load(text));
        assert!(
            conv(&p, "s").prune.as_ref().unwrap().assigned.is_some(),
            "{:?}",
            r.lines
        );
        let d = conv(&p, "d");
        assert!(
            d.prune.as_ref().unwrap().assigned.is_none(),
            "{:?}",
            r.lines
        );
        assert_eq!(d.algo, AlgoRequest::Auto);
        let plan = crate::plan::plan(&crate::transform::lower(&p)).unwrap();
        let st = |n: &str| plan.steps.iter().find(|s| s.name == n).unwrap();
        assert_eq!(st("s").algo, "pattern");
        assert!(st("s").why.contains("est. pattern"), "{}", st("s").why);
        assert!(st("d").algo.starts_with("winograd"), "{}", st("d").algo);
        assert!(
            st("d").why.starts_with("kept dense: est. pattern"),
            "{}",
            st("d").why
        );
    }

    #[test]
    fn spec_errors_point_at_the_value() {
        let cases = [
            (
                "prune: { patterns: 0 }",
                "zero size: `patterns` must be at least 1",
            ),
            ("prune: { patterns: 57 }", "`patterns` is out of range"),
            (
                "prune: { connectivity: 0 }",
                "`connectivity` must be a fraction",
            ),
            (
                "prune: { connectivity: 1.5 }",
                "`connectivity` must be a fraction",
            ),
            (
                "prune: { conectivity: 0.5 }",
                "unknown field `conectivity` in `prune`, did you mean `connectivity`?",
            ),
            (
                "prune: { library: [[1,1,1, 1,1,0, 0,0,0]] }",
                "a pattern mask must keep 4 taps including the centre",
            ),
            (
                "prune: { library: [[1,1,1, 1,0,0, 0,0,0]] }",
                "a pattern mask must keep 4 taps including the centre",
            ),
            (
                "prune: { library: [[0,1,0, 1,1,1, 0,0,0], [0,1,0, 1,1,1, 0,0,0]] }",
                "duplicate mask in `library`",
            ),
            (
                "prune: { library: [[0,1,0, 1,1,1, 0,0]] }",
                "wrong type for `library`",
            ),
            (
                "prune: { patterns: 3, library: [[0,1,0, 1,1,1, 0,0,0]] }",
                "`library` lists a different number of masks than `patterns`",
            ),
            ("prune: maybe", "wrong type for `prune`"),
        ];
        for (field, msg) in cases {
            let text =
                format!("{HEAD}{field}\nlayers:\n  - {{ name: a, op: conv, out: 3, kernel: 3 }}\n");
            let e = errors(&text);
            assert_eq!(e.len(), 1, "{field}: {e:?}");
            assert!(e[0].message.starts_with(msg), "{field}: {}", e[0]);
            assert_eq!(e[0].loc.line, 3, "{field}: {}", e[0]);
            assert!(e[0].loc.column >= 8, "{field}: {}", e[0]);
        }
        // Layer-level: prune on a 5×5 or grouped conv, algo: pattern on a stride-3 conv.
        let e = errors(&format!("{HEAD}layers:\n  - {{ name: a, op: conv, out: 3, kernel: 5, prune: {{ patterns: 4 }} }}\n"));
        assert_eq!(e[0].to_string(), "specs/p.yaml:4:52: error: layer `a`: `prune` needs a 3×3 conv with groups 1 (found kernel 5×5) (expected kernel [3, 3] and groups 1, or no `prune` on this layer, found kernel 5×5)");
        let e = errors(&format!("{HEAD}layers:\n  - {{ name: g, op: conv, out: 6, kernel: 3, groups: 6, prune: {{}} }}\n"));
        assert!(e[0].message.contains("(found groups 6)"), "{}", e[0]);
        let e = errors(&format!("{HEAD}layers:\n  - {{ name: s, op: conv, out: 3, kernel: 3, stride: 3, algo: pattern }}\n"));
        assert!(e[0].to_string().starts_with("specs/p.yaml:4:62: error: layer `s`: pattern pruning needs a 3×3 conv with stride 1 or 2 and groups 1 (found stride 3×3)"), "{}", e[0]);
        // The model-wide default skips what it cannot prune; `off` wins over it.
        let g = load(&format!("{HEAD}prune: {{ patterns: 4 }}\nlayers:\n  - {{ name: a, op: conv, out: 6, kernel: 5, pad: 2 }}\n  - {{ name: b, op: conv, out: 6, kernel: 3, groups: 6 }}\n"));
        assert!(conv(&g, "a").prune.is_none() && conv(&g, "b").prune.is_none());
    }
}
