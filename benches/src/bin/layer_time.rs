//! Times one conv shape with the direct kernel and every applicable Winograd tile (hot caches,
//! the best ISA of this CPU, one thread).
//!
//! ```sh
//! cargo run --release -p neulens-benches --bin layer_time -- c_in h_in w_in c_out h_out w_out k stride pad_top pad_left
//! ```
use neulens::kernels::conv::{conv2d_scratch_checked, pack_conv_weights, ConvParams};
use neulens::kernels::winograd::{self as wg, WinogradTile};
use neulens::{Act, Isa};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("numbers"))
        .collect();
    let isa = Isa::ALL
        .into_iter()
        .rev()
        .find(|i| i.is_available())
        .expect("scalar");
    let p = ConvParams {
        c_in: a[0],
        h_in: a[1],
        w_in: a[2],
        c_out: a[3],
        h_out: a[4],
        w_out: a[5],
        kh: a[6],
        kw: a[6],
        sh: a[7],
        sw: a[7],
        pad_top: a[8],
        pad_left: a[9],
        groups: 1,
        act: Act::Relu,
    };
    p.validate().expect("valid");
    let input = vec![0.5f32; p.input_len()];
    let w = vec![0.01f32; p.weight_len()];
    let bias = vec![0.0f32; p.c_out];
    let mut out = vec![0.0; p.output_len()];
    let mut packed = vec![0.0; p.packed_weight_len()];
    pack_conv_weights(&p, &w, &mut packed).expect("pack");
    let mut scratch = vec![0.0; p.scratch_len()];
    let time = |f: &mut dyn FnMut()| {
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let t = Instant::now();
            for _ in 0..200 {
                f();
            }
            best = best.min(t.elapsed().as_secs_f64() / 200.0 * 1e6);
        }
        best
    };
    let d = time(&mut || {
        conv2d_scratch_checked(
            isa,
            black_box(&p),
            &input,
            &packed,
            &bias,
            &mut out,
            &mut scratch,
        )
        .expect("runs");
    });
    print!(
        "direct {d:.2} µs ({:.1} GFLOP/s)",
        2.0 * p.macs() as f64 / d / 1e3
    );
    if wg::supported(&p) {
        for t in WinogradTile::ALL {
            let mut u = vec![0.0; wg::packed_weight_len(&p, t)];
            wg::pack_weights(&p, t, &w, &mut u).expect("pack");
            let mut ws = vec![0.0; wg::scratch_len(&p, t)];
            let x = time(&mut || {
                wg::winograd_conv2d_checked(isa, &p, t, &input, &u, &bias, &mut out, &mut ws)
                    .expect("runs");
            });
            print!("  F{} {x:.2} µs", t.m());
        }
    }
    println!();
}
