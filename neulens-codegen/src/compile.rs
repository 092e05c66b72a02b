//! The back half of the pipeline as one call, shared by the build.rs API and the macro:
//! validated graph → transforms → plan → emitted tokens, weight blob and report.

use crate::diag::Diagnostics;
use crate::emit::{self, EmitOptions, Emitted};
use crate::load::Loaded;
use crate::plan::adaptive::{plan_adaptive, AdaptivePlan};
use crate::plan::{self, Blob, Plan};

/// Everything one compilation produces.
pub struct Compiled {
    pub plan: Plan,
    /// Adaptive (micro-flow) inference, when the spec has a `microflows:` section.
    pub adaptive: Option<AdaptivePlan>,
    pub emitted: Emitted,
    /// The readable build report.
    pub report: String,
    /// The graph after pattern pruning (before batchnorm folding): what the reference
    /// interpreter should run, and what `prune::write_pruned` writes back.
    pub pruned: crate::graph::Graph,
    /// Pattern-pruning warnings (also in the report).
    pub warnings: Vec<String>,
}

/// Lowers, plans and emits a loaded model. `spec_label` names the spec in docs and the report.
pub fn compile(
    loaded: &Loaded,
    spec_label: &str,
    opts: &EmitOptions,
) -> Result<Compiled, Diagnostics> {
    let (pruned, prune_report) = crate::prune::apply(&loaded.graph);
    let (lowered, lower_report) = crate::transform::lower_with_report(&pruned);
    let mf = crate::microflow::build(&pruned);
    let mut blob = Blob::default();
    let dense = plan::plan_shared(&lowered, &mut blob);
    // Report the errors of both halves together.
    let (mut plan, adaptive) = match (dense, mf) {
        (Ok(p), Ok(None)) => (p, None),
        (Ok(p), Ok(Some(mf))) => (p, Some(plan_adaptive(&pruned, mf, &mut blob)?)),
        (Err(mut d), Err(e)) => {
            d.extend(e);
            return Err(d);
        }
        (Err(d), _) | (_, Err(d)) => return Err(d),
    };
    plan.weights = blob.data;
    let emitted = emit::emit(&plan, adaptive.as_ref(), opts, spec_label);
    let mut notes = loaded.notes.clone();
    notes.extend(prune_report.notes());
    for (bn, conv) in &lower_report.folded {
        notes.push(format!("batchnorm `{bn}` folded into conv `{conv}`"));
    }
    for bn in &lower_report.affine {
        notes.push(format!(
            "batchnorm `{bn}` kept as a per-channel affine (not after a foldable conv)"
        ));
    }
    let mut report = emit::report::text(&plan, spec_label, &notes);
    if let Some(a) = &adaptive {
        report.push_str(&emit::report::adaptive_text(a));
    }
    Ok(Compiled {
        plan,
        adaptive,
        emitted,
        report,
        pruned,
        warnings: prune_report.warnings,
    })
}
