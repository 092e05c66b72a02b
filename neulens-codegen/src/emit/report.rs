//! The build report: per layer the op, output shape, algorithm, MACs, weight bytes and arena
//! placement, then totals, as aligned text (written to OUT_DIR and shown by `Built::report`).

use crate::plan::{Plan, Storage};
use std::fmt::Write;

/// Renders the plan as a text table.
pub fn text(plan: &Plan, spec_label: &str, notes: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "neulens build report: model `{}` from {spec_label}",
        plan.name
    );
    let _ = writeln!(s, "input {} → output {}", plan.input, plan.output);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>3}  {:<20} {:<16} {:<14} {:<11} {:>14} {:>12}  storage",
        "#", "layer", "op", "output", "algorithm", "MACs", "weights B"
    );
    for (i, st) in plan.steps.iter().enumerate() {
        let storage = match st.output.storage {
            Storage::Input => "input (view)".to_string(),
            Storage::Output => "output".to_string(),
            Storage::Arena(_) => format!(
                "arena @{} B, {} B{}",
                st.output.start() * 4,
                st.output.len * 4,
                if st.in_place { ", in place" } else { "" }
            ),
        };
        let _ = writeln!(
            s,
            "{:>3}  {:<20} {:<16} {:<14} {:<11} {:>14} {:>12}  {}",
            i + 1,
            st.name,
            st.op,
            st.shape.to_string(),
            st.algo,
            group(st.macs),
            group(st.weight_bytes as u64),
            storage
        );
    }
    let whys: Vec<_> = plan.steps.iter().filter(|st| !st.why.is_empty()).collect();
    if !whys.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "algorithm choices:");
        for st in whys {
            let _ = writeln!(s, "  {:<20} {}: {}", st.name, st.algo, st.why);
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "total MACs     {}", group(plan.macs));
    let _ = writeln!(
        s,
        "weights        {} bytes",
        group(plan.weight_bytes() as u64)
    );
    let budget = match plan.arena_budget {
        Some(b) => format!(" (budget {} bytes)", group(b)),
        None => String::new(),
    };
    let _ = writeln!(
        s,
        "arena          {} bytes{budget}",
        group(plan.arena_bytes() as u64)
    );
    let _ = writeln!(
        s,
        "input / output {} / {} bytes (caller-owned)",
        group(plan.input.len() as u64 * 4),
        group(plan.output.len() as u64 * 4)
    );
    for n in notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The micro-flow section of the report: grid and tile geometry, channels and MACs per level,
/// the gate, the algorithms the tile plans chose, and the adaptive arena.
pub fn adaptive_text(a: &crate::plan::adaptive::AdaptivePlan) -> String {
    let mf = &a.mf;
    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "micro-flows: {k}×{k} tiles up to `{}` (stitched map {}), {} width levels, {} tile classes (code paths per level)",
        mf.split_name,
        mf.split_shape,
        mf.num_levels(),
        mf.classes.len(),
        k = mf.grid
    );
    for (i, t) in mf.tiles.iter().enumerate() {
        let _ = writeln!(
            s,
            "  tile {i:>2}: image rows {:>4}..{:<4} cols {:>4}..{:<4} ({}×{}) → rows {}..{} cols {}..{}, class {}",
            t.in_rows.start,
            t.in_rows.end,
            t.in_cols.start,
            t.in_cols.end,
            t.in_rows.len(),
            t.in_cols.len(),
            t.out_rows.start,
            t.out_rows.end,
            t.out_cols.start,
            t.out_cols.end,
            t.class
        );
    }
    if mf.grid > 1 {
        let (t0, t1) = (&mf.tiles[0], &mf.tiles[1]);
        let _ = writeln!(
            s,
            "  overlap between neighbouring tiles: {} columns of the image",
            t0.in_cols.end.saturating_sub(t1.in_cols.start)
        );
    }
    let dense = mf.dense_macs;
    for (l, f) in mf.levels.iter().enumerate() {
        let flows: u64 = mf.tile_macs.iter().map(|t| t[l]).sum();
        let total = flows + mf.tail_macs;
        let ch: Vec<String> = mf.level_channels[l]
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        let _ = writeln!(
            s,
            "  level {l} ({f}): micro-flows {} + tail {} = {} MACs ({:.1} % of dense); channels: {}",
            group(flows),
            group(mf.tail_macs),
            group(total),
            100.0 * total as f64 / dense.max(1) as f64,
            ch.join(", ")
        );
    }
    let gate = match &mf.gate {
        crate::microflow::GateKind::Learned => format!(
            "learned (conv + max-pool + dense), {} MACs over all tiles",
            group(mf.gate_macs.iter().sum())
        ),
        crate::microflow::GateKind::Energy(t) => {
            format!("energy (std of the tile input) with thresholds {t:?}")
        }
        crate::microflow::GateKind::Fixed(l) => format!("fixed level {l}"),
    };
    let _ = writeln!(
        s,
        "  gate: {gate}; controller θ_f = {}, Δw = {}",
        mf.theta, mf.window
    );
    if mf.level_channels.windows(2).any(|w| w[0] == w[1]) {
        let _ = writeln!(
            s,
            "  warning: some width levels slice no supernet layer (the split layer and what feeds it through adds, pools and batchnorms stay full width: split after a conv)"
        );
    }
    for (l, lv) in a.flows.iter().enumerate() {
        for (c, p) in lv.iter().enumerate() {
            let algos: Vec<String> = p
                .steps
                .iter()
                .filter(|st| st.op == "conv")
                .map(|st| format!("{} {}", st.name, st.algo))
                .collect();
            let _ = writeln!(s, "  level {l} class {c}: {}", algos.join(", "));
        }
    }
    let _ = writeln!(
        s,
        "adaptive arena {} bytes (stitched map {} B; tile buffers, micro-flow and gate scratch, or the tail after it)",
        group(a.arena_len as u64 * 4),
        group(mf.split_shape.len() as u64 * 4)
    );
    s
}

/// 1234567 → "1,234,567".
pub fn group(v: u64) -> String {
    let d = v.to_string();
    let mut out = String::new();
    for (i, ch) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::group(0), "0");
        assert_eq!(super::group(999), "999");
        assert_eq!(super::group(1000), "1,000");
        assert_eq!(super::group(1234567), "1,234,567");
    }
}
