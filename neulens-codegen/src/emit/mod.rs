//! The emitter: writes a `Plan` as Rust items (constants, an aligned weight blob, `infer`) with
//! `quote`, plus the little-endian weight blob bytes. The generated code states its invariants
//! with `static_assertions`, so a mismatched blob or a hand edit fails to compile.

pub mod report;

use crate::microflow::GateKind;
use crate::plan::adaptive::AdaptivePlan;
use crate::plan::{BufRef, Kernel, Plan, Storage};
use neulens_kernels::conv::ConvParams;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// How the generated code finds the weight blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobRef {
    /// `include_bytes!(concat!(env!("OUT_DIR"), "/", FILE))`: the build.rs path (no absolute path in
    /// the generated code, so it is identical across build directories).
    OutDir(String),
    /// `include_bytes!("ABSOLUTE PATH")`.
    Path(String),
    /// The bytes inline as one byte-string literal (the macro without a build script).
    Inline,
}

/// What to emit besides the Rust module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmitOptions {
    pub blob: BlobRef,
    /// Also emit `extern "C" fn neulens_<name>_infer` (see `c_header` for its C declaration).
    pub c_api: bool,
}

impl EmitOptions {
    pub fn new(blob: BlobRef) -> Self {
        EmitOptions { blob, c_api: false }
    }
}

/// The generated code and the blob it embeds.
pub struct Emitted {
    pub tokens: TokenStream,
    /// The weight blob (f32 little-endian), to be written where `BlobRef` says.
    pub blob: Vec<u8>,
}

