use neulens_benches::microflow_demo as m;
fn main() {
    let input: Vec<f32> = (0..m::INPUT_LEN)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let mut arena = vec![0f32; m::ARENA_LEN];
    let mut out = vec![0f32; m::OUTPUT_LEN];
    m::infer_slices(&input, &mut arena, &mut out).unwrap();
    let mut aa = vec![0f32; m::ADAPTIVE_ARENA_LEN];
    for l in 0..5u8 {
        let mut o2 = vec![0f32; m::OUTPUT_LEN];
        let r =
            m::infer_adaptive_slices(&input, &mut aa, &mut o2, neulens::Policy::Fixed(l)).unwrap();
        let e = out
            .iter()
            .zip(&o2)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "level {l}: max diff vs dense {e:e}, macs {} / {}",
            r.total_macs,
            m::MACS
        );
    }
    let mut o2 = vec![0f32; m::OUTPUT_LEN];
    let r = m::infer_adaptive_slices(&input, &mut aa, &mut o2, neulens::Policy::Gate).unwrap();
    println!(
        "gate: {:?} conf {:?} total {}",
        r.levels, r.confidence, r.total_macs
    );
    let r = m::infer_adaptive_slices(
        &input,
        &mut aa,
        &mut o2,
        neulens::Policy::Budget(neulens::Budget::Fraction(0.5)),
    )
    .unwrap();
    println!(
        "budget 0.5: {:?} total {} budget {:?} ok {}",
        r.levels, r.total_macs, r.budget_macs, r.within_budget
    );
    println!("out {:?}", &out[..4]);
}
