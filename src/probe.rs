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
    let max_len = pad_to_max_len.unwrap_or(pretrained.config.max_tokens());
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

/// One eval-mode forward + backward of the whole model with every value exposed, in
/// transformers' names and layouts: for `webtune probe` and the golden checks of each
/// architecture against transformers (`tests/python/check_architectures.py`).
#[derive(serde::Serialize)]
pub struct FullProbe {
    /// (texts × len) token ids of the padded batch, and its attention mask.
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    /// (texts × len × hidden) the encoder's last hidden state.
    pub last_hidden: Vec<Vec<Vec<f32>>>,
    /// (texts × hidden) what the classifier reads.
    pub pooled: Vec<Vec<f32>>,
    pub logits: Vec<Vec<f32>>,
    pub loss: f64,
    /// The tensors webtune drew rather than read from the checkpoint (the classifier, the dense
    /// layer on the first token when the checkpoint has none): (name, shape, values).
    pub drawn: Vec<NamedValues>,
    /// d loss / d every parameter (`full`), in transformers' layout.
    pub gradients: Vec<NamedValues>,
}

/// A tensor by transformers name: its shape and its values, row-major.
#[derive(serde::Serialize)]
pub struct NamedValues {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A stored tensor's values in transformers' layout: Linear weights (2-D, not embeddings) are
/// stored transposed.
fn hf_layout(name: &str, stored_shape: &[usize], values: &[f32]) -> (Vec<usize>, Vec<f32>) {
    if stored_shape.len() != 2 || name.contains("embeddings") {
        return (stored_shape.to_vec(), values.to_vec());
    }
    let (rows, cols) = (stored_shape[0], stored_shape[1]);
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    (vec![cols, rows], out)
}

/// [`FullProbe`] of `texts` against `labels` with the `full` strategy and a seed-0 classifier.
pub fn full_probe(pretrained: &Pretrained, texts: &[String], labels: &[usize], num_labels: usize) -> Result<FullProbe> {
    let config = &pretrained.config;
    let head = model::init_classifier(config, num_labels, 0)?;
    let encoder = pretrained.encoder(config.max_tokens())?;
    let model = RunModel::build(pretrained, Strategy::Full, head, &crate::types::LoraOptions::default(), 0)?;
    let ids = encoder.encode_all(texts)?;
    let seqs: Vec<&[u32]> = ids.iter().map(|s| s.as_slice()).collect();
    let batch = encoder.batch(&seqs, false);
    let (len, h) = (batch.seq_len, config.hidden_size);
    let eval = encoder::encode_eval(config, &pretrained.weights, None, &batch, true)?;
    let hidden = eval.last_hidden.unwrap_or_default();
    let out = encoder::train_step(config, model.train_model(), &batch, labels, None, |_| Ok(()))?;
    let mut drawn = Vec::new();
    let mut named_drawn = model.head_tensors()?;
    if pretrained.has_pooler {
        named_drawn.drain(..2);
    }
    for (name, tensor) in named_drawn {
        drawn.push(NamedValues { name, shape: tensor.dims().to_vec(), values: tensor.contiguous()?.flatten_all()?.to_vec1::<f32>()? });
    }
    let rows: std::collections::HashMap<u32, Vec<f32>> = out.word_rows.unwrap_or_default().into_iter().collect();
    let mut gradients = Vec::new();
    for p in &model.params {
        let stored_shape = p.tensor.dims().to_vec();
        let values = if p.row_gradient {
            let mut dense = vec![0f32; p.tensor.elem_count()];
            for (id, row) in &rows {
                dense[*id as usize * h..][..h].copy_from_slice(row);
            }
            dense
        } else {
            p.grad_slot.as_ref().and_then(|slot| slot.peek(<[f32]>::to_vec)).unwrap_or_else(|| vec![0f32; p.tensor.elem_count()])
        };
        let (shape, values) = hf_layout(&p.name, &stored_shape, &values);
        gradients.push(NamedValues { name: p.name.clone(), shape, values });
    }
    Ok(FullProbe {
        input_ids: batch.ids.chunks(len).map(<[u32]>::to_vec).collect(),
        attention_mask: batch.mask.chunks(len).map(|m| m.iter().map(|&v| v as u32).collect()).collect(),
        last_hidden: hidden.chunks(len * h).map(|s| s.chunks(h).map(<[f32]>::to_vec).collect()).collect(),
        pooled: eval.pooled.chunks(h).map(<[f32]>::to_vec).collect(),
        logits: out.logits,
        loss: out.loss,
        drawn,
        gradients,
    })
}
