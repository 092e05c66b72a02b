//! Generates 56 random valid specs (own PRNG, fixed seeds, shapes tracked here) and compiles them,
//! plus every shipped spec in ../specs, into OUT_DIR/models; OUT_DIR/models.rs lists them all.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many random specs to generate (the tests assert at least 48).
const RANDOM_SPECS: usize = 56;
/// MAC budget of one random spec (by this generator's count: conv and dense multiply-adds).
const MAX_MACS: u64 = 2_000_000;
/// Input sizes (height, width): odd, non-square, degenerate 1×1 and up to 40×40.
const SIZES: &[(usize, usize)] = &[
    (1, 1),
    (3, 5),
    (7, 7),
    (13, 9),
    (31, 31),
    (5, 3),
    (9, 13),
    (17, 11),
    (40, 40),
    (21, 27),
    (1, 7),
    (11, 1),
    (2, 2),
    (33, 35),
    (15, 15),
    (6, 10),
];
const CHANNELS: &[usize] = &[1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64];
/// Features every generated suite must contain; checked after generation.
const REQUIRED: &[&str] = &[
    "depth_1",
    "depth_12",
    "in_c_1",
    "in_c_64",
    "in_1x1",
    "in_odd_nonsquare",
    "in_31x31",
    "kernel_1",
    "kernel_2",
    "kernel_3",
    "kernel_4",
    "kernel_5",
    "kernel_6",
    "kernel_7",
    "kernel_nonsquare",
    "stride_1",
    "stride_2",
    "stride_3",
    "stride_4",
    "stride_nonsquare",
    "pad_sym",
    "pad_hw",
    "pad_asym",
    "groups",
    "depthwise_m1",
    "depthwise_m2",
    "no_bias",
    "bn_fold",
    "bn_after_add",
    "bn_unfoldable_other",
    "maxpool_pad",
    "avgpool_pad_cip_true",
    "avgpool_pad_cip_false",
    "avgpool_cip_default",
    "pool_stride_default",
    "pool_nonsquare",
    "add2",
    "add3",
    "add_downsample",
    "concat2",
    "concat3",
    "concat_identity",
    "gap",
    "global_max",
    "conv_global_max",
    "flatten",
    "dense",
    "dense_on_map",
    "softmax",
    "act_none",
    "act_relu",
    "act_relu6",
];

// ---------------------------------------------------------------------------------------------
// PRNG: splitmix64, enough for choosing spec parameters.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ SEED_MIX)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Mixed into every seed so that spec i does not share a stream with the weight seeds.
const SEED_MIX: u64 = 0x6e65_756c_656e_7321;

// ---------------------------------------------------------------------------------------------
// Shapes and ops, tracked here so that every generated spec is valid.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    c: usize,
    h: usize,
    w: usize,
}

impl Shape {
    fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
}

/// What produced a value (decides whether a following batchnorm folds into a conv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Producer {
    /// A conv without activation whose only consumer will be the next layer.
    ConvNoAct,
    Other,
}

#[derive(Clone, Debug)]
struct Val {
    name: String,
    s: Shape,
    producer: Producer,
}

#[derive(Clone, Copy, Debug)]
struct Conv {
    out: usize,
    k: [usize; 2],
    stride: [usize; 2],
    /// top, left, bottom, right
    pad: [usize; 4],
    groups: usize,
}

