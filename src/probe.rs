//! One forward + backward pass with its details exposed, for the golden tests against
//! transformers (`tests/golden.rs`) and for diagnostics: the loss, the logits, every
//! parameter's gradient norm, the classifier's weight gradient and the word-embedding gradient
//! per token id. Eval mode (no dropout), mean cross-entropy, as the reference computes it.
use crate::encoder;
use crate::model::{self, Linear, Pretrained};
use crate::optim;
use crate::run_model::RunModel;
use crate::types::Strategy;
use crate::Result;

/// What one backward pass produced.
pub struct GradientProbe {
    pub loss: f64,
    /// (texts, labels)
    pub logits: Vec<Vec<f32>>,
    /// Gradient L2 norm of every trainable parameter, by transformers name, in checkpoint order.
    pub norms: Vec<(String, f64)>,
    /// d loss / d `classifier.weight`, in transformers' layout (labels, hidden).
    pub classifier_weight_grad: Vec<Vec<f32>>,
    /// L2 norm of the word-embedding gradient row of each token id in the batch (when the word
    /// embeddings train), sorted by id.
    pub word_embedding_row_norms: Vec<(u32, f64)>,
}

/// Run `texts` through the model of `strategy` with the classifier `head`, padded to the longest
/// text or to `pad_to_max_len` tokens, and back-propagate the loss against `labels`.
pub fn gradients(pretrained: &Pretrained, strategy: Strategy, head: Linear, texts: &[String], labels: &[usize], pad_to_max_len: Option<usize>) -> Result<GradientProbe> {
    let max_len = pad_to_max_len.unwrap_or(pretrained.config.max_position_embeddings);
    let encoder = pretrained.encoder(max_len)?;
    let model = RunModel::build(pretrained, strategy, head, &crate::types::LoraOptions::default(), 0)?;
    let ids = encoder.encode_all(texts)?;
    let seqs: Vec<&[u32]> = ids.iter().map(|s| s.as_slice()).collect();
    let batch = encoder.batch(&seqs, pad_to_max_len.is_some());
    let out = encoder::train_step(&pretrained.config, model.train_model(), &batch, labels, None, |_| Ok(()))?;
    let norms = optim::gradient_norms(&model.params, out.word_rows.as_ref());
    let classifier_slot = model.head_grads.weight_t.as_ref().expect("the classifier always trains");
    let (hidden, num_labels) = model.head.weight_t.dims2()?;
    let classifier_weight_grad = classifier_slot
        .peek(|g| (0..num_labels).map(|c| (0..hidden).map(|i| g[i * num_labels + c]).collect()).collect())
        .unwrap_or_default();
    let word_embedding_row_norms = out
        .word_rows
        .unwrap_or_default()
        .into_iter()
        .map(|(id, row)| (id, row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt()))
        .collect();
    Ok(GradientProbe {
        loss: out.loss,
        logits: out.logits,
        norms: model.params.iter().map(|p| p.name.clone()).zip(norms).collect(),
        classifier_weight_grad,
        word_embedding_row_norms,
    })
}

/// Gradient norms of one `strategy` step on `texts`, with a seed-0 classifier (eval mode).
pub fn one_step_gradient_norms(pretrained: &Pretrained, strategy: Strategy, texts: &[String], labels: &[usize]) -> Result<Vec<(String, f64)>> {
    let num_labels = labels.iter().max().map_or(2, |m| (m + 1).max(2));
    let head = model::init_classifier(&pretrained.config, num_labels, 0)?;
    Ok(gradients(pretrained, strategy, head, texts, labels, None)?.norms)
}
