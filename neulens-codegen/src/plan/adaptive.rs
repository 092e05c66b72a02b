//! Planning of adaptive (micro-flow) inference: every micro-flow, gate and the tail is an
//! ordinary `Plan` over the shared weight blob; this module lays out the one arena they all run
//! in and the tile windows (crop from the image, paste into the stitched map) as constants.
//!
//! Arena layout (f32 offsets, each region 64-byte aligned):
//! `[stitched feature map | tile input | tile output | gate logits | sub-plan arena]`, where the
//! sub-plan arena is shared by the micro-flows and the gate (they run one at a time); the tail
//! runs after every tile is stitched, so its arena reuses everything after the stitched map.

use super::{plan_shared, Blob, Plan};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::Graph;
use crate::microflow::Microflows;
use neulens_kernels::eltwise::Window;

/// The compiled adaptive inference of a model.
#[derive(Debug)]
pub struct AdaptivePlan {
    pub mf: Microflows,
    /// `[level][class]`.
    pub flows: Vec<Vec<Plan>>,
    /// `[class]` (learned gate only).
    pub gates: Vec<Plan>,
    pub tail: Plan,
    /// Per tile: the image window copied into the tile input buffer.
    pub crop: Vec<Window>,
    /// Per tile: the tile output copied into the stitched feature map.
    pub paste: Vec<Window>,
    pub stitched_off: usize,
    pub tile_in_off: usize,
    pub tile_out_off: usize,
    pub logits_off: usize,
    pub sub_off: usize,
    pub tail_off: usize,
    /// Total arena length (f32).
    pub arena_len: usize,
}

fn align(n: usize) -> usize {
    n.div_ceil(super::WEIGHT_ALIGN) * super::WEIGHT_ALIGN
}

/// Lowers and plans every graph of `mf` into `blob`.
pub fn plan_adaptive(
    g: &Graph,
    mf: Microflows,
    blob: &mut Blob,
) -> Result<AdaptivePlan, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut plan_one = |gr: &Graph, diags: &mut Diagnostics| -> Option<Plan> {
        let (lowered, _) = crate::transform::lower_with_report(gr);
        // The micro-flow stage builds these graphs; a malformed one is a compiler bug, and the
        // kernels must never see it.
        if let Err(e) = crate::reference::check(&lowered) {
            diags.push(Diagnostic::new(
                &g.file,
                gr.nodes.last().map_or(g.nodes[0].loc, |n| n.loc),
                format!(
                    "internal error: micro-flow graph `{}` is malformed: {e}",
                    gr.name
                ),
            ));
            return None;
        }
        match plan_shared(&lowered, blob) {
            Ok(p) => Some(p),
            Err(d) => {
                diags.extend(d);
                None
            }
        }
    };
    let flows: Vec<Vec<Option<Plan>>> = mf
        .flows
        .iter()
        .map(|lv| lv.iter().map(|gr| plan_one(gr, &mut diags)).collect())
        .collect();
    let gates: Vec<Option<Plan>> = mf.gates.iter().map(|gr| plan_one(gr, &mut diags)).collect();
    let tail = plan_one(&mf.tail, &mut diags);
    let (Some(tail), true, true) = (
        tail,
        flows.iter().flatten().all(Option::is_some),
        gates.iter().all(Option::is_some),
    ) else {
        return Err(diags);
    };
    let flows: Vec<Vec<Plan>> = flows
        .into_iter()
        .map(|lv| lv.into_iter().flatten().collect())
        .collect();
    let gates: Vec<Plan> = gates.into_iter().flatten().collect();

    let img = mf.image;
    let s = mf.split_shape;
    let tile_in = mf.classes.iter().map(|c| c.input.len()).max().unwrap_or(0);
    let tile_out = s.c * (s.h / mf.grid) * (s.w / mf.grid);
    let sub = flows
        .iter()
        .flatten()
        .chain(&gates)
        .map(|p| p.arena_len)
        .max()
        .unwrap_or(0);
    let stitched_off = 0;
    let tile_in_off = align(stitched_off + s.len());
    let tile_out_off = align(tile_in_off + tile_in);
    let logits_off = align(tile_out_off + tile_out);
    let sub_off = align(logits_off + mf.num_levels());
    let tail_off = tile_in_off;
    // One worker's region ends aligned (the emitter's `WORKER_LEN`), so the length here is the
    // generated `ADAPTIVE_ARENA_LEN` exactly.
    let arena_len = align(sub_off + sub).max(tail_off + tail.arena_len);
    let crop = mf
        .tiles
        .iter()
        .map(|t| Window {
            c: img.c,
            h: t.in_rows.len(),
            w: t.in_cols.len(),
            src_h: img.h,
            src_w: img.w,
            src_y: t.in_rows.start,
            src_x: t.in_cols.start,
            dst_h: t.in_rows.len(),
            dst_w: t.in_cols.len(),
            dst_y: 0,
            dst_x: 0,
        })
        .collect();
    let paste = mf
        .tiles
        .iter()
        .map(|t| Window {
            c: s.c,
            h: t.out_rows.len(),
            w: t.out_cols.len(),
            src_h: t.out_rows.len(),
            src_w: t.out_cols.len(),
            src_y: 0,
            src_x: 0,
            dst_h: s.h,
            dst_w: s.w,
            dst_y: t.out_rows.start,
            dst_x: t.out_cols.start,
        })
        .collect();
    if let Some((budget, loc)) = g.arena_budget {
        let need = arena_len as u64 * 4;
        if need > budget {
            diags.push(
                Diagnostic::new(
                    &g.file,
                    loc,
                    "adaptive (micro-flow) inference needs a larger arena than the budget allows",
                )
                .expected(format!("at most {budget} bytes"))
                .found(format!(
                    "{need} bytes (stitched map {} B, tile buffers {} B, largest micro-flow or gate {} B, tail {} B)",
                    s.len() * 4,
                    (tile_in + tile_out) * 4,
                    sub * 4,
                    tail.arena_len * 4
                )),
            );
        }
    }
    diags.finish(AdaptivePlan {
        mf,
        flows,
        gates,
        tail,
        crop,
        paste,
        stitched_off,
        tile_in_off,
        tile_out_off,
        logits_off,
        sub_off,
        tail_off,
        arena_len,
    })
}
