//! Parsing of `prune:` values (the model-wide default and a conv's own): `off`, or
//! `{ patterns, connectivity, library, warn_loss }` with `library: auto` or a list of 3×3 masks.
//! A child of `parse` so that it reports through the same context.

use super::super::yaml::{Node, Value};
use super::{backticked, Cx};
use crate::prune::{Library, PruneFields, PruneSetting};
use crate::spec::suggest::did_you_mean;
use neulens_kernels::pattern::{valid_mask, ALL_MASKS, CENTRE};

/// Fields of a `prune:` mapping.
const PRUNE_KEYS: &[&str] = &["patterns", "connectivity", "library", "warn_loss"];

impl Cx<'_> {
    /// A `prune:` value; `None` after reporting an error.
    pub(super) fn prune_setting(&mut self, node: &Node) -> Option<PruneSetting> {
        let expected = "`off` or { patterns: K, connectivity: R, library: auto | [masks] }";
        let entries = match &node.value {
            Value::Str(s) if s == "off" => return Some(PruneSetting::Off),
            Value::Bool(false) => return Some(PruneSetting::Off),
            Value::Map(entries) => entries,
            _ => {
                self.wrong_type("prune", node, expected);
                return None;
            }
        };
        let mut f = PruneFields::default();
        let mut ok = true;
        let mut library_loc = None;
        for (k, v) in entries {
            match k.as_str() {
                Some("patterns") => match self.usize("patterns", v, 1, ALL_MASKS.len() as i128) {
                    Some(p) => f.patterns = Some(p),
                    None => ok = false,
                },
                Some("connectivity") => match self.fraction("connectivity", v, false) {
                    Some(c) => f.connectivity = Some(c),
                    None => ok = false,
                },
                Some("warn_loss") => match self.fraction("warn_loss", v, true) {
                    Some(c) => f.warn_loss = Some(c),
                    None => ok = false,
                },
                Some("library") => {
                    library_loc = Some(v.loc);
                    match self.library(v) {
                        Some(l) => f.library = Some(l),
                        None => ok = false,
                    }
                }
                other => {
                    let name = other.map_or_else(|| k.value.kind(), str::to_string);
                    let hint = did_you_mean(&name, PRUNE_KEYS.iter().copied());
                    let d = self
                        .diag(k.loc, format!("unknown field `{name}` in `prune`{hint}"))
                        .expected(format!("one of {}", backticked(PRUNE_KEYS)));
                    self.push(d);
                    ok = false;
                }
            }
        }
        if let (Some(k), Some(Library::Masks(m)), Some(loc)) = (f.patterns, &f.library, library_loc)
        {
            if m.len() != k {
                let d = self
                    .diag(
                        loc,
                        "`library` lists a different number of masks than `patterns`",
                    )
                    .expected(format!("{k} masks"))
                    .found(format!("{} masks", m.len()));
                self.push(d);
                ok = false;
            }
        }
        ok.then_some(PruneSetting::On(f))
    }

    /// A number in (0, 1] (or [0, 1] with `zero_ok`).
    fn fraction(&mut self, key: &str, n: &Node, zero_ok: bool) -> Option<f64> {
        let v = match n.value {
            Value::Float(x) => x,
            Value::Int(i) => i as f64,
            _ => {
                self.wrong_type(key, n, "a number");
                return None;
            }
        };
        let ok = v.is_finite() && v <= 1.0 && (v > 0.0 || (zero_ok && v == 0.0));
        if !ok {
            let range = if zero_ok { "0 ≤" } else { "0 <" };
            let d = self
                .diag(n.loc, format!("`{key}` must be a fraction"))
                .expected(format!("{range} {key} ≤ 1"))
                .found(v.to_string());
            self.push(d);
            return None;
        }
        Some(v)
    }

    /// `auto`, or a list of masks: each 9 zeros and ones (row-major) or 3 rows of 3.
    fn library(&mut self, n: &Node) -> Option<Library> {
        let expected = "`auto` or a list of 3×3 masks, e.g. [[0,1,0, 1,1,0, 0,0,0]]";
        let items = match &n.value {
            Value::Str(s) if s == "auto" => return Some(Library::Auto),
            Value::Seq(items) if !items.is_empty() => items,
            _ => {
                self.wrong_type("library", n, expected);
                return None;
            }
        };
        let mut masks: Vec<u16> = Vec::new();
        let mut ok = true;
        for it in items {
            let Some(m) = self.mask(it) else {
                ok = false;
                continue;
            };
            if masks.contains(&m) {
                let d = self
                    .diag(it.loc, "duplicate mask in `library`")
                    .expected("distinct masks");
                self.push(d);
                ok = false;
            }
            masks.push(m);
        }
        ok.then_some(Library::Masks(masks))
    }

    /// One mask: 9 bits, 4 of them set, the centre among them.
    fn mask(&mut self, n: &Node) -> Option<u16> {
        let flat: Option<Vec<&Node>> = match &n.value {
            Value::Seq(items) if items.len() == 9 => Some(items.iter().collect()),
            Value::Seq(rows) if rows.len() == 3 => rows
                .iter()
                .map(|r| match &r.value {
                    Value::Seq(c) if c.len() == 3 => Some(c.iter().collect::<Vec<_>>()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect()),
            _ => None,
        };
        let bits: Option<Vec<bool>> = flat.and_then(|f| {
            f.iter()
                .map(|x| match x.value {
                    Value::Int(0) => Some(false),
                    Value::Int(1) => Some(true),
                    _ => None,
                })
                .collect()
        });
        let Some(bits) = bits else {
            self.wrong_type(
                "library",
                n,
                "a mask of 9 zeros and ones (row-major), or 3 rows of 3",
            );
            return None;
        };
        let m = bits
            .iter()
            .enumerate()
            .fold(0u16, |m, (i, &b)| if b { m | 1 << i } else { m });
        if !valid_mask(m) {
            let d = self
                .diag(
                    n.loc,
                    "a pattern mask must keep 4 taps including the centre",
                )
                .expected("4 ones, the centre (row 2, column 2) among them")
                .found(format!(
                    "{} ones{}",
                    m.count_ones(),
                    if m & CENTRE == 0 { ", centre 0" } else { "" }
                ));
            self.push(d);
            return None;
        }
        Some(m)
    }
}