impl Conv {
    fn out_shape(&self, s: Shape) -> Option<Shape> {
        let hp = s.h + self.pad[0] + self.pad[2];
        let wp = s.w + self.pad[1] + self.pad[3];
        if hp < self.k[0]
            || wp < self.k[1]
            || !divides(self.groups, s.c)
            || !divides(self.groups, self.out)
        {
            return None;
        }
        Some(Shape {
            c: self.out,
            h: (hp - self.k[0]) / self.stride[0] + 1,
            w: (wp - self.k[1]) / self.stride[1] + 1,
        })
    }
    fn macs(&self, s: Shape) -> u64 {
        match self.out_shape(s) {
            Some(o) => (o.len() * (s.c / self.groups) * self.k[0] * self.k[1]) as u64,
            None => u64::MAX,
        }
    }
    /// A stride-1 conv that keeps height and width (even kernels pad more at the bottom/right).
    fn same(out: usize, k: [usize; 2], groups: usize) -> Conv {
        Conv {
            out,
            k,
            stride: [1, 1],
            pad: [(k[0] - 1) / 2, (k[1] - 1) / 2, k[0] / 2, k[1] / 2],
            groups,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pool {
    max: bool,
    k: [usize; 2],
    /// None: the default (= kernel).
    stride: Option<[usize; 2]>,
    pad: [usize; 4],
    /// None: not written (the default).
    cip: Option<bool>,
}

impl Pool {
    fn out_shape(&self, s: Shape) -> Option<Shape> {
        let st = self.stride.unwrap_or(self.k);
        let hp = s.h + self.pad[0] + self.pad[2];
        let wp = s.w + self.pad[1] + self.pad[3];
        if hp < self.k[0] || wp < self.k[1] {
            return None;
        }
        Some(Shape {
            c: s.c,
            h: (hp - self.k[0]) / st[0] + 1,
            w: (wp - self.k[1]) / st[1] + 1,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Conv,
    ConvBn,
    Depthwise,
    Grouped,
    Pool,
    BnLone,
    Res2,
    Res3,
    ResDown,
    Concat,
}

const THEMES: &[Block] = &[
    Block::Res2,
    Block::Concat,
    Block::Res3,
    Block::Depthwise,
    Block::ResDown,
    Block::Pool,
    Block::ConvBn,
    Block::Grouped,
    Block::BnLone,
    Block::Conv,
];

fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| divides(d, n)).collect()
}

/// `d` divides `n` (spelled with `checked_rem`: `is_multiple_of` is newer than the MSRV, 1.85).
fn divides(d: usize, n: usize) -> bool {
    n.checked_rem(d) == Some(0)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen {
    rng: Rng,
    lines: Vec<String>,
    /// The previously written layer (the default input of the next one).
    prev: String,
    macs: u64,
    feats: BTreeSet<&'static str>,
    next_id: usize,
}

impl Gen {
    fn left(&self) -> u64 {
        MAX_MACS.saturating_sub(self.macs)
    }

    fn fresh(&mut self, kind: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        if id % 3 == 2 {
            format!("blk{id}.{kind}")
        } else {
            format!("{kind}_{id}")
        }
    }

    fn feat(&mut self, f: &'static str) {
        self.feats.insert(f);
    }

    /// Writes one layer; `fields` are everything after the name, without inputs.
    fn layer(
        &mut self,
        kind: &str,
        fields: String,
        inputs: &[&Val],
        s: Shape,
        producer: Producer,
    ) -> Val {
        let name = self.fresh(kind);
        let mut line = format!("  - {{ name: {name}, {fields}");
        let implicit = inputs.len() == 1 && inputs[0].name == self.prev;
        if !implicit || self.rng.chance(20) {
            let names: Vec<&str> = inputs.iter().map(|v| v.name.as_str()).collect();
            let _ = write!(line, ", inputs: [{}]", names.join(", "));
        }
        line.push_str(" }");
        self.lines.push(line);
        self.prev = name.clone();
        Val { name, s, producer }
    }

    fn random_act(&mut self) -> &'static str {
        self.rng.pick(&["none", "relu", "relu6"])
    }

    /// `, act: X` (or nothing for a default `none`).
    fn act_field(&mut self, act: &'static str) -> String {
        self.feat(match act {
            "relu" => "act_relu",
            "relu6" => "act_relu6",
            _ => "act_none",
        });
        if act == "none" && self.rng.chance(60) {
            String::new()
        } else {
            format!(", act: {act}")
        }
    }

    fn pair(&mut self, key: &str, v: [usize; 2], omit_if: Option<usize>) -> String {
        if v[0] == v[1] {
            if Some(v[0]) == omit_if && self.rng.chance(60) {
                return String::new();
            }
            if self.rng.chance(85) {
                return format!(", {key}: {}", v[0]);
            }
        }
        format!(", {key}: [{}, {}]", v[0], v[1])
    }

    fn pad_field(&mut self, p: [usize; 4]) -> String {
        let [t, l, b, r] = p;
        if t == b && l == r {
            if t == 0 && l == 0 && self.rng.chance(60) {
                return String::new();
            }
            if t == l && self.rng.chance(80) {
                if t > 0 {
                    self.feat("pad_sym");
                }
                return format!(", pad: {t}");
            }
            if t != l {
                self.feat("pad_hw");
            }
            return format!(", pad: [{t}, {l}]");
        }
        self.feat("pad_asym");
        format!(", pad: [{t}, {l}, {b}, {r}]")
    }

    fn conv(&mut self, x: &Val, c: Conv, act: &'static str) -> Val {
        let s = c.out_shape(x.s).expect("generator made an invalid conv");
        self.macs += c.macs(x.s);
        for k in c.k {
            self.feat(
                [
                    "kernel_0", "kernel_1", "kernel_2", "kernel_3", "kernel_4", "kernel_5",
                    "kernel_6", "kernel_7",
                ][k],
            );
        }
        for st in c.stride {
            self.feat(["stride_0", "stride_1", "stride_2", "stride_3", "stride_4"][st]);
        }
        if c.k[0] != c.k[1] {
            self.feat("kernel_nonsquare");
        }
        if c.stride[0] != c.stride[1] {
            self.feat("stride_nonsquare");
        }
        let mut f = format!("op: conv, out: {}", c.out);
        f += &self.pair("kernel", c.k, None);
        f += &self.pair("stride", c.stride, Some(1));
        f += &self.pad_field(c.pad);
        if c.groups > 1 {
            if c.groups == x.s.c {
                self.feat(if c.out == c.groups {
                    "depthwise_m1"
                } else if c.out == 2 * c.groups {
                    "depthwise_m2"
                } else {
                    "groups"
                });
            } else {
                self.feat("groups");
            }
            f += &format!(", groups: {}", c.groups);
        } else if self.rng.chance(10) {
            f += ", groups: 1";
        }
        if self.rng.chance(25) {
            self.feat("no_bias");
            f += ", bias: false";
        } else if self.rng.chance(10) {
            f += ", bias: true";
        }
        if self.rng.chance(12) {
            f += ", algo: direct";
        } else if self.rng.chance(5) {
            f += ", algo: auto";
        }
        f += &self.act_field(act);
        let producer = if act == "none" {
            Producer::ConvNoAct
        } else {
            Producer::Other
        };
        self.layer("conv", f, &[x], s, producer)
    }

    fn batchnorm(&mut self, x: &Val, act: &'static str) -> Val {
        let mut f = "op: batchnorm".to_string();
        if self.rng.chance(25) {
            f += ", eps: 0.001";
        }
        f += &self.act_field(act);
        self.layer("bn", f, &[x], x.s, Producer::Other)
    }

    fn pool(&mut self, x: &Val, p: Pool, act: &'static str) -> Val {
        let s = p.out_shape(x.s).expect("generator made an invalid pool");
        let padded = p.pad.iter().any(|&v| v > 0);
        if p.k[0] != p.k[1] {
            self.feat("pool_nonsquare");
        }
        if p.stride.is_none() {
            self.feat("pool_stride_default");
        }
        let mut f = format!("op: {}", if p.max { "maxpool" } else { "avgpool" });
        f += &self.pair("kernel", p.k, None);
        if let Some(st) = p.stride {
            f += &self.pair("stride", st, None);
        }
        f += &self.pad_field(p.pad);
        match (p.max, p.cip) {
            (true, _) => {
                if padded {
                    self.feat("maxpool_pad");
                }
            }
            (false, Some(cip)) => {
                if padded {
                    self.feat(if cip {
                        "avgpool_pad_cip_true"
                    } else {
                        "avgpool_pad_cip_false"
                    });
                }
                f += &format!(", count_include_pad: {cip}");
            }
            (false, None) => {
                if padded {
                    self.feat("avgpool_cip_default");
                }
            }
        }
        f += &self.act_field(act);
        self.layer("pool", f, &[x], s, Producer::Other)
    }

    fn add(&mut self, ins: &[&Val], act: &'static str) -> Val {
        self.feat(if ins.len() == 2 { "add2" } else { "add3" });
        let f = format!("op: add{}", self.act_field(act));
        self.layer("add", f, ins, ins[0].s, Producer::Other)
    }

    fn concat(&mut self, ins: &[&Val]) -> Val {
        self.feat(if ins.len() == 2 { "concat2" } else { "concat3" });
        let s = Shape {
            c: ins.iter().map(|v| v.s.c).sum(),
            h: ins[0].s.h,
            w: ins[0].s.w,
        };
        self.layer("cat", "op: concat".into(), ins, s, Producer::Other)
    }

    fn gap(&mut self, x: &Val, act: &'static str) -> Val {
        self.feat("gap");
        let f = format!("op: global_avg_pool{}", self.act_field(act));
        self.layer(
            "gap",
            f,
            &[x],
            Shape {
                c: x.s.c,
                h: 1,
                w: 1,
            },
            Producer::Other,
        )
    }

    /// A max pool over the whole map (kernel = map size, unpadded). After a conv with no
    /// activation on the pool the planner fuses the two (`conv_global_max`).
    fn global_max(&mut self, x: &Val, act: &'static str) -> Val {
        self.feat("global_max");
        let conv = x.name.starts_with("conv_") || x.name.ends_with(".conv");
        if conv && act == "none" {
            self.feat("conv_global_max");
        }
        let p = Pool {
            max: true,
            k: [x.s.h, x.s.w],
            stride: None,
            pad: [0; 4],
            cip: None,
        };
        self.pool(x, p, act)
    }

    fn flatten(&mut self, x: &Val) -> Val {
        self.feat("flatten");
        self.layer(
            "flat",
            "op: flatten".into(),
            &[x],
            Shape {
                c: x.s.len(),
                h: 1,
                w: 1,
            },
            Producer::Other,
        )
    }

    /// A dense layer with as many outputs as fit the budget (None when not even one does).
    fn dense(&mut self, x: &Val, max_out: usize, act: &'static str) -> Option<Val> {
        let cap = (self.left() / x.s.len() as u64).min(max_out as u64) as usize;
        if cap == 0 {
            return None;
        }
        let out = self.rng.range(1, cap);
        self.macs += (out * x.s.len()) as u64;
        self.feat("dense");
        if x.s.h * x.s.w > 1 {
            self.feat("dense_on_map");
        }
        let mut f = format!("op: dense, out: {out}");
        if self.rng.chance(20) {
            self.feat("no_bias");
            f += ", bias: false";
        }
        f += &self.act_field(act);
        Some(self.layer("fc", f, &[x], Shape { c: out, h: 1, w: 1 }, Producer::Other))
    }

    fn softmax(&mut self, x: &Val) -> Val {
        self.feat("softmax");
        self.layer("softmax", "op: softmax".into(), &[x], x.s, Producer::Other)
    }

    // --- random choices -----------------------------------------------------------------------

    /// A general conv (any kernel, stride, padding, groups) within `budget` MACs.
    fn random_conv(&mut self, s: Shape, budget: u64) -> Option<Conv> {
        for _ in 0..64 {
            let kh = self.rng.pick(&[1, 1, 2, 3, 3, 3, 4, 5, 5, 6, 7]);
            let kw = if self.rng.chance(70) {
                kh
            } else {
                self.rng.range(1, 7)
            };
            let sh = self.rng.pick(&[1, 1, 1, 2, 2, 3, 4]);
            let sw = if self.rng.chance(70) {
                sh
            } else {
                self.rng.range(1, 4)
            };
            let (mh, mw) = ((kh - 1).min(3), (kw - 1).min(3));
            let pad = match self.rng.range(0, 3) {
                0 => [0; 4],
                1 => [self.rng.range(0, mh.min(mw)); 4],
                2 => {
                    let (ph, pw) = (self.rng.range(0, mh), self.rng.range(0, mw));
                    [ph, pw, ph, pw]
                }
                _ => [
                    self.rng.range(0, mh),
                    self.rng.range(0, mw),
                    self.rng.range(0, mh),
                    self.rng.range(0, mw),
                ],
            };
            let groups = if s.c > 1 && self.rng.chance(25) {
                let d = divisors(s.c);
                self.rng.pick(&d[1..])
            } else {
                1
            };
            let probe = Conv {
                out: groups,
                k: [kh, kw],
                stride: [sh, sw],
                pad,
                groups,
            };
            let per_group_out = probe.macs(s);
            if per_group_out > budget {
                continue;
            }
            let cap = ((budget / per_group_out) as usize).min((48 / groups).max(2));
            let out = groups * self.rng.range(1, cap);
            return Some(Conv { out, ..probe });
        }
        None
    }

    /// A shape-keeping conv with `out` channels within `budget` MACs (groups dividing both ends).
    fn same_conv(&mut self, s: Shape, out: usize, budget: u64) -> Option<Conv> {
        let g = gcd(s.c, out);
        let ds = divisors(g);
        for _ in 0..16 {
            let kh = self.rng.pick(&[1, 3, 3, 3, 5, 2, 4, 7]);
            let kw = if self.rng.chance(75) {
                kh
            } else {
                self.rng.pick(&[1, 3, 5, 2])
            };
            let groups = if self.rng.chance(70) {
                1
            } else {
                self.rng.pick(&ds)
            };
            let c = Conv::same(out, [kh, kw], groups);
            if c.macs(s) <= budget {
                return Some(c);
            }
        }
        let c = Conv::same(out, [1, 1], g);
        (c.macs(s) <= budget).then_some(c)
    }

    fn random_pool(&mut self, s: Shape) -> Option<Pool> {
        for _ in 0..32 {
            let max = self.rng.chance(50);
            let kh = self.rng.range(1, 4);
            let kw = if self.rng.chance(70) {
                kh
            } else {
                self.rng.range(1, 4)
            };
            let stride = if self.rng.chance(40) {
                None
            } else {
                let sh = self.rng.range(1, 3);
                Some([
                    sh,
                    if self.rng.chance(70) {
                        sh
                    } else {
                        self.rng.range(1, 3)
                    },
                ])
            };
            let (mh, mw) = (kh / 2, kw / 2);
            let pad = match self.rng.range(0, 3) {
                0 => [0; 4],
                1 => [self.rng.range(0, mh.min(mw)); 4],
                2 => {
                    let (ph, pw) = (self.rng.range(0, mh), self.rng.range(0, mw));
                    [ph, pw, ph, pw]
                }
                _ => [
                    self.rng.range(0, mh),
                    self.rng.range(0, mw),
                    self.rng.range(0, mh),
                    self.rng.range(0, mw),
                ],
            };
            let cip = if max {
                None
            } else {
                self.rng.pick(&[None, Some(true), Some(false)])
            };
            let p = Pool {
                max,
                k: [kh, kw],
                stride,
                pad,
                cip,
            };
            if p.out_shape(s).is_some() {
                return Some(p);
            }
        }
        None
    }

    // --- blocks ---------------------------------------------------------------------------------

    /// Appends one block of at most `room` layers; None (and nothing written) when it does not fit.
    fn block(&mut self, b: Block, x: &Val, room: usize) -> Option<Val> {
        let s = x.s;
        match b {
            Block::Conv => {
                let c = self.random_conv(s, self.left())?;
                let act = self.random_act();
                Some(self.conv(x, c, act))
            }
            Block::ConvBn => {
                if room < 2 {
                    return None;
                }
                let c = self.random_conv(s, self.left())?;
                // Mostly a foldable pair; sometimes the conv has its own activation (not foldable).
                let cact = if self.rng.chance(15) { "relu" } else { "none" };
                if cact != "none" {
                    self.feat("bn_unfoldable_other");
                } else {
                    self.feat("bn_fold");
                }
                let y = self.conv(x, c, cact);
                let act = self.random_act();
                Some(self.batchnorm(&y, act))
            }
            Block::Depthwise => {
                let mult = self.rng.pick(&[1, 1, 2]);
                let k = self
                    .rng
                    .pick(&[[3, 3], [3, 3], [5, 5], [3, 1], [1, 3], [7, 7], [2, 2]]);
                let stride = self.rng.pick(&[1, 1, 2]);
                let mut c = Conv::same(s.c * mult, k, s.c);
                c.stride = [stride, stride];
                if c.macs(s) > self.left() {
                    c = Conv::same(s.c * mult, [1, 1], s.c);
                    if c.macs(s) > self.left() {
                        return None;
                    }
                }
                let act = self.random_act();
                let y = self.conv(x, c, act);
                if room >= 2 && self.rng.chance(50) {
                    let out = self.rng.range(1, 32);
                    let pw = Conv::same(out, [1, 1], 1);
                    if pw.macs(y.s) <= self.left() {
                        let act = self.random_act();
                        return Some(self.conv(&y, pw, act));
                    }
                }
                Some(y)
            }
            Block::Grouped => {
                let ds = divisors(s.c);
                let inner: Vec<usize> = ds.iter().copied().filter(|&d| d > 1 && d < s.c).collect();
                if inner.is_empty() {
                    return None;
                }
                let g = self.rng.pick(&inner);
                let k = self.rng.pick(&[[1, 1], [3, 3], [3, 3], [5, 3], [2, 2]]);
                let stride = self.rng.pick(&[[1, 1], [1, 1], [2, 2], [2, 1]]);
                for m in [self.rng.range(1, 3), 1] {
                    let mut c = Conv::same(g * m * (s.c / g).min(4), k, g);
                    c.stride = stride;
                    if c.macs(s) <= self.left() {
                        let act = self.random_act();
                        return Some(self.conv(x, c, act));
                    }
                }
                None
            }
            Block::Pool => {
                let p = self.random_pool(s)?;
                let act = if self.rng.chance(25) {
                    self.random_act()
                } else {
                    "none"
                };
                Some(self.pool(x, p, act))
            }
            Block::BnLone => {
                if x.producer == Producer::ConvNoAct {
                    self.feat("bn_fold");
                } else {
                    self.feat("bn_unfoldable_other");
                }
                let act = self.random_act();
                Some(self.batchnorm(x, act))
            }
            Block::Res2 => {
                let n = if room >= 3 && self.rng.chance(50) {
                    2
                } else {
                    1
                };
                if room < n + 1 || (n * s.len()) as u64 > self.left() {
                    return None;
                }
                let mut extra = room - n - 1;
                let mut cur = x.clone();
                for i in 0..n {
                    let reserve = ((n - 1 - i) * s.len()) as u64;
                    let c = self
                        .same_conv(cur.s, s.c, self.left() - reserve)
                        .expect("reserved");
                    let bn = extra > 0 && self.rng.chance(60);
                    let act = if bn || i + 1 == n {
                        "none"
                    } else {
                        self.random_act()
                    };
                    cur = self.conv(&cur, c, act);
                    if bn {
                        extra -= 1;
                        self.feat("bn_fold");
                        let act = if i + 1 == n {
                            "none"
                        } else {
                            self.random_act()
                        };
                        cur = self.batchnorm(&cur, act);
                    }
                }
                let act = self.random_act();
                let y = if self.rng.chance(50) {
                    self.add(&[&cur, x], act)
                } else {
                    self.add(&[x, &cur], act)
                };
                if extra > 0 && self.rng.chance(50) {
                    self.feat("bn_after_add");
                    let act = self.random_act();
                    return Some(self.batchnorm(&y, act));
                }
                Some(y)
            }
            Block::Res3 => {
                if room < 3 {
                    return None;
                }
                let mut branches = Vec::new();
                for _ in 0..2 {
                    let b = match self.rng.range(0, 3) {
                        0 | 1 => match self.same_conv(s, s.c, self.left()) {
                            Some(c) => {
                                let act = self.random_act();
                                self.conv(x, c, act)
                            }
                            None => self.pool(
                                x,
                                Pool {
                                    max: true,
                                    k: [3, 3],
                                    stride: Some([1, 1]),
                                    pad: [1; 4],
                                    cip: None,
                                },
                                "none",
                            ),
                        },
                        2 => self.pool(
                            x,
                            Pool {
                                max: true,
                                k: [3, 3],
                                stride: Some([1, 1]),
                                pad: [1; 4],
                                cip: None,
                            },
                            "none",
                        ),
                        _ => {
                            let cip = self.rng.pick(&[Some(false), Some(true), None]);
                            self.pool(
                                x,
                                Pool {
                                    max: false,
                                    k: [3, 3],
                                    stride: Some([1, 1]),
                                    pad: [1; 4],
                                    cip,
                                },
                                "none",
                            )
                        }
                    };
                    branches.push(b);
                }
                let act = self.random_act();
                let y = match self.rng.range(0, 2) {
                    0 => self.add(&[&branches[0], &branches[1], x], act),
                    1 => self.add(&[x, &branches[0], &branches[1]], act),
                    _ => self.add(&[&branches[1], x, &branches[0]], act),
                };
                if room >= 4 && self.rng.chance(50) {
                    self.feat("bn_after_add");
                    let act = self.random_act();
                    return Some(self.batchnorm(&y, act));
                }
                Some(y)
            }
            Block::ResDown => {
                if room < 3 {
                    return None;
                }
                let keras = divides(2, s.h) && divides(2, s.w) && self.rng.chance(50);
                let with_second = room >= 4 && self.rng.chance(50);
                let mut main = Conv {
                    out: 0,
                    k: [3, 3],
                    stride: [2, 2],
                    pad: [1; 4],
                    groups: 1,
                };
                if keras {
                    main.pad = [0, 0, 1, 1];
                }
                let short = Conv {
                    out: 0,
                    k: [1, 1],
                    stride: [2, 2],
                    pad: [0; 4],
                    groups: 1,
                };
                let mut cands = vec![2 * s.c, s.c, s.c.div_ceil(2), 4, 1];
                cands.retain(|&c| c <= 64);
                let c2 = cands.into_iter().find(|&c2| {
                    let m = Conv { out: c2, ..main };
                    let sc = Conv { out: c2, ..short };
                    let o = m.out_shape(s).expect("valid");
                    let second = if with_second {
                        Conv::same(c2, [3, 3], 1).macs(o)
                    } else {
                        0
                    };
                    m.macs(s) + sc.macs(s) + second <= self.left()
                })?;
                self.feat("add_downsample");
                let mut extra = room - 3;
                let bn1 = extra > 0 && self.rng.chance(50);
                let mut cur = self.conv(
                    x,
                    Conv { out: c2, ..main },
                    if bn1 { "none" } else { "relu" },
                );
                if bn1 {
                    extra -= 1;
                    self.feat("bn_fold");
                    cur = self.batchnorm(&cur, "relu");
                }
                if with_second && extra > 0 {
                    extra -= 1;
                    cur = self.conv(&cur, Conv::same(c2, [3, 3], 1), "none");
                    if extra > 0 && self.rng.chance(50) {
                        self.feat("bn_fold");
                        cur = self.batchnorm(&cur, "none");
                    }
                }
                let sc = self.conv(x, Conv { out: c2, ..short }, "none");
                let act = self.random_act();
                Some(if self.rng.chance(50) {
                    self.add(&[&cur, &sc], act)
                } else {
                    self.add(&[&sc, &cur], act)
                })
            }
            Block::Concat => {
                if room < 2 {
                    return None;
                }
                let nb = if room >= 3 && self.rng.chance(50) {
                    3
                } else {
                    2
                };
                let mut branches: Vec<Val> = Vec::new();
                let mut used_identity = false;
                let mut layers_left = room - 1;
                while branches.len() < nb {
                    let kind = self.rng.range(0, 4);
                    if (kind == 0 && !used_identity) || layers_left == 0 {
                        if used_identity {
                            break;
                        }
                        used_identity = true;
                        self.feat("concat_identity");
                        branches.push(x.clone());
                        continue;
                    }
                    layers_left -= 1;
                    let b = match kind {
                        1 | 0 => {
                            let out = self.rng.range(1, 16);
                            match self.same_conv(s, out, self.left()) {
                                Some(c) => {
                                    let act = self.random_act();
                                    self.conv(x, c, act)
                                }
                                None => self.pool(
                                    x,
                                    Pool {
                                        max: true,
                                        k: [3, 3],
                                        stride: Some([1, 1]),
                                        pad: [1; 4],
                                        cip: None,
                                    },
                                    "none",
                                ),
                            }
                        }
                        2 => self.pool(
                            x,
                            Pool {
                                max: true,
                                k: [3, 3],
                                stride: Some([1, 1]),
                                pad: [1; 4],
                                cip: None,
                            },
                            "none",
                        ),
                        _ => {
                            let cip = self.rng.pick(&[Some(false), Some(true), None]);
                            let act = if self.rng.chance(30) { "relu" } else { "none" };
                            self.pool(
                                x,
                                Pool {
                                    max: false,
                                    k: [3, 3],
                                    stride: Some([1, 1]),
                                    pad: [1; 4],
                                    cip,
                                },
                                act,
                            )
                        }
                    };
                    branches.push(b);
                }
                if branches.len() < 2 {
                    // Only possible with room == 1 after the identity: concat the input with itself.
                    branches.push(x.clone());
                }
                let refs: Vec<&Val> = branches.iter().collect();
                let y = self.concat(&refs);
                if layers_left > 0 && self.rng.chance(30) {
                    self.feat("bn_unfoldable_other");
                    let act = self.random_act();
                    return Some(self.batchnorm(&y, act));
                }
                Some(y)
            }
        }
    }

    /// A layer that always fits: batchnorm (cheap, any shape).
    fn filler(&mut self, x: &Val) -> Val {
        self.block(Block::BnLone, x, 1)
            .expect("batchnorm always fits")
    }
}

/// Generates random spec `i`: returns the YAML text and the features it covers.
fn random_spec(i: usize) -> (String, BTreeSet<&'static str>, u64, usize) {
    let seed = 1000 + i as u64;
    let mut g = Gen {
        rng: Rng::new(seed),
        lines: Vec::new(),
        prev: "input".into(),
        macs: 0,
        feats: BTreeSet::new(),
        next_id: 0,
    };
    let (h, w) = SIZES[i % SIZES.len()];
    let c = CHANNELS[(i * 5 + i / CHANNELS.len()) % CHANNELS.len()];
    let input = Val {
        name: "input".into(),
        s: Shape { c, h, w },
        producer: Producer::Other,
    };
    match (c, h, w) {
        (1, _, _) => g.feat("in_c_1"),
        (64, _, _) => g.feat("in_c_64"),
        _ => {}
    }
    if (h, w) == (1, 1) {
        g.feat("in_1x1");
    }
    if (h, w) == (31, 31) {
        g.feat("in_31x31");
    }
    if h != w && h % 2 == 1 && w % 2 == 1 {
        g.feat("in_odd_nonsquare");
    }
    let depth = 1 + (i * 5) % 12;
    let mut x = input.clone();
    let mut count = 0;
    if depth == 1 {
        // One layer of any kind.
        x = match i % 4 {
            0 => g.block(Block::Conv, &x, 1),
            1 => g.dense(&x, 16, "relu"),
            2 => Some(g.gap(&x, "none")),
            _ => g.block(Block::Pool, &x, 1),
        }
        .unwrap_or_else(|| g.filler(&input));
        count = 1;
    } else {
        let head = g.rng.range(0, 3.min(depth - 1));
        let body = depth - head;
        let theme = THEMES[i % THEMES.len()];
        let mut first = true;
        while count < body {
            let room = body - count;
            let b = if first {
                theme
            } else {
                g.rng.pick(&[
                    Block::Conv,
                    Block::Conv,
                    Block::ConvBn,
                    Block::Depthwise,
                    Block::Grouped,
                    Block::Pool,
                    Block::BnLone,
                    Block::Res2,
                    Block::Res2,
                    Block::Res3,
                    Block::ResDown,
                    Block::Concat,
                    Block::Concat,
                ])
            };
            first = false;
            let before = g.lines.len();
            x = match g.block(b, &x, room) {
                Some(y) => y,
                None if g.rng.chance(50) => continue,
                None => g.filler(&x),
            };
            count += g.lines.len() - before;
            assert!(count <= body, "block {b:?} overran its room");
        }
        // The head: up to `head` layers.
        let before = g.lines.len();
        match (head, g.rng.range(0, 3)) {
            (0, _) => {}
            (1, 0) => x = g.softmax(&x),
            (1, 1) if i.is_multiple_of(2) => x = g.global_max(&x, "none"),
            (1, 1) => x = g.gap(&x, "none"),
            (1, _) => {
                if let Some(y) = g.dense(&x, 24, "none") {
                    x = y;
                }
            }
            (_, v) => {
                let pre = match v {
                    0 => {
                        let act = if g.rng.chance(30) { "relu" } else { "none" };
                        // Every other spec pools by the maximum, after a conv where one fits
                        // (the conv and the pool are then fused by the planner).
                        Some(if i.is_multiple_of(2) {
                            if !(x.name.starts_with("conv_") || x.name.ends_with(".conv")) {
                                if let Some(y) = g.block(Block::Conv, &x, 1) {
                                    x = y;
                                }
                            }
                            g.global_max(&x, act)
                        } else {
                            g.gap(&x, act)
                        })
                    }
                    1 if x.s.hw() > 1 || g.rng.chance(50) => Some(g.flatten(&x)),
                    _ => None,
                };
                if let Some(p) = pre {
                    x = p;
                }
                let room = head - (g.lines.len() - before);
                if room > 0 {
                    let act = if room > 1 && g.rng.chance(40) {
                        g.random_act()
                    } else {
                        "none"
                    };
                    if let Some(y) = g.dense(&x, 32, act) {
                        x = y;
                    }
                }
                if head - (g.lines.len() - before) > 0 {
                    x = g.softmax(&x);
                }
            }
        }
        count += g.lines.len() - before;
        while count < depth {
            x = g.filler(&x);
            count += 1;
        }
    }
    let _ = x;
    let depth_feat = [
        "depth_0", "depth_1", "depth_2", "depth_3", "depth_4", "depth_5", "depth_6", "depth_7",
        "depth_8", "depth_9", "depth_10", "depth_11", "depth_12",
    ];
    g.feat(depth_feat[count]);
    let mut text = format!(
        "# Generated by neulens-tests/build.rs (random spec {i}, generator seed {seed}); do not edit.\n\
         # {} layers, ~{} MACs.\n\
         name: rand_{i:02}\n\
         input: {{ channels: {c}, height: {h}, width: {w} }}\n\
         weights: {{ random: {} }}\n",
        count,
        g.macs,
        7000 + i
    );
    if divides(5, i) {
        text += "budget: { arena_bytes: 67108864 }\n";
    }
    text += "layers:\n";
    for l in &g.lines {
        text += l;
        text += "\n";
    }
    (text, g.feats, g.macs, count)
}

// ---------------------------------------------------------------------------------------------
// Compiling every spec and listing the models.

/// The reference tolerance of a model from the algorithms its build report lists: the loosest
/// of 1e-5 (direct, GEMM, depthwise, Winograd F(2,3)), 1e-4 (F(4,3)) and 3e-4 (F(6,3)), the
/// per-kernel bounds of ALGORITHMS.md §3. Read from the report so that `algo: auto` choices count.
fn tolerance(report: &str) -> f64 {
    if report.contains("winograd-f6") {
        3e-4
    } else if report.contains("winograd-f4") {
        1e-4
    } else {
        1e-5
    }
}

/// A copy of a random spec with `algo: winograd{m}` on every conv with a 3×3 kernel, stride 1
/// (or 2 too when `stride2`) and groups 1 (None when it has none). Specs put one layer per line
/// as a flow mapping.
fn force_winograd(text: &str, m: usize, stride2: bool) -> Option<String> {
    let mut out = String::new();
    let mut any = false;
    for line in text.lines() {
        let mut line = line.to_string();
        if line.starts_with("name: rand_") {
            line = format!("{line}_w{m}");
        }
        let field = |key: &str| {
            let at = line.find(&format!(" {key}: "))?;
            let rest = &line[at + key.len() + 3..];
            let end = if rest.starts_with('[') {
                rest.find(']')? + 1
            } else {
                rest.find([',', ' ', '}'])?
            };
            Some(rest[..end].to_string())
        };
        let eligible = line.contains("op: conv")
            && matches!(field("kernel").as_deref(), Some("3" | "[3, 3]"))
            && match field("stride").as_deref() {
                None | Some("1" | "[1, 1]") => true,
                Some("2" | "[2, 2]") => stride2,
                _ => false,
            }
            && matches!(field("groups").as_deref(), None | Some("1"));
        if eligible {
            any = true;
            line = line
                .replace(", algo: direct", "")
                .replace(", algo: auto", "")
                .replace("op: conv", &format!("op: conv, algo: winograd{m}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    any.then_some(out)
}

/// A copy of a random spec with a `microflows:` section (name `rand_NN_mf`): a 3×3, else 2×2,
/// else 4×4, else 1×1 grid after the deepest layer where it is valid (checked with the compiler's own validation),
/// with a gate that cycles through learned, energy and fixed. None when no split is valid.
fn add_microflows(text: &str, i: usize, dir: &Path) -> Option<String> {
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - { name: "))
        .filter_map(|l| l.split(',').next())
        .collect();
    let (levels, n_levels) = if i.is_multiple_of(2) {
        ("[1.0, 0.5]", 2)
    } else {
        ("[1.0, 0.75, 0.5, 0.375]", 4)
    };
    let gate = match i % 3 {
        0 => "{ weights: gate, channels: 4 }".to_string(),
        1 => {
            let t: Vec<String> = (1..n_levels)
                .map(|k| format!("{:.2}", 0.7 / k as f64))
                .collect();
            format!("{{ energy: [{}] }}", t.join(", "))
        }
        _ => format!("{{ fixed: {} }}", n_levels - 1),
    };
    let base = text.replace(
        &format!("name: rand_{i:02}\n"),
        &format!("name: rand_{i:02}_mf\n"),
    );
    for k in [3, 2, 4, 1] {
        for split in names.iter().rev().skip(1) {
            let t = format!(
                "{base}microflows: {{ split_after: {split}, grid: {k}, levels: {levels}, gate: {gate}, window: 2 }}\n"
            );
            let Ok(loaded) = neulens_codegen::load_model(&t, "mf.yaml", dir) else {
                continue;
            };
            if let Ok(Some(_)) = neulens_codegen::microflow::build(&loaded.graph) {
                return Some(t);
            }
        }
    }
    None
}

/// A pattern-pruned copy of a random spec (`_p`): a model-wide `prune:` default (6 patterns,
/// connectivity 0.6) and `algo: pattern` on every conv with a 3×3 kernel, stride 1 or 2 and
/// groups 1,
/// so the pattern kernel runs there (None when it has none). The reference runs the same pruned
/// weights (`neulens_codegen::prune::apply`, see tests/reference.rs).
fn force_pattern(text: &str) -> Option<String> {
    let forced = force_winograd(text, 0, true)?;
    let mut out = String::new();
    for line in forced.lines() {
        if let Some(name) = line.strip_prefix("name: ") {
            out.push_str(&format!("name: {}_p\n", name.trim_end_matches("_w0")));
            continue;
        }
        if line == "layers:" {
            out.push_str("prune: { patterns: 6, connectivity: 0.6 }\n");
        }
        out.push_str(&line.replace("algo: winograd0", "algo: pattern"));
        out.push('\n');
    }
    Some(out)
}

struct Job {
    stem: String,
    spec: PathBuf,
    /// Shipped specs: let the builder print `cargo::` directives (rerun-if-changed, errors).
    cargo: bool,
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes)
}

/// A Rust module name from a file stem.
fn ident(stem: &str) -> String {
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "spec_");
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR not set")?);
    let specs_dir = manifest.join("../specs").canonicalize()?;
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", specs_dir.display());

    // 1. Random specs.
    let gen_dir = out_dir.join("specs");
    std::fs::create_dir_all(&gen_dir)?;
    let mut covered = BTreeSet::new();
    let mut summary = String::new();
    let mut jobs = Vec::new();
    for i in 0..RANDOM_SPECS {
        let (text, feats, macs, depth) = random_spec(i);
        let stem = format!("rand_{i:02}");
        let path = gen_dir.join(format!("{stem}.yaml"));
        write_if_changed(&path, text.as_bytes())?;
        let _ = writeln!(
            summary,
            "{stem}: {depth} layers, {macs} MACs, {}",
            feats.iter().copied().collect::<Vec<_>>().join(" ")
        );
        covered.extend(feats);
        // Forced-Winograd copies of specs with eligible convs (3×3, stride 1, groups 1).
        for m in [2, 4, 6] {
            if let Some(forced) = force_winograd(&text, m, false) {
                let wstem = format!("{stem}_w{m}");
                let wpath = gen_dir.join(format!("{wstem}.yaml"));
                write_if_changed(&wpath, forced.as_bytes())?;
                jobs.push(Job {
                    stem: wstem,
                    spec: wpath,
                    cargo: false,
                });
            }
        }
        if let Some(mf) = add_microflows(&text, i, &gen_dir) {
            let mstem = format!("{stem}_mf");
            let mpath = gen_dir.join(format!("{mstem}.yaml"));
            write_if_changed(&mpath, mf.as_bytes())?;
            jobs.push(Job {
                stem: mstem,
                spec: mpath,
                cargo: false,
            });
        }
        if let Some(pruned) = force_pattern(&text) {
            let pstem = format!("{stem}_p");
            let ppath = gen_dir.join(format!("{pstem}.yaml"));
            write_if_changed(&ppath, pruned.as_bytes())?;
            jobs.push(Job {
                stem: pstem,
                spec: ppath,
                cargo: false,
            });
        }
        jobs.push(Job {
            stem,
            spec: path,
            cargo: false,
        });
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !covered.contains(f))
        .collect();
    write_if_changed(&gen_dir.join("SUMMARY.txt"), summary.as_bytes())?;
    if !missing.is_empty() {
        return Err(format!(
            "the random specs miss required features: {missing:?} (see {})",
            gen_dir.join("SUMMARY.txt").display()
        )
        .into());
    }

    // 2. Shipped specs, read from the directory so that new ones are picked up.
    let mut shipped: Vec<PathBuf> = std::fs::read_dir(&specs_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    shipped.sort();
    for spec in shipped {
        let mut stem = ident(&spec.file_stem().unwrap_or_default().to_string_lossy());
        while jobs.iter().any(|j| j.stem == stem) {
            stem.push_str("_spec");
        }
        jobs.push(Job {
            stem,
            spec,
            cargo: true,
        });
    }

    // 3. Compile, spread over the available cores.
    let models_dir = out_dir.join("models");
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(jobs.len());
    let mut results: Vec<Option<Result<neulens::build::Built, neulens::build::Diagnostics>>> =
        (0..jobs.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (jobs, models_dir) = (&jobs, &models_dir);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (i, job) in jobs.iter().enumerate().skip(t).step_by(threads) {
                        let r = neulens::build::Model::new(&job.spec)
                            .out_dir(models_dir)
                            .file_stem(&job.stem)
                            .cargo_output(job.cargo)
                            .emit();
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().expect("a compile thread panicked") {
                results[i] = Some(r);
            }
        }
    });

    let mut errors = String::new();
    let mut mods = String::from(
        "// Generated by neulens-tests/build.rs: every compiled model and its entry.\n\n",
    );
    let mut entries = String::from("/// Every compiled model: the random specs first, then the shipped ones.\npub const MODELS: &[ModelEntry] = &[\n");
    for (job, r) in jobs.iter().zip(results) {
        match r.expect("every job ran") {
            Ok(built) => {
                let stem = &job.stem;
                // The allow: a model without arena (ARENA_BYTES == 0) and a budget gets the const
                // assertion `ARENA_BYTES <= budget`, which this deny-by-default lint rejects.
                let _ = writeln!(
                    mods,
                    "#[allow(clippy::absurd_extreme_comparisons)]\npub mod {stem} {{\n    include!({:?});\n}}",
                    built.rust_file.display().to_string()
                );
                let adaptive = if built.report.contains("\nmicro-flows: ") {
                    let _ = writeln!(
                        mods,
                        "fn {stem}_adaptive(i: &[f32], a: &mut [f32], o: &mut [f32], p: neulens::Policy) -> Result<AdaptiveReport, neulens::Error> {{\n    \
                         {stem}::infer_adaptive_slices(i, a, o, p).map(|r| AdaptiveReport::from(&r))\n}}"
                    );
                    let _ = writeln!(
                        mods,
                        "fn {stem}_threads(i: &[f32], a: &mut [f32], o: &mut [f32], p: neulens::Policy, n: usize) -> Result<AdaptiveReport, neulens::Error> {{\n    \
                         let i: &[f32; {stem}::INPUT_LEN] = i.try_into().map_err(|_| neulens::Error::InputLength {{ expected: {stem}::INPUT_LEN, found: i.len() }})?;\n    \
                         let found = o.len();\n    \
                         let o: &mut [f32; {stem}::OUTPUT_LEN] = o.try_into().map_err(|_| neulens::Error::OutputLength {{ expected: {stem}::OUTPUT_LEN, found }})?;\n    \
                         {stem}::infer_adaptive_threads(i, a, o, p, n).map(|r| AdaptiveReport::from(&r))\n}}"
                    );
                    let _ = writeln!(
                        mods,
                        "fn {stem}_pool(i: &[f32], a: &mut [f32], o: &mut [f32], p: neulens::Policy, pool: &neulens::parallel::Pool) -> Result<AdaptiveReport, neulens::Error> {{\n    \
                         let i: &[f32; {stem}::INPUT_LEN] = i.try_into().map_err(|_| neulens::Error::InputLength {{ expected: {stem}::INPUT_LEN, found: i.len() }})?;\n    \
                         let found = o.len();\n    \
                         let o: &mut [f32; {stem}::OUTPUT_LEN] = o.try_into().map_err(|_| neulens::Error::OutputLength {{ expected: {stem}::OUTPUT_LEN, found }})?;\n    \
                         {stem}::infer_adaptive_pool(i, a, o, p, pool).map(|r| AdaptiveReport::from(&r))\n}}"
                    );
                    format!(
                        "Some(AdaptiveEntry {{ arena_len: {stem}::ADAPTIVE_ARENA_LEN, tiles: {stem}::TILES, levels: {stem}::LEVELS, \
                         gate_macs: {stem}::GATE_MACS, infer: {stem}_adaptive, \
                         infer_threads: {stem}_threads, infer_pool: {stem}_pool, arena_len_for: {stem}::adaptive_arena_len }})"
                    )
                } else {
                    "None".to_string()
                };
                let _ = writeln!(
                    entries,
                    "    ModelEntry {{ name: {stem:?}, spec: {:?}, input_len: {stem}::INPUT_LEN, output_len: {stem}::OUTPUT_LEN, \
                     arena_len: {stem}::ARENA_LEN, macs: {stem}::MACS, tolerance: {:e}, infer: {stem}::infer_slices, infer_threads: {stem}::infer_threads, infer_pool: {stem}::infer_pool, \
                     threads_arena_len: {stem}::threads_arena_len, adaptive: {adaptive} }},",
                    job.spec.display().to_string(),
                    tolerance(&built.report)
                );
            }
            Err(diags) => {
                if !job.cargo {
                    for d in diags.iter() {
                        println!("cargo::error={}", d.to_string().replace('\n', " "));
                    }
                }
                let _ = writeln!(errors, "{} ({}):\n{diags}", job.stem, job.spec.display());
            }
        }
    }
    if !errors.is_empty() {
        return Err(format!("some specs failed to compile:\n{errors}").into());
    }
    entries.push_str("];\n");
    mods.push('\n');
    mods.push_str(&entries);
    write_if_changed(&out_dir.join("models.rs"), mods.as_bytes())?;
    Ok(())
}
