//! Shared by the firmware and the host reference: the model, the test input baked into flash and
//! the report lines that scripts/cross-test.sh compares between the Cortex-M4 and the host.
#![no_std]

use core::fmt::{self, Write};

/// ResNet-8 compiled from `specs/resnet8.yaml` by build.rs (without std, `infer` runs the ISA
/// enabled at compile time: scalar on thumbv7em).
pub mod resnet8 {
    neulens::include_model!("resnet8");
}

/// A micro-flow model on the same input (`specs/microflow_tiny.yaml`): adaptive inference with a
/// learned gate and a budget, without std.
pub mod tiles {
    neulens::include_model!("microflow_tiny");
}

/// Where the model comes from (printed in the report).
pub const SPEC: &str = "specs/resnet8.yaml";

/// The test input, computed at compile time and placed in `.rodata` (flash on the board).
pub static INPUT: [f32; resnet8::INPUT_LEN] = make_input();

/// A deterministic, image-like CHW input: a horizontal gradient plus a little texture (the formula
/// of `examples/src/main.rs`).
const fn make_input() -> [f32; resnet8::INPUT_LEN] {
    let [_, h, w] = resnet8::INPUT_SHAPE;
    let mut out = [0.0; resnet8::INPUT_LEN];
    let mut i = 0;
    while i < out.len() {
        let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
        out[i] =
            ((x as f32 / w as f32) - 0.5) + 0.3 * ((y * 7 + x * 3 + ch * 11) % 17) as f32 / 17.0;
        i += 1;
    }
    out
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Writes the report that must be identical on the board and on the host: model, ISA, input
/// checksum, predicted class, outputs (5 decimals and raw bits) and arena size.
pub fn report<W: Write>(w: &mut W, isa: neulens::Isa, output: &[f32]) -> fmt::Result {
    let [c, h, wd] = resnet8::INPUT_SHAPE;
    writeln!(w, "model {} ({SPEC})", resnet8::NAME)?;
    writeln!(w, "isa {}", isa.name())?;
    let sum: f32 = INPUT.iter().sum();
    writeln!(w, "input {c}x{h}x{wd} sum {sum:.5}")?;
    writeln!(w, "class {}", argmax(output))?;
    for (i, v) in output.iter().enumerate() {
        writeln!(w, "output[{i}] {v:.5} {:08x}", v.to_bits())?;
    }
    writeln!(
        w,
        "arena {} bytes ({} f32)",
        resnet8::ARENA_BYTES,
        resnet8::ARENA_LEN
    )?;
    writeln!(w, "weights {} bytes", resnet8::WEIGHTS_BYTES)
}

/// A hash of the raw bits of the last layer still in the arena (the pooled features before the
/// classifier): compared too, it tells whether the board and the host part before the head.
pub fn features_line<W: Write>(w: &mut W, arena: &[f32]) -> fmt::Result {
    let Some((layer, off)) = resnet8::LAYERS
        .iter()
        .rev()
        .find_map(|l| l.arena_offset.map(|o| (l, o)))
    else {
        return Ok(());
    };
    let [c, h, wd] = layer.shape;
    let mut hash: u32 = 0x811c_9dc5;
    for v in &arena[off..off + c * h * wd] {
        hash = (hash ^ v.to_bits()).wrapping_mul(0x0100_0193);
    }
    writeln!(w, "features {} fnv {hash:08x}", layer.name)
}

/// Runs `tiles::infer_adaptive` under the gate and under a budget of 30 % of the dense MACs, and writes
/// the levels, MACs and outputs (to the bit) of each: identical on the board and on the host.
pub fn adaptive_report<W: Write>(w: &mut W, arena: &mut tiles::AdaptiveArena) -> fmt::Result {
    use neulens::{Budget, Policy};
    let input: &[f32; tiles::INPUT_LEN] = &INPUT;
    for (name, policy) in [
        ("gate", Policy::Gate),
        ("budget 0.3", Policy::Budget(Budget::Fraction(0.3))),
    ] {
        let mut out = [0.0f32; tiles::OUTPUT_LEN];
        let r = tiles::infer_adaptive(input, arena, &mut out, policy);
        writeln!(
            w,
            "adaptive {} ({name}): levels {:?}, {} of {} MACs, within budget {}, class {}",
            tiles::NAME,
            r.levels,
            r.total_macs,
            tiles::MACS,
            r.within_budget,
            argmax(&out)
        )?;
        let mut hash: u32 = 0x811c_9dc5;
        for v in &out {
            hash = (hash ^ v.to_bits()).wrapping_mul(0x0100_0193);
        }
        writeln!(w, "adaptive {name} output fnv {hash:08x}")?;
    }
    writeln!(w, "adaptive arena {} bytes", tiles::ADAPTIVE_ARENA_LEN * 4)
}
