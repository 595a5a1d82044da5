//! The embeddings: word + position + token-type (0) rows, LayerNorm and dropout, and their
//! backward (the word embeddings' gradient as rows by token id). Position ids come from
//! [`super::structure::position_ids`] (RoBERTa's start after the padding id); DistilBERT's
//! absent token types are a zero row.
use super::linear::{apply, Values};
use super::norm::{NormTape, NormValues};
use super::structure::{embedding_mask, DropoutSource, Shape};
use crate::kernels;
use crate::params::{BertGrads, BertWeights, RowGradients};
use crate::{Error, Result};

/// The embeddings' tables and LayerNorm for a pass.
pub(super) struct EmbeddingValues<'a> {
    word: Values<'a>,
    position: Values<'a>,
    token_type: Values<'a>,
    norm: NormValues<'a>,
}

/// What the embeddings' backward needs from their forward.
pub(super) struct EmbeddingTape {
    norm: NormTape,
    drop: Option<Vec<f32>>,
}

pub(super) fn embedding_values(w: &BertWeights) -> Result<EmbeddingValues<'_>> {
    Ok(EmbeddingValues {
        word: Values::of(&w.word_embeddings)?,
        position: Values::of(&w.position_embeddings)?,
        token_type: Values::of(&w.token_type_embeddings)?,
        norm: NormValues { gamma: Values::of(&w.embeddings_norm.weight)?, beta: Values::of(&w.embeddings_norm.bias)? },
    })
}

/// Word + position + token-type (0) embeddings, LayerNorm, dropout: (tokens × hidden).
pub(super) fn embed(w: &EmbeddingValues<'_>, ids: &[u32], positions: &[usize], s: Shape, dropout: &mut Option<DropoutSource<'_>>, keep: bool, vocab: usize) -> Result<(Vec<f32>, Option<EmbeddingTape>)> {
    let (t, h) = (s.tokens(), s.hidden);
    let (word, position, token_type) = (w.word.get(), w.position.get(), &w.token_type.get()[..h]);
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Model(format!("token id {bad} is outside the vocabulary of {vocab} words: tokenizer.json does not match the model")));
    }
    let mut sum = vec![0f32; t * h];
    kernels::for_rows(&mut sum, h, |r, row| {
        let (word, pos) = (&word[ids[r] as usize * h..][..h], &position[positions[r] * h..][..h]);
        for j in 0..h {
            row[j] = word[j] + pos[j] + token_type[j];
        }
    });
    let (mut out, norm) = w.norm.forward(&sum, s.eps, keep);
    let drop = embedding_mask(dropout, s);
    apply(&mut out, &drop);
    Ok((out, keep.then_some(EmbeddingTape { norm, drop })))
}

/// Embeddings backward: LayerNorm, position and token-type gradients into their slots; the word
/// embeddings' gradient as rows by token id.
pub(super) fn embed_backward(w: &EmbeddingValues<'_>, g: &BertGrads, tape: EmbeddingTape, mut dy: Vec<f32>, ids: &[u32], positions: &[usize], s: Shape, word_rows: bool) -> Option<RowGradients> {
    let h = s.hidden;
    apply(&mut dy, &tape.drop);
    let dsum = w.norm.backward(&g.embeddings_norm, &tape.norm, &dy);
    if let Some(slot) = &g.position_embeddings {
        slot.write(|buf, acc| {
            if !acc {
                buf.fill(0.0);
            }
            for (r, row) in dsum.chunks_exact(h).enumerate() {
                buf[positions[r] * h..][..h].iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
        });
    }
    if let Some(slot) = &g.token_type_embeddings {
        slot.write(|buf, acc| {
            if !acc {
                buf.fill(0.0);
            }
            kernels::add_column_sums(&mut buf[..h], &dsum);
        });
    }
    if !word_rows {
        return None;
    }
    let mut rows: std::collections::BTreeMap<u32, Vec<f32>> = std::collections::BTreeMap::new();
    for (&id, row) in ids.iter().zip(dsum.chunks_exact(h)) {
        let acc = rows.entry(id).or_insert_with(|| vec![0f32; h]);
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    Some(rows.into_iter().collect())
}
