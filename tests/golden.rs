//! webtune against PyTorch + transformers on all-MiniLM-L6-v2 (../shared/golden): token ids,
//! hidden states, pooler output, logits, loss, every gradient norm, the classifier's weight
//! gradient element by element and the word-embedding gradient per token.
use crate::common;

use candle_core::{Device, Tensor};

use common::*;
use webtune::model::Linear;
use webtune::tokenize::TextEncoder;
use webtune::probe;
use webtune::Strategy;

#[test]
fn token_ids_equal_transformers() {
    let golden = golden("golden_minilm.json");
    let encoder = TextEncoder::from_bytes(&read(minilm_dir().join("tokenizer.json")), 128, 0).unwrap();
    let cases = golden["tokenization"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(encoder.encode_ids(text).unwrap(), expected, "token ids of {text:?}");
    }
}

#[test]
fn hidden_states_and_pooler_match_transformers() {
    let golden = golden("golden_minilm.json");
    let session = minilm();
    for sentence in golden["sentences"].as_array().unwrap() {
        let text = sentence["text"].as_str().unwrap();
        let out = session.encode_full(text, true).unwrap();
        let rows = out.last_hidden_state.unwrap();
        let expected_rows = sentence["last_hidden_state_full"].as_array().unwrap();
        assert_eq!(rows.len(), expected_rows.len(), "sequence length of {text:?}");
        let worst_row = rows.iter().zip(expected_rows).map(|(r, e)| max_abs_diff(r, &f32s(e))).fold(0.0, f32::max);
        assert!(worst_row <= 1e-4, "{text:?}: last hidden state differs by {worst_row}");
        let pooled = max_abs_diff(&out.pooled, &f32s(&sentence["pooler_output"]));
        assert!(pooled <= 1e-4, "{text:?}: pooler output differs by {pooled}");
        let mean = max_abs_diff(&out.mean, &f32s(&sentence["last_hidden_state"]["mean"]));
        assert!(mean <= 1e-4, "{text:?}: mean hidden state differs by {mean}");
    }
}

/// Without every token's hidden state (evaluation, predictions, the frozen cache, training) the
/// top layer runs for [CLS] alone; the pooler output must not change.
#[test]
fn pooler_output_of_the_cls_only_top_layer_matches_transformers() {
    let golden = golden("golden_minilm.json");
    let session = minilm();
    let pretrained = session.pretrained();
    let sentences = golden["sentences"].as_array().unwrap();
    let ids: Vec<Vec<u32>> = sentences.iter().map(|s| pretrained.predict_encoder.encode_ids(s["text"].as_str().unwrap()).unwrap()).collect();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let batch = pretrained.predict_encoder.batch(&refs, false);
    let out = webtune::encoder::encode_eval(&pretrained.config, &pretrained.weights, None, &batch, false).unwrap();
    assert!(out.last_hidden.is_none());
    let hidden = pretrained.config.hidden_size;
    for (sentence, pooled) in sentences.iter().zip(out.pooled.chunks(hidden)) {
        let diff = max_abs_diff(pooled, &f32s(&sentence["pooler_output"]));
        assert!(diff <= 1e-4, "{:?}: pooler output differs by {diff}", sentence["text"]);
    }
}

fn golden_head(grads: &serde_json::Value) -> Linear {
    let init = &grads["classifier_init"];
    let rows: Vec<Vec<f32>> = init["weight"].as_array().unwrap().iter().map(f32s).collect();
    let hidden = rows[0].len();
    let weight = Tensor::from_vec(rows.concat(), (rows.len(), hidden), &Device::Cpu).unwrap();
    let bias = Tensor::from_vec(f32s(&init["bias"]), rows.len(), &Device::Cpu).unwrap();
    Linear::from_hf(&weight, bias).unwrap()
}

