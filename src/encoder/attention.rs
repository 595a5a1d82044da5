//! Self-attention on strided views of Q, K and V, one task per (sentence, head) — on the
//! pool's threads when the work is large enough: the masked softmax of the scaled scores,
//! attention dropout, the context, and their backward.
use rayon::prelude::*;

use super::structure::Shape;
use crate::kernels::{self, Mat};

/// A pointer the attention's parallel loop writes through: each (sentence, head) task writes
/// only its own block of rows × head columns.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: the tasks that share it write disjoint elements (see `attention_forward`/`_backward`).
unsafe impl Send for SharedOut {}

unsafe impl Sync for SharedOut {}

/// Run `f(sentence, head, scores_block)` for every (sentence, head), in parallel when large.
fn for_heads(scores: &mut [f32], s: Shape, f: impl Fn(usize, usize, &mut [f32]) + Sync + Send) {
    let block = s.queries * s.len;
    if block == 0 {
        return; // sentences of no tokens: no scores (the tokenizer never makes one; no panic if it did)
    }
    let work = s.scores() * s.head_dim;
    if work >= kernels::ATTENTION_PARALLEL_MIN_WORK && rayon::current_num_threads() > 1 {
        scores.par_chunks_mut(block).enumerate().for_each(|(i, sc)| f(i / s.heads, i % s.heads, sc));
    } else {
        scores.chunks_mut(block).enumerate().for_each(|(i, sc)| f(i / s.heads, i % s.heads, sc));
    }
}

/// Self-attention forward: `probs` (softmax of the masked, scaled scores; per sentence and
/// head, queries × len) and `context` (query tokens × hidden) from q (query tokens × hidden),
/// k and v (tokens × hidden).
#[allow(clippy::too_many_arguments)] // the attention block's inputs and outputs, all distinct
pub(super) fn attention_forward(q: &[f32], k: &[f32], v: &[f32], mask: &[f32], s: Shape, probs: &mut [f32], drop: &Option<Vec<f32>>, context: &mut [f32]) {
    let (l, lq, h, d) = (s.len, s.queries, s.hidden, s.head_dim);
    let scale = 1.0 / (d as f32).sqrt();
    let out = SharedOut(context.as_mut_ptr());
    for_heads(probs, s, |b, hd, p| {
        // Capture the Send wrapper itself, not its raw-pointer field (edition 2021 closures
        // capture disjoint fields, and a bare pointer is not Send).
        #[allow(clippy::redundant_locals)]
        let out = out;
        // SAFETY: p is this task's own (queries × len) block; the context block written below
        // is rows b·lq.. of columns hd·d.., disjoint from every other task's.
        unsafe {
            kernels::gemm_serial(p.as_mut_ptr(), l, false, lq, l, d, Mat::block(q, h, b * lq, hd * d), Mat::block_transposed(k, h, b * l, hd * d), scale);
        }
        let key_mask = &mask[b * l..(b + 1) * l];
        for row in p.chunks_exact_mut(l) {
            kernels::masked_softmax(row, key_mask);
        }
        let base = (b * s.heads + hd) * lq * l;
        with_dropped(p, drop.as_ref().map(|m| &m[base..base + lq * l]), |weights| unsafe {
            kernels::gemm_serial(out.0.add(b * lq * h + hd * d), h, false, lq, d, l, Mat::rows(weights, l), Mat::block(v, h, b * l, hd * d), 1.0);
        });
    });
}

thread_local! {
    /// Each thread's buffer for one head's dropped-out attention probabilities.
    static DROPPED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` on the probabilities after attention dropout (`probs ⊙ mask`, in a reused
/// per-thread buffer), or on `probs` themselves without dropout.
fn with_dropped(probs: &[f32], mask: Option<&[f32]>, f: impl FnOnce(&[f32])) {
    let Some(mask) = mask else { return f(probs) };
    DROPPED.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        buffer.extend(probs.iter().zip(mask).map(|(p, m)| p * m));
        f(&buffer);
    });
}

/// Self-attention backward: dq (query tokens × hidden), dk, dv (tokens × hidden), overwritten,
/// from dcontext (query tokens × hidden).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention_backward(dcontext: &[f32], q: &[f32], k: &[f32], v: &[f32], probs: &[f32], drop: &Option<Vec<f32>>, s: Shape, dq: &mut [f32], dk: &mut [f32], dv: &mut [f32]) {
    let (l, lq, h, d) = (s.len, s.queries, s.hidden, s.head_dim);
    let scale = 1.0 / (d as f32).sqrt();
    let (oq, ok, ov) = (SharedOut(dq.as_mut_ptr()), SharedOut(dk.as_mut_ptr()), SharedOut(dv.as_mut_ptr()));
    let mut scratch = vec![0f32; s.scores()];
    for_heads(&mut scratch, s, |b, hd, ds| {
        let (oq, ok, ov) = (oq, ok, ov);
        let base = (b * s.heads + hd) * lq * l;
        let p = &probs[base..base + lq * l];
        let (block, query_block) = (b * l * h + hd * d, b * lq * h + hd * d);
        // SAFETY: `ds` is this task's scratch block; the dq blocks (rows b·lq..) and dk, dv
        // blocks (rows b·l..), columns hd·d.., are disjoint from every other task's.
        with_dropped(p, drop.as_ref().map(|m| &m[base..base + lq * l]), |dropped| unsafe {
            // dV = dropped_probsᵀ · dcontext
            kernels::gemm_serial(ov.0.add(block), h, false, l, d, lq, Mat::transposed(dropped, l), Mat::block(dcontext, h, b * lq, hd * d), 1.0);
        });
        unsafe {
            // d(dropped probs) = dcontext · Vᵀ
            kernels::gemm_serial(ds.as_mut_ptr(), l, false, lq, l, d, Mat::block(dcontext, h, b * lq, hd * d), Mat::block_transposed(v, h, b * l, hd * d), 1.0);
        }
        if let Some(m) = drop {
            ds.iter_mut().zip(&m[base..base + lq * l]).for_each(|(g, m)| *g *= m);
        }
        kernels::softmax_backward_rows(ds, p, l);
        unsafe {
            // dQ = scale · dscores · K ; dK = scale · dscoresᵀ · Q
            kernels::gemm_serial(oq.0.add(query_block), h, false, lq, d, l, Mat::rows(ds, l), Mat::block(k, h, b * l, hd * d), scale);
            kernels::gemm_serial(ok.0.add(block), h, false, l, d, lq, Mat::transposed(ds, l), Mat::block(q, h, b * lq, hd * d), scale);
        }
    });
}