/// Emits the items of a model module.
pub fn emit(
    plan: &Plan,
    adaptive: Option<&AdaptivePlan>,
    opts: &EmitOptions,
    spec_label: &str,
) -> Emitted {
    let blob_ref = &opts.blob;
    let blob: Vec<u8> = plan.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
    let input_len = plan.input.len();
    let output_len = plan.output.len();
    let arena_len = plan.arena_len;
    let weights_len = plan.weights.len();
    let weights_bytes = blob.len();
    let macs = plan.macs;
    let name = &plan.name;
    let [ic, ih, iw] = [plan.input.c, plan.input.h, plan.input.w];
    let [oc, oh, ow] = [plan.output.c, plan.output.h, plan.output.w];

    let blob_expr = match blob_ref {
        BlobRef::OutDir(file) => {
            let f = format!("/{file}");
            quote!(*include_bytes!(concat!(env!("OUT_DIR"), #f)))
        }
        BlobRef::Path(p) => quote!(*include_bytes!(#p)),
        BlobRef::Inline => {
            let lit = Literal::byte_string(&blob);
            quote!(*#lit)
        }
    };

    let Body {
        params,
        calls,
        tcalls,
        worker_scratch,
        bounds,
        layers,
    } = body(plan);
    let asserts = bounds.iter().map(|(limit, end)| {
        let limit = format_ident!("{}", limit);
        quote!(::neulens::__private::static_assertions::const_assert!(#end <= #limit);)
    });
    // (With an empty arena the assertion is trivially true, and clippy rejects `0 <= N`.)
    let budget_assert = plan.arena_budget.filter(|_| arena_len > 0).map(|b| {
        let b = b as usize;
        quote!(::neulens::__private::static_assertions::const_assert!(ARENA_BYTES <= #b);)
    });
    let doc = format!(
        " Model `{name}` compiled by neulens from `{spec_label}`: input {}, output {}, {macs} MACs, arena {} bytes, weights {} bytes.",
        plan.input, plan.output, arena_len * 4, weights_bytes
    );
    let c_api = opts.c_api.then(|| {
        let sym = format_ident!("{}", c_symbol(&plan.name));
        let doc = format!(" C entry point of `{name}`: see the generated header. Returns 0, or -1 when a pointer is null.");
        quote! {
            #[doc = #doc]
            ///
            /// # Safety
            /// `input` must point to `INPUT_LEN` readable floats, `arena` to `ARENA_LEN` and `output`
            /// to `OUTPUT_LEN` writable floats, all aligned for `float` and not overlapping.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn #sym(input: *const f32, arena: *mut f32, output: *mut f32) -> i32 {
                if input.is_null() || arena.is_null() || output.is_null() {
                    return -1;
                }
                // SAFETY: the caller guarantees the lengths, alignment and disjointness above, so
                // each pointer is a valid exclusive (or shared, for input) reference to an array.
                let (input, arena, output) = unsafe {
                    (
                        &*(input as *const [f32; INPUT_LEN]),
                        &mut *(arena as *mut [f32; ARENA_LEN]),
                        &mut *(output as *mut [f32; OUTPUT_LEN]),
                    )
                };
                infer(input, arena, output);
                0
            }
        }
    });
    let tokens = quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        pub const NAME: &str = #name;
        /// Input shape [channels, height, width] (CHW, f32).
        #[allow(dead_code)]
        pub const INPUT_SHAPE: [usize; 3] = [#ic, #ih, #iw];
        #[allow(dead_code)]
        pub const INPUT_LEN: usize = #input_len;
        /// Output shape [channels, height, width].
        #[allow(dead_code)]
        pub const OUTPUT_SHAPE: [usize; 3] = [#oc, #oh, #ow];
        #[allow(dead_code)]
        pub const OUTPUT_LEN: usize = #output_len;
        /// f32 elements of scratch memory `infer` needs.
        #[allow(dead_code)]
        pub const ARENA_LEN: usize = #arena_len;
        #[allow(dead_code)]
        pub const ARENA_BYTES: usize = ARENA_LEN * 4;
        /// Multiply-accumulates of one inference.
        #[allow(dead_code)]
        pub const MACS: u64 = #macs;
        #[allow(dead_code)]
        pub const WEIGHTS_LEN: usize = #weights_len;
        #[allow(dead_code)]
        pub const WEIGHTS_BYTES: usize = #weights_bytes;
        /// The instruction set enabled at compile time (`cfg(target_feature)`); `infer` runs with
        /// `neulens::active_isa()`, which with the `std` feature is the best one the CPU has.
        #[allow(dead_code)]
        pub const ISA: ::neulens::Isa = ::neulens::Isa::COMPILED;
        /// Per layer: op, algorithm, shape, MACs, weight bytes, arena offset (f32).
        #[allow(dead_code)]
        pub const LAYERS: &[::neulens::LayerInfo] = &[#(#layers),*];
        /// Scratch memory for `infer`.
        #[allow(dead_code)]
        pub type Arena = [f32; ARENA_LEN];

        #[repr(C, align(64))]
        #[allow(dead_code)]
        struct AlignedBlob([u8; WEIGHTS_BYTES]);
        /// The packed weights; its length is part of the type, so a blob of another size fails to compile.
        #[allow(dead_code)]
        static BLOB: AlignedBlob = AlignedBlob(#blob_expr);
        ::neulens::__private::static_assertions::const_assert!(cfg!(target_endian = "little"));
        ::neulens::__private::static_assertions::const_assert_eq!(WEIGHTS_BYTES, WEIGHTS_LEN * 4);
        ::neulens::__private::static_assertions::const_assert_eq!(core::mem::align_of::<AlignedBlob>() % 4, 0);
        #budget_assert
        #(#asserts)*
        #(#params)*

        /// The weight blob as f32.
        #[allow(dead_code)]
        pub fn weights() -> &'static [f32] {
            ::neulens::__private::bytemuck::cast_slice(&BLOB.0)
        }

        /// Runs the model. Sizes are checked by the types; nothing allocates and nothing panics.
        #[allow(clippy::all, unused_unsafe)]
        #[allow(dead_code)]
        pub fn infer(input: &[f32; INPUT_LEN], arena: &mut [f32; ARENA_LEN], output: &mut [f32; OUTPUT_LEN]) {
            let x: *const f32 = input.as_ptr();
            let a: *mut f32 = arena.as_mut_ptr();
            let y: *mut f32 = output.as_mut_ptr();
            let w: *const f32 = BLOB.0.as_ptr() as *const f32;
            let (ar, yr): (*const f32, *const f32) = (a, y);
            let isa: ::neulens::Isa = ::neulens::active_isa();
            let _ = (x, a, y, w, ar, yr);
            // SAFETY: every pointer below is a base pointer plus a constant offset whose range
            // (offset + length) is proven within INPUT_LEN / ARENA_LEN / OUTPUT_LEN / WEIGHTS_LEN by
            // the const assertions above; BLOB is 64-byte aligned, so `w` is aligned for f32; the
            // planner never lets a kernel's output overlap its inputs except the exact in-place
            // aliasing the eltwise kernels allow; `isa` is enabled at compile time or detected
            // on this CPU by `active_isa`.
            unsafe {
                #(#calls)*
            }
        }

        /// `infer` over slices: returns an error instead of compiling when sizes are not known statically.
        #[allow(dead_code)]
        pub fn infer_slices(input: &[f32], arena: &mut [f32], output: &mut [f32]) -> Result<(), ::neulens::Error> {
            let (input, arena, output) = ::neulens::slices_as_arrays::<INPUT_LEN, ARENA_LEN, OUTPUT_LEN>(input, arena, output)?;
            infer(input, arena, output);
            Ok(())
        }

        /// f32 elements of conv scratch each worker but the first gets of its own in
        /// `infer_threads` (the largest scratch of any convolution).
        #[allow(dead_code)]
        pub const WORKER_SCRATCH_LEN: usize = #worker_scratch;

        /// f32 elements of arena `infer_threads` needs with `threads` workers: `ARENA_LEN`
        /// plus `WORKER_SCRATCH_LEN` per worker after the first (a build without the `std`
        /// feature always runs one).
        #[allow(dead_code)]
        pub const fn threads_arena_len(threads: usize) -> usize {
            ARENA_LEN + threads.saturating_sub(1) * WORKER_SCRATCH_LEN
        }

        /// Runs the model on `threads` threads, with the same result as `infer` bit for bit:
        /// each convolution is split by output channels (every worker reads its whole input
        /// and writes its own channels, with its own scratch), max/avg pools by channels and
        /// adds by runs of values; dense layers and the rest run on the calling thread, and
        /// the workers meet at a barrier after every layer. The extra
        /// workers are scoped threads spawned per call (about 20–50 µs), so this pays off for
        /// models of a few milliseconds and more; `infer_pool` reuses a pool's threads. Without
        /// the `std` feature it runs on the calling thread. Fails only on wrong slice lengths
        /// (`arena.len() >= threads_arena_len(threads)`).
        #[allow(dead_code)]
        pub fn infer_threads(input: &[f32], arena: &mut [f32], output: &mut [f32], threads: usize) -> Result<(), ::neulens::Error> {
            let threads = ::neulens::parallel::workers(threads);
            infer_team(input, arena, output, threads, |f| ::neulens::parallel::team(threads, f))
        }

        /// `infer_threads` on the threads of `pool` (`pool.workers()` workers, started once):
        /// the same result as `infer` bit for bit, without spawning threads per call, so it
        /// pays off for small models too. Fails only on wrong slice lengths
        /// (`arena.len() >= threads_arena_len(pool.workers())`).
        #[allow(dead_code)]
        pub fn infer_pool(input: &[f32], arena: &mut [f32], output: &mut [f32], pool: &::neulens::parallel::Pool) -> Result<(), ::neulens::Error> {
            infer_team(input, arena, output, pool.workers(), |f| pool.run(f))
        }

        /// The body of `infer_threads` and `infer_pool`: checks the slices, then hands the
        /// per-worker kernel sequence to `run`, which calls it once on each of `threads`
        /// workers at the same time.
        #[allow(clippy::all, unused_unsafe, dead_code)]
        fn infer_team(
            input: &[f32],
            arena: &mut [f32],
            output: &mut [f32],
            threads: usize,
            run: impl FnOnce(&(dyn Fn(usize, usize, &::neulens::parallel::Barrier) + Sync)),
        ) -> Result<(), ::neulens::Error> {
            let need = threads_arena_len(threads);
            if arena.len() < need {
                return Err(::neulens::Error::ArenaLength { expected: need, found: arena.len() });
            }
            let (input, _, output) = ::neulens::slices_as_arrays::<INPUT_LEN, 0, OUTPUT_LEN>(input, &mut [], output)?;
            use ::neulens::microflow::SendPtr;
            let (xs, as_, ys) = (SendPtr(input.as_ptr() as *mut f32), SendPtr(arena.as_mut_ptr()), SendPtr(output.as_mut_ptr()));
            let isa: ::neulens::Isa = ::neulens::active_isa();
            run(&|k, n, b| {
                debug_assert_eq!(n, threads);
                let (x, a, y): (*const f32, *mut f32, *mut f32) = (xs.get(), as_.get(), ys.get());
                let w: *const f32 = BLOB.0.as_ptr() as *const f32;
                let (ar, yr): (*const f32, *const f32) = (a, y);
                let _ = (x, a, y, w, ar, yr, k, n);
                // SAFETY: as in `infer` (the arena holds `threads_arena_len(n)` floats, so
                // worker `k`'s scratch `ws` is inside it and disjoint from the plan's regions and
                // from the other workers'); within a layer the workers write disjoint output
                // channels and only read buffers no worker writes, and the barrier after each
                // layer orders its writes before the next layer's reads.
                unsafe {
                    let ws: *mut f32 = a.add(ARENA_LEN + k.saturating_sub(1) * WORKER_SCRATCH_LEN);
                    let _ = ws;
                    #(#tcalls)*
                }
            });
            Ok(())
        }

        /// The model as a type, for generic code (benches, tests, `neulens::Model`).
        #[derive(Clone, Copy, Debug, Default)]
        #[allow(dead_code)]
        pub struct Model;
        impl ::neulens::Model for Model {
            const NAME: &'static str = NAME;
            const INPUT_SHAPE: [usize; 3] = INPUT_SHAPE;
            const OUTPUT_SHAPE: [usize; 3] = OUTPUT_SHAPE;
            const INPUT_LEN: usize = INPUT_LEN;
            const OUTPUT_LEN: usize = OUTPUT_LEN;
            const ARENA_LEN: usize = ARENA_LEN;
            const MACS: u64 = MACS;
            const LAYERS: &'static [::neulens::LayerInfo] = LAYERS;
            fn infer_slices(input: &[f32], arena: &mut [f32], output: &mut [f32]) -> Result<(), ::neulens::Error> {
                infer_slices(input, arena, output)
            }
            fn threads_arena_len(threads: usize) -> usize {
                threads_arena_len(threads)
            }
            fn infer_threads(input: &[f32], arena: &mut [f32], output: &mut [f32], threads: usize) -> Result<(), ::neulens::Error> {
                infer_threads(input, arena, output, threads)
            }
            fn infer_pool(input: &[f32], arena: &mut [f32], output: &mut [f32], pool: &::neulens::parallel::Pool) -> Result<(), ::neulens::Error> {
                infer_pool(input, arena, output, pool)
            }
        }
    };
    let adaptive = adaptive.map(adaptive_items);
    let tokens = quote!(#tokens #c_api #adaptive);
    Emitted { tokens, blob }
}

/// The generated pieces of one plan: parameter constants, kernel calls (in a scope with `x`,
/// `a`, `ar`, `y`, `yr`, `w`, `isa`), the (limit constant, end) bounds to assert, and `LAYERS`.
struct Body {
    params: Vec<TokenStream>,
    calls: Vec<TokenStream>,
    /// The same calls for worker `k` of `n` (in a scope that also has `k`, `n` and the
    /// barrier `b`): convolutions and pools split by output channels, adds by runs of
    /// values, every other kernel on worker 0, and a barrier after each.
    tcalls: Vec<TokenStream>,
    /// The largest conv scratch: what every worker but 0 gets of its own.
    worker_scratch: usize,
    bounds: std::collections::BTreeSet<(&'static str, usize)>,
    layers: Vec<TokenStream>,
}

fn body(plan: &Plan) -> Body {
    let mut pid = 0usize;
    let mut params = Vec::new();
    let mut calls = Vec::new();
    let mut tcalls = Vec::new();
    let mut worker_scratch = 0usize;
    // (limit constant, end) pairs; a set keeps the generated code short and ordered.
    let mut bounds = std::collections::BTreeSet::new();
    let mut layers = Vec::new();
    // One library type per distinct pattern library: each pattern's kernel body is instantiated
    // once per library (and ISA), and only for the masks the library names.
    for (i, masks) in plan.pattern_libs.iter().enumerate() {
        let lib = format_ident!("PatLib{}", i);
        let arms = masks.iter().enumerate().map(|(id, &m)| {
            let id = Literal::usize_unsuffixed(id);
            let m = Literal::u16_unsuffixed(m);
            quote!(#id => #m)
        });
        let doc = format!(
            " Pattern library {i}: {}.",
            crate::prune::library_summary(masks)
        );
        params.push(quote! {
            ::neulens::kernels::pattern_library!(#[doc = #doc] struct #lib = [#(#arms),*];);
            ::neulens::__private::static_assertions::const_assert!(::neulens::kernels::pattern::valid_library(<#lib as ::neulens::kernels::pattern::PatternLib>::MASKS));
        });
    }
    for step in &plan.steps {
        let lname = &step.name;
        let op = step.op;
        let algo = step.algo;
        let [c, h, w] = [step.shape.c, step.shape.h, step.shape.w];
        let smacs = step.macs;
        let wbytes = step.weight_bytes;
        let arena_off = match step.output.storage {
            // A conv fused into the pool after it stores no map.
            Storage::Arena(_) if step.output.len > 0 => {
                let o = step.output.start();
                quote!(Some(#o))
            }
            _ => quote!(None),
        };
        layers.push(quote! {
            ::neulens::LayerInfo {
                name: #lname, op: #op, algo: #algo, shape: [#c, #h, #w],
                macs: #smacs, weight_bytes: #wbytes, arena_offset: #arena_off,
            }
        });
        for k in &step.kernels {
            for b in k.buffers() {
                bounds.insert(bound_of(&b));
            }
            for (o, l) in k.weight_ranges() {
                bounds.insert(("WEIGHTS_LEN", o + l));
            }
            // This kernel's share of the work of worker `k` of `n`, when it splits.
            let mut split = None;
            let call = match k {
                Kernel::Conv {
                    p,
                    input,
                    weight,
                    bias,
                    output,
                    scratch,
                    ..
                } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    params.push(conv_params_item(&id, p, input.len, output.len));
                    let (i, o, wp, bp) = (rd(input), wr(output), wptr(*weight), wptr(*bias));
                    let sc = scratch_ptr(scratch);
                    // The planned scratch: the fast banding's, or the compact one's under a
                    // tight arena budget; the kernel picks the banding that fits it.
                    let sl = scratch.as_ref().map_or(0, |s| s.len);
                    params.push(if sl == 0 {
                        quote!(::neulens::__private::static_assertions::const_assert!(#id.min_scratch_len() == 0usize);)
                    } else {
                        quote!(::neulens::__private::static_assertions::const_assert!(#id.min_scratch_len() <= #sl);)
                    });
                    worker_scratch = worker_scratch.max(sl);
                    split = Some(quote! {
                        ::neulens::kernels::conv::conv2d_part(isa, &#id, (k, n), #i, #wp, #bp, #o, if k == 0 { #sc } else { ws }, #sl);
                    });
                    quote!(::neulens::kernels::conv::conv2d(isa, &#id, #i, #wp, #bp, #o, #sc, #sl);)
                }
                Kernel::Winograd {
                    p,
                    tile,
                    input,
                    weight,
                    bias,
                    output,
                    scratch,
                } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    params.push(conv_params_item(&id, p, input.len, output.len));
                    let t = match tile {
                        neulens_kernels::winograd::WinogradTile::F2 => quote!(F2),
                        neulens_kernels::winograd::WinogradTile::F4 => quote!(F4),
                        neulens_kernels::winograd::WinogradTile::F6 => quote!(F6),
                    };
                    let tid = format_ident!("T{}", pid - 1);
                    let sl = neulens_kernels::winograd::scratch_len(p, *tile);
                    let wl = neulens_kernels::winograd::packed_weight_len(p, *tile);
                    params.push(quote! {
                        const #tid: ::neulens::kernels::winograd::WinogradTile = ::neulens::kernels::winograd::WinogradTile::#t;
                        ::neulens::__private::static_assertions::const_assert!(::neulens::kernels::winograd::supported(&#id));
                        ::neulens::__private::static_assertions::const_assert!(::neulens::kernels::winograd::scratch_len(&#id, #tid) == #sl);
                        ::neulens::__private::static_assertions::const_assert!(::neulens::kernels::winograd::packed_weight_len(&#id, #tid) == #wl);
                    });
                    let (i, o, wp, bp) = (rd(input), wr(output), wptr(*weight), wptr(*bias));
                    let sc = scratch_ptr(scratch);
                    worker_scratch = worker_scratch.max(sl);
                    split = Some(quote! {
                        ::neulens::kernels::winograd::winograd_conv2d_part(isa, &#id, #tid, (k, n), #i, #wp, #bp, #o, if k == 0 { #sc } else { ws });
                    });
                    quote!(::neulens::kernels::winograd::winograd_conv2d(isa, &#id, #tid, #i, #wp, #bp, #o, #sc);)
                }
                Kernel::Pattern {
                    p,
                    library,
                    input,
                    weight,
                    bias,
                    output,
                    scratch,
                } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    params.push(conv_params_item(&id, &p.conv, input.len, output.len));
                    let pp = format_ident!("PP{}", pid - 1);
                    let lib = format_ident!("PatLib{}", library);
                    let (k, n) = (p.patterns, p.kernels);
                    let (sl, wl) = (p.scratch_len(), p.packed_len());
                    params.push(quote! {
                        const #pp: ::neulens::kernels::pattern::PatternParams = ::neulens::kernels::pattern::PatternParams { conv: #id, patterns: #k, kernels: #n };
                        ::neulens::__private::static_assertions::const_assert!(::neulens::kernels::pattern::supported(&#id));
                        ::neulens::__private::static_assertions::const_assert!(<#lib as ::neulens::kernels::pattern::PatternLib>::MASKS.len() == #k);
                        ::neulens::__private::static_assertions::const_assert!(#pp.scratch_len() == #sl);
                        ::neulens::__private::static_assertions::const_assert!(#pp.packed_len() == #wl);
                    });
                    let (i, o, wp, bp) = (rd(input), wr(output), wptr(*weight), wptr(*bias));
                    let sc = scratch_ptr(scratch);
                    worker_scratch = worker_scratch.max(sl);
                    split = Some(quote! {
                        ::neulens::kernels::pattern::pattern_conv2d_part::<#lib>(isa, &#pp, (k, n), #i, #wp, #bp, #o, if k == 0 { #sc } else { ws });
                    });
                    quote!(::neulens::kernels::pattern::pattern_conv2d::<#lib>(isa, &#pp, #i, #wp, #bp, #o, #sc);)
                }
                Kernel::ConvGlobalMax {
                    p,
                    input,
                    weight,
                    bias,
                    output,
                    scratch,
                } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    params.push(conv_params_item(&id, p, input.len, p.output_len()));
                    let (i, o, wp, bp) = (rd(input), wr(output), wptr(*weight), wptr(*bias));
                    let sc = scratch_ptr(scratch);
                    let sl = scratch.as_ref().map_or(0, |s| s.len);
                    let (co, wl) = (p.c_out, p.global_max_packed_len());
                    params.push(quote! {
                        ::neulens::__private::static_assertions::const_assert!(#id.global_max_supported());
                        ::neulens::__private::static_assertions::const_assert!(#id.global_max_min_scratch_len() <= #sl);
                        ::neulens::__private::static_assertions::const_assert!(#id.global_max_packed_len() == #wl);
                        ::neulens::__private::static_assertions::const_assert!(#id.c_out == #co);
                    });
                    worker_scratch = worker_scratch.max(sl);
                    split = Some(quote! {
                        ::neulens::kernels::conv::conv2d_global_max_part(isa, &#id, (k, n), #i, #wp, #bp, #o, if k == 0 { #sc } else { ws }, #sl);
                    });
                    quote!(::neulens::kernels::conv::conv2d_global_max(isa, &#id, #i, #wp, #bp, #o, #sc, #sl);)
                }
                Kernel::MaxPool { p, input, output } | Kernel::AvgPool { p, input, output } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    let (c, hi, wi, ho, wo) = (p.c, p.h_in, p.w_in, p.h_out, p.w_out);
                    let (kh, kw, sh, sw, pt, pl, cip) = (
                        p.kh,
                        p.kw,
                        p.sh,
                        p.sw,
                        p.pad_top,
                        p.pad_left,
                        p.count_include_pad,
                    );
                    let act = kact_tokens(p.act);
                    params.push(quote! {
                        const #id: ::neulens::kernels::pool::PoolParams = ::neulens::kernels::pool::PoolParams {
                            c: #c, h_in: #hi, w_in: #wi, h_out: #ho, w_out: #wo, kh: #kh, kw: #kw,
                            sh: #sh, sw: #sw, pad_top: #pt, pad_left: #pl, count_include_pad: #cip, act: #act,
                        };
                    });
                    let f = if matches!(k, Kernel::MaxPool { .. }) {
                        quote!(maxpool2d)
                    } else {
                        quote!(avgpool2d)
                    };
                    let (i, o) = (rd(input), wr(output));
                    let (pin, pout) = (hi * wi, ho * wo);
                    split = Some(quote! {
                        let (c0, c1) = ::neulens::kernels::part_range(#id.c, 1, k, n);
                        if c0 < c1 {
                            let part = ::neulens::kernels::pool::PoolParams { c: c1 - c0, ..#id };
                            ::neulens::kernels::pool::#f(isa, &part, #i.add(c0 * #pin), #o.add(c0 * #pout));
                        }
                    });
                    quote!(::neulens::kernels::pool::#f(isa, &#id, #i, #o);)
                }
                Kernel::GlobalAvgPool {
                    c,
                    hw,
                    act,
                    input,
                    output,
                } => {
                    let act = gact_tokens(*act);
                    let (i, o) = (rd(input), wr(output));
                    quote!(::neulens::kernels::pool::global_avg_pool(isa, #c, #hw, #i, #o, #act);)
                }
                Kernel::Dense {
                    p,
                    input,
                    weight,
                    bias,
                    output,
                } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    let (inf, outf) = (p.in_features, p.out_features);
                    let act = kact_tokens(p.act);
                    params.push(quote! {
                        const #id: ::neulens::kernels::dense::DenseParams = ::neulens::kernels::dense::DenseParams {
                            in_features: #inf, out_features: #outf, act: #act,
                        };
                    });
                    let (i, o, wp, bp) = (rd(input), wr(output), wptr(*weight), wptr(*bias));
                    quote!(::neulens::kernels::dense::dense(isa, &#id, #i, #wp, #bp, #o);)
                }
                Kernel::Add { a, b, output, act } => {
                    let n = output.len;
                    let act = gact_tokens(*act);
                    let (a, b, o) = (rd(a), rd(b), wr(output));
                    // Runs of 64 values (whole vectors of every ISA, whole cache lines).
                    split = Some(quote! {
                        let (e0, e1) = ::neulens::kernels::part_range(#n, 64, k, n);
                        if e0 < e1 {
                            ::neulens::kernels::eltwise::add(isa, e1 - e0, #a.add(e0), #b.add(e0), #o.add(e0), #act);
                        }
                    });
                    quote!(::neulens::kernels::eltwise::add(isa, #n, #a, #b, #o, #act);)
                }
                Kernel::Affine {
                    c,
                    hw,
                    input,
                    scale,
                    shift,
                    output,
                    act,
                } => {
                    let act = gact_tokens(*act);
                    let (i, o, s, t) = (rd(input), wr(output), wptr(*scale), wptr(*shift));
                    quote!(::neulens::kernels::eltwise::affine(isa, #c, #hw, #i, #s, #t, #o, #act);)
                }
                Kernel::Softmax { input, output } => {
                    let n = output.len;
                    let (i, o) = (rd(input), wr(output));
                    quote!(::neulens::kernels::eltwise::softmax(isa, #n, #i, #o);)
                }
                Kernel::Copy { src, dst } => {
                    let n = dst.len;
                    let (s, d) = (rd(src), wr(dst));
                    quote!(::neulens::kernels::eltwise::copy(#n, #s, #d);)
                }
                Kernel::Window { p, src, dst } => {
                    let id = format_ident!("P{}", pid);
                    pid += 1;
                    params.push(window_item(&id, p, src.len, dst.len));
                    let (s, d) = (rd(src), wr(dst));
                    quote!(::neulens::kernels::eltwise::copy_window(&#id, #s, #d);)
                }
            };
            let part = split.unwrap_or_else(|| quote!(if k == 0 { #call }));
            tcalls.push(quote! {
                #part
                b.wait();
            });
            calls.push(call);
        }
    }
    Body {
        params,
        calls,
        tcalls,
        worker_scratch,
        bounds,
        layers,
    }
}

/// A private module running one sub-plan (a micro-flow, a gate or the tail) on raw pointers:
/// `run(x, a, y, w, isa)` with its own `INPUT_LEN`/`ARENA_LEN`/`OUTPUT_LEN` bounds asserted; the
/// weight offsets are global (one blob for the whole model).
fn sub_module(name: &proc_macro2::Ident, plan: &Plan) -> TokenStream {
    let Body {
        params,
        calls,
        bounds,
        ..
    } = body(plan);
    let (il, ol, al) = (plan.input.len(), plan.output.len(), plan.arena_len);
    let asserts = bounds.iter().map(|(limit, end)| {
        let limit = format_ident!("{}", limit);
        quote!(::neulens::__private::static_assertions::const_assert!(#end <= #limit);)
    });
    quote! {
        #[allow(dead_code, clippy::all, unused_unsafe)]
        mod #name {
            #[allow(unused_imports)]
            use super::WEIGHTS_LEN;
            pub const INPUT_LEN: usize = #il;
            pub const OUTPUT_LEN: usize = #ol;
            pub const ARENA_LEN: usize = #al;
            #(#asserts)*
            #(#params)*
            /// # Safety
            /// `x`: `INPUT_LEN` readable floats; `a`: `ARENA_LEN` and `y`: `OUTPUT_LEN` writable
            /// floats, the three disjoint; `w`: the model's weight blob; `isa` available.
            #[inline(never)]
            pub unsafe fn run(x: *const f32, a: *mut f32, y: *mut f32, w: *const f32, isa: ::neulens::Isa) {
                let (ar, yr): (*const f32, *const f32) = (a, y);
                let _ = (x, a, y, w, ar, yr, isa);
                // SAFETY: every pointer is a base plus a constant offset whose range is asserted
                // within INPUT_LEN / ARENA_LEN / OUTPUT_LEN / WEIGHTS_LEN above, which the caller
                // guarantees; kernels' outputs never overlap their inputs except where in-place
                // aliasing is allowed (see `infer`).
                unsafe {
                    #(#calls)*
                }
            }
        }
    }
}

/// Tokens of a `const ID: Window` (no assertions).
fn window_lit(p: &neulens_kernels::eltwise::Window) -> TokenStream {
    let neulens_kernels::eltwise::Window {
        c,
        h,
        w,
        src_h,
        src_w,
        src_y,
        src_x,
        dst_h,
        dst_w,
        dst_y,
        dst_x,
    } = *p;
    quote! {
        ::neulens::kernels::eltwise::Window {
            c: #c, h: #h, w: #w, src_h: #src_h, src_w: #src_w, src_y: #src_y, src_x: #src_x,
            dst_h: #dst_h, dst_w: #dst_w, dst_y: #dst_y, dst_x: #dst_x,
        }
    }
}

/// The adaptive-inference items: sub-plan modules, micro-flow constants, `infer_adaptive` and
/// `infer_adaptive_threads`.
///
/// Each worker (one per thread) owns a region of `WORKER_LEN` floats after the stitched map:
/// tile input at 0, tile output at `TOUT_REL`, gate logits at `LOG_REL`, micro-flow/gate scratch
/// at `SUB_REL`. Tiles write disjoint windows of the stitched map, so workers never overlap.
fn adaptive_items(ap: &AdaptivePlan) -> TokenStream {
    let mf = &ap.mf;
    let tiles = mf.tiles.len();
    let levels = mf.num_levels();
    let grid = mf.grid;
    let mut mods = Vec::new();
    let mut flow_arms = Vec::new();
    let mut region_asserts = Vec::new();
    let tin = ap.tile_in_off;
    let (tout_rel, log_rel, sub_rel) =
        (ap.tile_out_off - tin, ap.logits_off - tin, ap.sub_off - tin);
    let sub_max = ap
        .flows
        .iter()
        .flatten()
        .chain(&ap.gates)
        .map(|p| p.arena_len)
        .max()
        .unwrap_or(0);
    let worker_len =
        (sub_rel + sub_max).div_ceil(crate::plan::WEIGHT_ALIGN) * crate::plan::WEIGHT_ALIGN;
    let (stitched, tail_off) = (ap.stitched_off, ap.tail_off);
    let tail_end = tail_off + ap.tail.arena_len;
    for (l, lv) in ap.flows.iter().enumerate() {
        for (c, p) in lv.iter().enumerate() {
            let m = format_ident!("__flow_l{}_c{}", l, c);
            mods.push(sub_module(&m, p));
            let (lu, cu) = (l as u8, c as u8);
            flow_arms
                .push(quote!((#lu, #cu) => #m::run(b, b.add(SUB_REL), b.add(TOUT_REL), w, isa),));
            region_asserts.push(quote! {
                ::neulens::__private::static_assertions::const_assert!(#m::INPUT_LEN <= TOUT_REL);
                ::neulens::__private::static_assertions::const_assert!(TOUT_REL + #m::OUTPUT_LEN <= LOG_REL);
                ::neulens::__private::static_assertions::const_assert!(SUB_REL + #m::ARENA_LEN <= WORKER_LEN);
            });
        }
    }
    let mut gate_arms = Vec::new();
    for (c, p) in ap.gates.iter().enumerate() {
        let m = format_ident!("__gate_c{}", c);
        mods.push(sub_module(&m, p));
        let cu = c as u8;
        gate_arms.push(quote!(#cu => #m::run(b, b.add(SUB_REL), b.add(LOG_REL), w, isa),));
        region_asserts.push(quote! {
            ::neulens::__private::static_assertions::const_assert!(#m::INPUT_LEN <= TOUT_REL);
            ::neulens::__private::static_assertions::const_assert!(#m::OUTPUT_LEN == LEVELS);
            ::neulens::__private::static_assertions::const_assert!(SUB_REL + #m::ARENA_LEN <= WORKER_LEN);
        });
    }
    mods.push(sub_module(&format_ident!("__tail"), &ap.tail));
    let slen = mf.split_shape.len();
    let stitched_end = stitched + slen;
    region_asserts.push(quote! {
        ::neulens::__private::static_assertions::const_assert!(__tail::INPUT_LEN == #slen);
        ::neulens::__private::static_assertions::const_assert!(__tail::OUTPUT_LEN == OUTPUT_LEN);
        ::neulens::__private::static_assertions::const_assert!(#stitched_end <= #tail_off);
        ::neulens::__private::static_assertions::const_assert!(#stitched_end <= TILE_IN_OFF);
        ::neulens::__private::static_assertions::const_assert!(LOG_REL + LEVELS <= SUB_REL);
        ::neulens::__private::static_assertions::const_assert!(#tail_off + __tail::ARENA_LEN <= ADAPTIVE_ARENA_LEN);
    });
    let classes: Vec<u8> = mf.tiles.iter().map(|t| t.class as u8).collect();
    let crops = ap.crop.iter().map(window_lit);
    let pastes = ap.paste.iter().map(window_lit);
    let tile_macs = mf.tile_macs.iter().map(|t| quote!([#(#t),*]));
    let gate_macs: u64 = mf.gate_macs.iter().sum();
    let tail_macs = mf.tail_macs;
    let fractions = mf.levels.iter().map(|&f| f as f32);
    let (theta, window) = (mf.theta as f32, mf.window);
    let (ci, cs) = (mf.classes.len(), mf.split_shape);
    let split_name = &mf.split_name;
    let sc = [cs.c, cs.h, cs.w];
    let arena_len = ap.arena_len;
    // The gate of one tile on worker region `b`: (level, confidence).
    let gate_body = match &mf.gate {
        GateKind::Fixed(l) => {
            let l = *l as u8;
            quote!((#l, 1.0))
        }
        GateKind::Energy(t) => {
            let t = t.iter().map(|&v| v as f32);
            quote! {
                const THRESHOLDS: [f32; LEVELS - 1] = [#(#t),*];
                let cw = &TILE_CROP[t];
                ::neulens::kernels::eltwise::copy_window(cw, x, b);
                let tile = core::slice::from_raw_parts(b as *const f32, cw.dst_len());
                ::neulens::microflow::energy_decision(::neulens::microflow::tile_energy(tile), &THRESHOLDS)
            }
        }
        GateKind::Learned => quote! {
            ::neulens::kernels::eltwise::copy_window(&TILE_CROP[t], x, b);
            match TILE_CLASS[t] {
                #(#gate_arms)*
                _ => {}
            }
            let logits = core::slice::from_raw_parts(b.add(LOG_REL) as *const f32, LEVELS);
            ::neulens::microflow::gate_decision(logits)
        },
    };
    let doc = format!(
        " Adaptive inference (NeuLens micro-flows): the image is cut into {grid}×{grid} overlapping tiles ({ci} code paths), each runs the layers up to `{split_name}` at one of {levels} width levels, and the stitched {}×{}×{} map runs once through the tail.",
        cs.c, cs.h, cs.w
    );
    quote! {
        #(#mods)*

        /// Tiles per side.
        #[allow(dead_code)]
        pub const GRID: usize = #grid;
        /// Tiles (`GRID * GRID`, row-major).
        #[allow(dead_code)]
        pub const TILES: usize = #tiles;
        /// Width levels (0 = widest).
        #[allow(dead_code)]
        pub const LEVELS: usize = #levels;
        /// Channel fraction kept at each level.
        #[allow(dead_code)]
        pub const LEVEL_FRACTIONS: [f32; LEVELS] = [#(#fractions),*];
        /// Shape of the stitched feature map (the split layer's output).
        #[allow(dead_code)]
        pub const SPLIT_SHAPE: [usize; 3] = [#(#sc),*];
        /// MACs of each tile's micro-flow at each level.
        #[allow(dead_code)]
        pub const TILE_MACS: [[u64; LEVELS]; TILES] = [#(#tile_macs),*];
        /// MACs of the gate over all tiles (0 unless the gate is learned).
        #[allow(dead_code)]
        pub const GATE_MACS: u64 = #gate_macs;
        /// MACs of the layers after the split.
        #[allow(dead_code)]
        pub const TAIL_MACS: u64 = #tail_macs;
        /// θ_f and Δw of the budget controller (spec `microflows.theta` / `window`).
        #[allow(dead_code)]
        pub const CONTROLLER: ::neulens::microflow::Controller = ::neulens::microflow::Controller { theta: #theta, window: #window };
        /// Arena offset of worker 0's region (after the stitched map).
        const TILE_IN_OFF: usize = #tin;
        /// One worker's region: tile input, tile output, gate logits, micro-flow scratch.
        #[allow(dead_code)]
        pub const WORKER_LEN: usize = #worker_len;
        const TOUT_REL: usize = #tout_rel;
        const LOG_REL: usize = #log_rel;
        const SUB_REL: usize = #sub_rel;
        /// f32 elements of scratch memory `infer_adaptive_threads` needs with `threads` workers.
        #[allow(dead_code)]
        pub const fn adaptive_arena_len(threads: usize) -> usize {
            let t = if threads == 0 { 1 } else { threads };
            let workers = TILE_IN_OFF + t * WORKER_LEN;
            if workers > #tail_end { workers } else { #tail_end }
        }
        /// f32 elements of scratch memory `infer_adaptive` needs.
        #[allow(dead_code)]
        pub const ADAPTIVE_ARENA_LEN: usize = adaptive_arena_len(1);
        ::neulens::__private::static_assertions::const_assert_eq!(ADAPTIVE_ARENA_LEN, #arena_len);
        /// Scratch memory for `infer_adaptive`.
        #[allow(dead_code)]
        pub type AdaptiveArena = [f32; ADAPTIVE_ARENA_LEN];
        /// The code path (tile class) of each tile.
        #[allow(dead_code)]
        const TILE_CLASS: [u8; TILES] = [#(#classes),*];
        /// The image window each tile reads.
        #[allow(dead_code)]
        pub const TILE_CROP: [::neulens::kernels::eltwise::Window; TILES] = [#(#crops),*];
        /// Where each tile's output goes in the stitched map.
        #[allow(dead_code)]
        pub const TILE_PASTE: [::neulens::kernels::eltwise::Window; TILES] = [#(#pastes),*];
        const _: () = {
            let mut t = 0;
            while t < TILES {
                assert!(TILE_CROP[t].fits() && TILE_CROP[t].src_len() == INPUT_LEN);
                assert!(TILE_CROP[t].dst_len() <= TOUT_REL);
                assert!(TILE_PASTE[t].fits() && TILE_PASTE[t].dst_len() == #slen);
                assert!(TOUT_REL + TILE_PASTE[t].src_len() <= LOG_REL);
                t += 1;
            }
        };
        #(#region_asserts)*

        /// The gate on tile `t`, using the worker region `b`.
        ///
        /// # Safety
        /// `x`: the input (`INPUT_LEN`); `b`: `WORKER_LEN` writable floats no other thread uses.
        #[allow(dead_code, unused_variables, clippy::all, unused_unsafe)]
        #[inline(never)]
        unsafe fn __gate_tile(t: usize, x: *const f32, b: *mut f32, w: *const f32, isa: ::neulens::Isa) -> (u8, f32) {
            // SAFETY: the crop window and the gate's buffers lie inside `b`'s region (asserted
            // above); the caller guarantees the region and the input.
            unsafe { #gate_body }
        }

        /// Micro-flow `l` on tile `t` (worker region `b`), pasted into the stitched map `st`.
        ///
        /// # Safety
        /// As `__gate_tile`, and `st` the stitched map (`SPLIT_SHAPE`); tile `t`'s window of it is
        /// written by no other thread.
        #[allow(dead_code, clippy::all, unused_unsafe)]
        #[inline(never)]
        unsafe fn __flow_tile(t: usize, l: u8, x: *const f32, b: *mut f32, st: *mut f32, w: *const f32, isa: ::neulens::Isa) {
            // SAFETY: see the function's contract and the region assertions above.
            unsafe {
                ::neulens::kernels::eltwise::copy_window(&TILE_CROP[t], x, b);
                match (l, TILE_CLASS[t]) {
                    #(#flow_arms)*
                    _ => {}
                }
                ::neulens::kernels::eltwise::copy_window(&TILE_PASTE[t], b.add(TOUT_REL), st);
            }
        }

        /// # Safety
        /// `x`: `INPUT_LEN` floats; `a`: `adaptive_arena_len(exec.workers())` and `y`: `OUTPUT_LEN`
        /// writable floats, all disjoint.
        #[allow(dead_code, clippy::all, unused_unsafe, unused_mut)]
        unsafe fn __adaptive(x: *const f32, a: *mut f32, y: *mut f32, policy: ::neulens::Policy, exec: ::neulens::microflow::Exec<'_>) -> ::neulens::TileReport<TILES> {
            use ::neulens::microflow::SendPtr;
            let w: *const f32 = BLOB.0.as_ptr() as *const f32;
            let isa: ::neulens::Isa = ::neulens::active_isa();
            let (xs, as_, ws) = (SendPtr(x as *mut f32), SendPtr(a), SendPtr(w as *mut f32));
            let mut gate_levels = [0u8; TILES];
            let mut confidence = [1.0f32; TILES];
            let mut gate_macs = 0u64;
            if !matches!(policy, ::neulens::Policy::Fixed(_)) {
                let (gl, cf) = (SendPtr(gate_levels.as_mut_ptr()), SendPtr(confidence.as_mut_ptr()));
                exec.par_for(TILES, |t, k| {
                    // SAFETY: worker k owns region k; tile t writes only its own entries.
                    unsafe {
                        let b = as_.get().add(TILE_IN_OFF + k * WORKER_LEN);
                        let (l, c) = __gate_tile(t, xs.get(), b, ws.get(), isa);
                        *gl.get().add(t) = l;
                        *cf.get().add(t) = c;
                    }
                });
                gate_macs = GATE_MACS;
            }
            let mut levels = gate_levels;
            let mut budget_macs = None;
            let mut within_budget = true;
            match policy {
                ::neulens::Policy::Gate => {}
                ::neulens::Policy::Fixed(l) => {
                    let l = if (l as usize) < LEVELS { l } else { (LEVELS - 1) as u8 };
                    levels = [l; TILES];
                    gate_levels = levels;
                }
                ::neulens::Policy::Budget(b) => {
                    let m = b.macs(MACS);
                    budget_macs = Some(m);
                    within_budget = ::neulens::microflow::control(&mut levels, &confidence, &TILE_MACS, gate_macs + TAIL_MACS, m, CONTROLLER);
                }
            }
            let mut macs = [0u64; TILES];
            let mut total = gate_macs + TAIL_MACS;
            for t in 0..TILES {
                if levels[t] as usize >= LEVELS {
                    levels[t] = (LEVELS - 1) as u8;
                }
                macs[t] = TILE_MACS[t][levels[t] as usize];
                total += macs[t];
            }
            let lv = &levels;
            exec.par_for(TILES, |t, k| {
                // SAFETY: worker k owns region k; tile t pastes into its own window of the
                // stitched map (windows of different tiles are disjoint).
                unsafe {
                    let b = as_.get().add(TILE_IN_OFF + k * WORKER_LEN);
                    __flow_tile(t, lv[t], xs.get(), b, as_.get().add(#stitched), ws.get(), isa);
                }
            });
            // SAFETY: the tail reads the stitched map and runs in the region after it.
            unsafe { __tail::run(a.add(#stitched), a.add(#tail_off), y, w, isa) };
            ::neulens::TileReport {
                levels,
                gate_levels,
                confidence,
                macs,
                total_macs: total,
                budget_macs,
                within_budget,
            }
        }

        #[doc = #doc]
        ///
        /// `policy` picks the levels: the gate's choice, a fixed level, or the gate under a
        /// budget enforced by the controller. Nothing allocates and nothing panics.
        #[allow(dead_code)]
        pub fn infer_adaptive(
            input: &[f32; INPUT_LEN],
            arena: &mut [f32; ADAPTIVE_ARENA_LEN],
            output: &mut [f32; OUTPUT_LEN],
            policy: ::neulens::Policy,
        ) -> ::neulens::TileReport<TILES> {
            // SAFETY: the array types give exactly the lengths `__adaptive` needs for one worker.
            unsafe { __adaptive(input.as_ptr(), arena.as_mut_ptr(), output.as_mut_ptr(), policy, ::neulens::microflow::Exec::Threads(1)) }
        }

        /// `infer_adaptive` with the tiles spread over `threads` workers (scoped threads with
        /// neulens's `std` feature, else one after the other). `arena` needs at least
        /// `adaptive_arena_len(threads)` floats.
        #[allow(dead_code)]
        pub fn infer_adaptive_threads(
            input: &[f32; INPUT_LEN],
            arena: &mut [f32],
            output: &mut [f32; OUTPUT_LEN],
            policy: ::neulens::Policy,
            threads: usize,
        ) -> Result<::neulens::TileReport<TILES>, ::neulens::Error> {
            __adaptive_checked(input, arena, output, policy, ::neulens::microflow::Exec::Threads(threads))
        }

        /// `infer_adaptive_threads` on the threads of `pool` (started once, reused by every
        /// call). `arena` needs at least `adaptive_arena_len(pool.workers())` floats.
        #[allow(dead_code)]
        pub fn infer_adaptive_pool(
            input: &[f32; INPUT_LEN],
            arena: &mut [f32],
            output: &mut [f32; OUTPUT_LEN],
            policy: ::neulens::Policy,
            pool: &::neulens::parallel::Pool,
        ) -> Result<::neulens::TileReport<TILES>, ::neulens::Error> {
            __adaptive_checked(input, arena, output, policy, ::neulens::microflow::Exec::Pool(pool))
        }

        /// `__adaptive` on `exec`'s workers after checking the arena holds their regions.
        fn __adaptive_checked(
            input: &[f32; INPUT_LEN],
            arena: &mut [f32],
            output: &mut [f32; OUTPUT_LEN],
            policy: ::neulens::Policy,
            exec: ::neulens::microflow::Exec<'_>,
        ) -> Result<::neulens::TileReport<TILES>, ::neulens::Error> {
            let need = adaptive_arena_len(exec.workers());
            if arena.len() < need {
                return Err(::neulens::Error::ArenaLength { expected: need, found: arena.len() });
            }
            // SAFETY: lengths checked above (worker regions `0..exec.workers()`); the three
            // borrows are disjoint.
            Ok(unsafe { __adaptive(input.as_ptr(), arena.as_mut_ptr(), output.as_mut_ptr(), policy, exec) })
        }

        /// `infer_adaptive` over slices (errors instead of compile-time sizes).
        #[allow(dead_code)]
        pub fn infer_adaptive_slices(
            input: &[f32],
            arena: &mut [f32],
            output: &mut [f32],
            policy: ::neulens::Policy,
        ) -> Result<::neulens::TileReport<TILES>, ::neulens::Error> {
            let (input, arena, output) = ::neulens::slices_as_arrays::<INPUT_LEN, ADAPTIVE_ARENA_LEN, OUTPUT_LEN>(input, arena, output)?;
            Ok(infer_adaptive(input, arena, output, policy))
        }
    }
}

/// The C symbol of a model's entry point: `neulens_<name>_infer`.
pub fn c_symbol(model: &str) -> String {
    format!("neulens_{model}_infer")
}

/// A C header declaring the entry point emitted with `EmitOptions::c_api`, with the shapes and
/// sizes as `#define`s.
pub fn c_header(plan: &Plan, spec_label: &str) -> String {
    let up = plan.name.to_uppercase();
    let sym = c_symbol(&plan.name);
    let mut h = String::new();
    h.push_str(&format!(
        "/* Generated by neulens-codegen from {spec_label}. Do not edit. */\n\
         #ifndef NEULENS_{up}_H\n#define NEULENS_{up}_H\n\n"
    ));
    let defs = [
        ("INPUT_C", plan.input.c as u64),
        ("INPUT_H", plan.input.h as u64),
        ("INPUT_W", plan.input.w as u64),
        ("INPUT_LEN", plan.input.len() as u64),
        ("OUTPUT_C", plan.output.c as u64),
        ("OUTPUT_H", plan.output.h as u64),
        ("OUTPUT_W", plan.output.w as u64),
        ("OUTPUT_LEN", plan.output.len() as u64),
        ("ARENA_LEN", plan.arena_len as u64),
        ("ARENA_BYTES", plan.arena_bytes() as u64),
        ("WEIGHTS_BYTES", plan.weight_bytes() as u64),
    ];
    for (k, v) in defs {
        h.push_str(&format!("#define NEULENS_{up}_{k} {v}u\n"));
    }
    h.push_str(&format!("#define NEULENS_{up}_MACS {}ull\n\n", plan.macs));
    h.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    h.push_str(&format!(
        "/* Runs the model. input: NEULENS_{up}_INPUT_LEN floats (CHW), arena: NEULENS_{up}_ARENA_LEN\n"
    ));
    h.push_str(&format!(
        " * floats of scratch, output: NEULENS_{up}_OUTPUT_LEN floats; no overlap. Returns 0, or -1\n"
    ));
    h.push_str(" * when a pointer is NULL. Allocates nothing. */\n");
    h.push_str(&format!(
        "int {sym}(const float *input, float *arena, float *output);\n\n"
    ));
    h.push_str("#ifdef __cplusplus\n}\n#endif\n\n");
    h.push_str(&format!("#endif /* NEULENS_{up}_H */\n"));
    h
}

/// Formats tokens as readable Rust (deterministic).
pub fn pretty(tokens: &TokenStream, header: &str) -> String {
    let body = match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    };
    // Comments are not tokens: put the `infer` block's SAFETY argument back as a comment.
    let body = body.replacen(
        "\n    unsafe {\n",
        "\n    // SAFETY: every pointer is a base pointer plus a constant offset whose range is proven\n    \
         // within INPUT_LEN / ARENA_LEN / OUTPUT_LEN / WEIGHTS_LEN by the const assertions above;\n    \
         // BLOB is 64-byte aligned; a kernel's output never overlaps its inputs except the exact\n    \
         // in-place aliasing the eltwise kernels allow; `isa` is compiled in or detected.\n    \
         unsafe {\n",
        1,
    );
    format!("{header}\n{body}")
}

fn bound_of(b: &BufRef) -> (&'static str, usize) {
    let limit = match b.storage {
        Storage::Input => "INPUT_LEN",
        Storage::Output => "OUTPUT_LEN",
        Storage::Arena(_) => "ARENA_LEN",
    };
    (limit, b.end())
}

/// A read pointer expression for a buffer.
fn rd(b: &BufRef) -> TokenStream {
    let o = b.start();
    let base = match b.storage {
        Storage::Input => quote!(x),
        Storage::Output => quote!(yr),
        Storage::Arena(_) => quote!(ar),
    };
    if o == 0 {
        base
    } else {
        quote!(#base.add(#o))
    }
}

/// A write pointer expression for a buffer (never the input).
fn wr(b: &BufRef) -> TokenStream {
    let o = b.start();
    let base = match b.storage {
        Storage::Output | Storage::Input => quote!(y),
        Storage::Arena(_) => quote!(a),
    };
    if o == 0 {
        base
    } else {
        quote!(#base.add(#o))
    }
}

/// `const ID: ConvParams = ...;` plus assertions that its lengths match the planned buffers
/// (shared by the direct and the Winograd calls).
fn conv_params_item(id: &proc_macro2::Ident, p: &ConvParams, il: usize, ol: usize) -> TokenStream {
    let (ci, hi, wi, co, ho, wo) = (p.c_in, p.h_in, p.w_in, p.c_out, p.h_out, p.w_out);
    let (kh, kw, sh, sw, pt, pl, g) = (p.kh, p.kw, p.sh, p.sw, p.pad_top, p.pad_left, p.groups);
    let act = kact_tokens(p.act);
    quote! {
        const #id: ::neulens::kernels::conv::ConvParams = ::neulens::kernels::conv::ConvParams {
            c_in: #ci, h_in: #hi, w_in: #wi, c_out: #co, h_out: #ho, w_out: #wo,
            kh: #kh, kw: #kw, sh: #sh, sw: #sw, pad_top: #pt, pad_left: #pl,
            groups: #g, act: #act,
        };
        ::neulens::__private::static_assertions::const_assert!(#id.input_len() == #il);
        ::neulens::__private::static_assertions::const_assert!(#id.output_len() == #ol);
    }
}

/// `const ID: Window = ...;` plus assertions that it fits and matches the buffers.
fn window_item(
    id: &proc_macro2::Ident,
    p: &neulens_kernels::eltwise::Window,
    src_len: usize,
    dst_len: usize,
) -> TokenStream {
    let lit = window_lit(p);
    quote! {
        const #id: ::neulens::kernels::eltwise::Window = #lit;
        ::neulens::__private::static_assertions::const_assert!(#id.fits());
        ::neulens::__private::static_assertions::const_assert!(#id.src_len() == #src_len);
        ::neulens::__private::static_assertions::const_assert!(#id.dst_len() == #dst_len);
    }
}

/// The scratch pointer argument of a kernel call (null when it needs none).
fn scratch_ptr(scratch: &Option<BufRef>) -> TokenStream {
    match scratch {
        Some(s) => wr(s),
        None => quote!(core::ptr::null_mut()),
    }
}

fn wptr(o: usize) -> TokenStream {
    if o == 0 {
        quote!(w)
    } else {
        quote!(w.add(#o))
    }
}

fn kact_tokens(a: neulens_kernels::Act) -> TokenStream {
    match a {
        neulens_kernels::Act::None => quote!(::neulens::kernels::Act::None),
        neulens_kernels::Act::Relu => quote!(::neulens::kernels::Act::Relu),
        neulens_kernels::Act::Relu6 => quote!(::neulens::kernels::Act::Relu6),
    }
}

fn gact_tokens(a: crate::graph::Act) -> TokenStream {
    match a {
        crate::graph::Act::None => quote!(::neulens::kernels::Act::None),
        crate::graph::Act::Relu => quote!(::neulens::kernels::Act::Relu),
        crate::graph::Act::Relu6 => quote!(::neulens::kernels::Act::Relu6),
    }
}