/// Relative difference, for values that are not near zero.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn check_gradients(run: &str, pad_to_max_len: Option<usize>) {
    let grads = golden("golden_grads_minilm.json");
    let session = minilm();
    let texts: Vec<String> = grads["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let labels: Vec<usize> = grads["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as usize).collect();
    let reference = &grads["runs"][run];
    let got = probe::gradients(session.pretrained(), Strategy::Full, golden_head(&grads), &texts, &labels, pad_to_max_len).unwrap();

    let expected_loss = reference["loss"].as_f64().unwrap();
    assert!(rel(got.loss, expected_loss) <= 1e-5, "{run}: loss {} vs {expected_loss} (relative {:.2e})", got.loss, rel(got.loss, expected_loss));

    // Logits, element by element (they are ~1e-2: compare absolutely, at the hidden-state tolerance).
    let expected_logits: Vec<Vec<f32>> = reference["logits"].as_array().unwrap().iter().map(f32s).collect();
    for (i, (row, want)) in got.logits.iter().zip(&expected_logits).enumerate() {
        let diff = max_abs_diff(row, want);
        assert!(diff <= 1e-5, "{run}: logits of text {i} differ by {diff}: {row:?} vs {want:?}");
    }

    // The classifier's weight gradient, element by element.
    let expected_w: Vec<Vec<f32>> = reference["classifier_weight_grad"].as_array().unwrap().iter().map(f32s).collect();
    assert_eq!(got.classifier_weight_grad.len(), expected_w.len(), "{run}: classifier gradient rows");
    let scale = expected_w.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    for (c, (row, want)) in got.classifier_weight_grad.iter().zip(&expected_w).enumerate() {
        let diff = max_abs_diff(row, want);
        assert!(diff <= 1e-4 * scale, "{run}: classifier.weight gradient row {c} differs by {diff} (largest element {scale})");
    }

    // The word-embedding gradient, row by row (one row per distinct token id in the batch).
    let expected_rows = reference["word_embeddings_grad_row_norms"].as_object().unwrap();
    let nonzero: Vec<(u32, f64)> = expected_rows.iter().map(|(id, n)| (id.parse().unwrap(), n.as_f64().unwrap())).filter(|(_, n)| *n > 0.0).collect();
    assert_eq!(nonzero.len(), reference["word_embeddings_grad_nonzero_rows"].as_u64().unwrap() as usize);
    for (id, want) in &nonzero {
        let norm = got.word_embedding_row_norms.iter().find(|(i, _)| i == id).map(|(_, n)| *n);
        let norm = norm.unwrap_or_else(|| panic!("{run}: no word-embedding gradient for token {id}"));
        assert!(rel(norm, *want) <= 1e-3, "{run}: word-embedding gradient of token {id}: {norm} vs {want}");
    }
    // Padding ([PAD] = 0) gets no gradient: its row is absent or zero.
    let extra: Vec<&(u32, f64)> = got.word_embedding_row_norms.iter().filter(|(id, n)| *n > 0.0 && !nonzero.iter().any(|(i, _)| i == id)).collect();
    assert!(extra.is_empty(), "{run}: gradient on rows the reference leaves at zero: {extra:?}");

    let expected = reference["grad_norms_all_params"].as_object().unwrap();
    assert_eq!(got.norms.len(), expected.len(), "{run}: one gradient per parameter");
    let mut compared = 0;
    for (name, norm) in &got.norms {
        let want = expected.get(name).unwrap_or_else(|| panic!("{run}: golden has no parameter {name}")).as_f64().unwrap();
        // Attention key biases have a true gradient of zero (softmax is shift-invariant).
        if name.ends_with("attention.self.key.bias") {
            assert!(*norm < 1e-6, "{run}: {name} should have ~0 gradient, got {norm}");
            continue;
        }
        assert!(rel(*norm, want) <= 1e-3, "{run}: gradient norm of {name}: {norm} vs {want} (relative {:.2e})", rel(*norm, want));
        compared += 1;
    }
    assert_eq!(compared, expected.len() - 6, "every parameter but the 6 key biases compared");
}

#[test]
fn loss_and_gradient_norms_match_transformers_dynamic_padding() {
    check_gradients("eager/longest", None);
}

#[test]
fn loss_and_gradient_norms_match_transformers_padded_to_128() {
    check_gradients("eager/max_length_128", Some(128));
}

#[test]
fn padding_does_not_change_logits() {
    let session = minilm();
    let grads = golden("golden_grads_minilm.json");
    let head = golden_head(&grads);
    let pretrained = session.pretrained();
    let encoder = pretrained.encoder(128).unwrap();
    let texts = ["I love this product!", "Terrible, I hated it.", "unaffable xunaffable xunaffable xtokenization of REALLY long words"];
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| encoder.encode_ids(t).unwrap()).collect();
    let logits = |seqs: &[&[u32]], pad: bool| -> Vec<Vec<f32>> {
        let batch = encoder.batch(seqs, pad);
        let pooled = webtune::encoder::encode_eval(&pretrained.config, &pretrained.weights, None, &batch, false).unwrap().pooled;
        webtune::encoder::head_logits(&head, &pooled, pretrained.config.hidden_size).unwrap()
    };
    for (i, seq) in ids.iter().enumerate() {
        let alone = logits(&[seq], false);
        let all: Vec<&[u32]> = ids.iter().map(|s| s.as_slice()).collect();
        for pad in [false, true] {
            let batched = logits(&all, pad);
            let diff = max_abs_diff(&alone[0], &batched[i]);
            assert!(diff <= 1e-5, "sentence {i}, pad_to_max={pad}: logits differ by {diff}");
        }
    }
}
