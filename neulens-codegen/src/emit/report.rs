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
