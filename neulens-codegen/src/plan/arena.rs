//! Buffer assignment: which values share a buffer (views, in-place ops), how long each buffer
//! lives, and where it sits in the arena (greedy by size over lifetimes, like TFLite's planner).

use super::{BufRef, Storage};
use crate::graph::{Graph, Op};

/// Buffers start on multiples of this many f32 (64 bytes: one cache line, one AVX-512 vector).
pub const ARENA_ALIGN: usize = 16;

/// The storage of every node's value, and the arena size.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// Per node (index = node index): where its value lives.
    pub value: Vec<BufRef>,
    /// Arena length in f32.
    pub arena_len: usize,
    /// Per node: the buffer id (for reports and tests).
    pub buffer_of: Vec<usize>,
    /// Per buffer: (first node that writes it, last node that reads it), inclusive.
    pub lifetimes: Vec<(usize, usize)>,
    /// Per buffer: its length in f32.
    pub lens: Vec<usize>,
    /// Per node: its scratch range in the arena, if it asked for one.
    pub scratch: Vec<Option<BufRef>>,
}

impl Assignment {
    /// The layer at which the most arena memory is live (for budget messages).
    pub fn peak_layer(&self, g: &Graph) -> String {
        let mut best = (0usize, 0usize);
        for t in 0..g.nodes.len() {
            let live: usize = (0..self.lens.len())
                .filter(|&b| {
                    matches!(self.storage_of(b), Some(Storage::Arena(_)))
                        && self.lifetimes[b].0 <= t
                        && t <= self.lifetimes[b].1
                })
                .map(|b| self.lens[b].div_ceil(ARENA_ALIGN) * ARENA_ALIGN)
                .sum();
            if live > best.1 {
                best = (t, live);
            }
        }
        format!(
            "`{}` with {} bytes live, kernel scratch included",
            g.nodes[best.0].name,
            best.1 * 4
        )
    }

    fn storage_of(&self, b: usize) -> Option<Storage> {
        let of_value = self
            .buffer_of
            .iter()
            .position(|&x| x == b)
            .map(|n| self.value[n].storage);
        // Scratch buffers hold no value; they always live in the arena.
        of_value.or_else(|| self.scratch.iter().flatten().next().map(|s| s.storage))
    }
}

/// Assigns storage to every value of a lowered graph, and `scratch[i]` f32 of arena to node `i`
/// for the duration of its call. `fused[i]` (missing = false) marks a conv computed by the
/// call of node `i + 1` (a global max pool, see `plan::global_max_fusions`): its value is never
/// stored (length 0) and its inputs live until node `i + 1`.
pub fn assign(g: &Graph, scratch: &[usize], fused: &[bool]) -> Assignment {
    let n = g.nodes.len();
    let consumers = g.consumers();
    let is_fused = |v: usize| fused.get(v).copied().unwrap_or(false);
    // Last node reading each value; the model output lives to the end.
    let mut last_use: Vec<usize> = (0..n)
        .map(|v| {
            let l = consumers[v].iter().copied().max().unwrap_or(v);
            if v == g.output {
                n
            } else {
                l
            }
        })
        .collect();
    for (i, node) in g.nodes.iter().enumerate() {
        if is_fused(i) {
            for &v in &node.inputs {
                last_use[v] = last_use[v].max(i + 1);
            }
        }
    }
    let value_len = |v: usize| {
        if is_fused(v) {
            0
        } else {
            g.nodes[v].shape.len()
        }
    };

    let mut buffer_of = vec![0usize; n];
    let mut lens: Vec<usize> = Vec::new();
    let mut lifetimes: Vec<(usize, usize)> = Vec::new();
    let mut is_input_buf: Vec<bool> = Vec::new();
    let new_buf = |len: usize, def: usize, lens: &mut Vec<usize>, lt: &mut Vec<(usize, usize)>| {
        lens.push(len);
        lt.push((def, def));
        lens.len() - 1
    };

    for (i, node) in g.nodes.iter().enumerate() {
        let b = match &node.op {
            Op::Input => {
                let b = new_buf(node.shape.len(), 0, &mut lens, &mut lifetimes);
                is_input_buf.push(true);
                b
            }
            Op::Flatten => buffer_of[node.inputs[0]],
            Op::Softmax | Op::Affine(_) | Op::Add => {
                // Reuse an input's buffer when this node is the last reader of everything in it.
                let reusable = node.inputs.iter().copied().find(|&j| {
                    let bj = buffer_of[j];
                    !is_input_buf[bj]
                        && lens[bj] == node.shape.len()
                        && (0..i).filter(|&v| buffer_of[v] == bj).all(|v| last_use[v] <= i)
                        // `add` may only write over its first operand slot safely if every
                        // operand either is that buffer or is distinct from it.
                        && node.inputs.iter().filter(|&&k| buffer_of[k] == bj).count() == 1
                });
                match reusable {
                    Some(j) => buffer_of[j],
                    None => {
                        is_input_buf.push(false);
                        new_buf(node.shape.len(), i, &mut lens, &mut lifetimes)
                    }
                }
            }
            _ => {
                is_input_buf.push(false);
                new_buf(value_len(i), i, &mut lens, &mut lifetimes)
            }
        };
        buffer_of[i] = b;
        let lt = &mut lifetimes[b];
        lt.0 = lt.0.min(i);
        lt.1 = lt.1.max(last_use[i]);
    }

    // Scratch buffers: live exactly while their node runs.
    let mut scratch_buf = vec![None; n];
    for (i, &len) in scratch.iter().enumerate().take(n) {
        if len > 0 {
            is_input_buf.push(false);
            let b = new_buf(len, i, &mut lens, &mut lifetimes);
            scratch_buf[i] = Some(b);
        }
    }

    let out_buf = buffer_of[g.output];
    let out_is_input = is_input_buf[out_buf];
    // Arena placement: largest first, lowest offset that does not collide with a placed buffer
    // whose lifetime overlaps.
    let mut order: Vec<usize> = (0..lens.len())
        .filter(|&b| !is_input_buf[b] && (b != out_buf || out_is_input))
        .collect();
    order.sort_by(|&a, &b| {
        lens[b]
            .cmp(&lens[a])
            .then(lifetimes[a].0.cmp(&lifetimes[b].0))
    });
    let mut offset = vec![usize::MAX; lens.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena_len = 0usize;
    for &b in &order {
        let size = lens[b].div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| overlaps(lifetimes[p], lifetimes[b]))
            .map(|&p| {
                (
                    offset[p],
                    offset[p] + lens[p].div_ceil(ARENA_ALIGN) * ARENA_ALIGN,
                )
            })
            .collect();
        conflicts.sort();
        let mut at = 0usize;
        for (s, e) in conflicts {
            if at + size <= s {
                break;
            }
            at = at.max(e);
        }
        offset[b] = at;
        arena_len = arena_len.max(at + size);
        placed.push(b);
    }

    let value = (0..n)
        .map(|v| {
            let b = buffer_of[v];
            let storage = if is_input_buf[b] {
                Storage::Input
            } else if b == out_buf {
                Storage::Output
            } else {
                Storage::Arena(offset[b])
            };
            BufRef {
                storage,
                offset: 0,
                len: value_len(v),
            }
        })
        .collect();
    let scratch = scratch_buf
        .iter()
        .map(|b| {
            b.map(|b| BufRef {
                storage: Storage::Arena(offset[b]),
                offset: 0,
                len: lens[b],
            })
        })
        .collect();
    Assignment {
        value,
        arena_len,
        buffer_of,
        lifetimes,
        lens,
        scratch,
    }
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}
