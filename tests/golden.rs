//! webtune against PyTorch + transformers on all-MiniLM-L6-v2 (../shared/golden): token ids,
//! hidden states, pooler output, loss and every gradient norm.
mod common;

use candle_core::{Device, Tensor};
use common::*;
use webtune::model::Linear;
use webtune::tokenize::TextEncoder;
use webtune::train::gradient_norms;
use webtune::Strategy;

#[test]
fn token_ids_equal_transformers() {
    let golden = golden("golden_minilm.json");
    let encoder = TextEncoder::from_bytes(&read(minilm_dir().join("tokenizer.json")), 128).unwrap();
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

fn golden_head(grads: &serde_json::Value) -> Linear {
    let init = &grads["classifier_init"];
    let rows: Vec<Vec<f32>> = init["weight"].as_array().unwrap().iter().map(f32s).collect();
    let hidden = rows[0].len();
    let weight = Tensor::from_vec(rows.concat(), (rows.len(), hidden), &Device::Cpu).unwrap();
    let bias = Tensor::from_vec(f32s(&init["bias"]), rows.len(), &Device::Cpu).unwrap();
    Linear::from_hf(&weight, bias).unwrap()
}

fn check_gradients(run: &str, pad_to_max_len: Option<usize>) {
    let grads = golden("golden_grads_minilm.json");
    let session = minilm();
    let texts: Vec<String> = grads["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let labels: Vec<usize> = grads["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as usize).collect();
    let reference = &grads["runs"][run];
    let (loss, norms) = gradient_norms(session.pretrained(), Strategy::Full, golden_head(&grads), &texts, &labels, pad_to_max_len).unwrap();
    let expected_loss = reference["loss"].as_f64().unwrap();
    assert!(((loss - expected_loss) / expected_loss).abs() <= 1e-3, "{run}: loss {loss} vs {expected_loss}");
    let expected = reference["grad_norms_all_params"].as_object().unwrap();
    assert_eq!(norms.len(), expected.len(), "{run}: one gradient per parameter");
    let mut compared = 0;
    for (name, norm) in &norms {
        let want = expected.get(name).unwrap_or_else(|| panic!("{run}: golden has no parameter {name}")).as_f64().unwrap();
        // Attention key biases have a true gradient of zero (softmax is shift-invariant).
        if name.ends_with("attention.self.key.bias") {
            assert!(*norm < 1e-6, "{run}: {name} should have ~0 gradient, got {norm}");
            continue;
        }
        let rel = (norm - want).abs() / want.abs();
        assert!(rel <= 1e-3, "{run}: gradient norm of {name}: {norm} vs {want} (relative {rel:.2e})");
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
        let batch = encoder.batch(seqs, pad, &Device::Cpu).unwrap();
        let pooled = pretrained.weights.encode(&pretrained.config, &batch, None).unwrap().pooled;
        head.forward(&pooled).unwrap().to_vec2::<f32>().unwrap()
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
