//! Resolution of the `prune:` settings of one conv against the model-wide default, with the
//! errors that need the layer's shape (graph stage): pruning or `algo: pattern` on a conv the
//! pattern kernel cannot run, and a library whose size disagrees with `patterns`.

use super::{merge, LayerPrune, Library, PruneConfig, PruneSetting};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::AlgoRequest;
use crate::spec::{ConvSpec, LayerSpec, Located};

/// The layer's pruning: `Some(None)` not pruned, `Some(Some(..))` pruned (subject to the
/// decision in `apply`), `None` after reporting an error.
pub fn resolve(
    file: &str,
    diags: &mut Diagnostics,
    default: Option<&Located<PruneSetting>>,
    l: &LayerSpec,
    c: &ConvSpec,
) -> Option<Option<LayerPrune>> {
    let shape_issue = if c.kernel != [3, 3] {
        Some(format!("kernel {}×{}", c.kernel[0], c.kernel[1]))
    } else if c.groups != 1 {
        Some(format!("groups {}", c.groups))
    } else {
        None
    };
    let explicit = matches!(
        &c.prune,
        Some(Located {
            value: PruneSetting::On(_),
            ..
        })
    );
    if c.algo == AlgoRequest::Pattern {
        let found = shape_issue.clone().or_else(|| {
            (c.stride != [1, 1] && c.stride != [2, 2])
                .then(|| format!("stride {}×{}", c.stride[0], c.stride[1]))
        });
        if let Some(found) = found {
            diags.push(
                Diagnostic::new(
                    file,
                    l.loc_of("algo"),
                    format!(
                        "pattern pruning needs a 3×3 conv with stride 1 or 2 and groups 1 (found {found})"
                    ),
                )
                .layer(&l.name)
                .expected("kernel [3, 3], stride 1 or 2, groups 1, or another `algo`")
                .found(found),
            );
            return None;
        }
    }
    if explicit {
        if let Some(found) = &shape_issue {
            diags.push(
                Diagnostic::new(
                    file,
                    l.loc_of("prune"),
                    format!("`prune` needs a 3×3 conv with groups 1 (found {found})"),
                )
                .layer(&l.name)
                .expected("kernel [3, 3] and groups 1, or no `prune` on this layer")
                .found(found.clone()),
            );
            return None;
        }
    }
    if shape_issue.is_some() {
        // The model-wide default only applies to convs the pattern kernel can take.
        return Some(None);
    }
    let (config, loc) = match merge(
        default.map(|d| &d.value),
        c.prune.as_ref().map(|p| &p.value),
    ) {
        Some(cfg) => (cfg, c.prune.as_ref().or(default).map_or(l.loc, |p| p.loc)),
        None if c.algo == AlgoRequest::Pattern => (
            merge(None, Some(&PruneSetting::On(Default::default())))?,
            l.loc_of("algo"),
        ),
        None => return Some(None),
    };
    if let PruneConfig {
        patterns,
        library: Library::Masks(m),
        ..
    } = &config
    {
        if m.len() != *patterns {
            diags.push(
                Diagnostic::new(
                    file,
                    loc,
                    "`library` and `patterns` disagree on the library size",
                )
                .layer(&l.name)
                .expected(format!("{patterns} masks"))
                .found(format!("{} masks", m.len())),
            );
            return None;
        }
    }
    Some(Some(LayerPrune {
        config,
        param: l.param.clone(),
        loc,
        assigned: None,
        why: String::new(),
    }))
}
