//! Inputs of 129 to 512 tokens against transformers (tests/data/golden_long.json, written by
//! tests/python/make_long_golden.py): token ids, every layer's hidden states (a few full token
//! rows including position 128 and the last, the mean of every hidden unit over the tokens, and
//! every token's norm) and the pooler output of all-MiniLM-L6-v2 — the golden tests of
//! tests/golden.rs stop at 128 tokens.
use crate::common;

use common::*;
use serde_json::Value;
use webtune::Session;

/// Hidden states are compared at 1e-4 absolute (as tests/golden.rs). A token's norm then
/// differs by at most √hidden · 1e-4.
const TOLERANCE: f32 = 1e-4;

fn golden_long() -> Value {
    serde_json::from_slice(&read(repo_path("tests/data/golden_long.json"))).expect("golden_long.json parses")
}

/// all-MiniLM-L6-v2 cut after its first `layers` layers: its last hidden state is the full
/// model's hidden state `layers` (transformers' `hidden_states[layers]`).
fn minilm_cut_after(layers: usize, tokenizer: &[u8], weights: &[u8]) -> Session {
    let mut config: Value = serde_json::from_slice(&read(minilm_dir().join("config.json"))).unwrap();
    config["num_hidden_layers"] = layers.into();
    // The layers above the cut leave the checkpoint too: a checkpoint with more layers than its
    // config declares is refused (their tensors would go unused).
    let st = safetensors::SafeTensors::deserialize(weights).unwrap();
    let below_cut = |name: &str| match name.split("layer.").nth(1).and_then(|rest| rest.split('.').next()) {
        Some(index) if name.contains("encoder.layer.") => index.parse::<usize>().unwrap() < layers,
        _ => true,
    };
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors().into_iter().filter(|(name, _)| below_cut(name)).collect();
    let weights = safetensors::tensor::serialize(kept, None).unwrap();
    Session::load(&serde_json::to_vec(&config).unwrap(), tokenizer, &weights).unwrap()
}

/// Every token's hidden state (tokens × hidden) and the pooler output of one text.
fn hidden_and_pooled(session: &Session, ids: &[u32]) -> (Vec<Vec<f32>>, Vec<f32>) {
    let pretrained = session.pretrained();
    let batch = pretrained.encoder(512).unwrap().batch(&[ids], false);
    let out = webtune::encoder::encode_eval(&pretrained.config, &pretrained.weights, None, &batch, true).unwrap();
    let rows = out.last_hidden.unwrap().chunks(pretrained.config.hidden_size).map(<[f32]>::to_vec).collect();
    (rows, out.pooled)
}

fn texts_and_ids(golden: &Value) -> Vec<(String, Vec<u32>)> {
    golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["text"].as_str().unwrap().to_string(), t["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()))
        .collect()
}

#[test]
fn token_ids_of_129_to_512_tokens_equal_transformers() {
    let golden = golden_long();
    let encoder = minilm().pretrained().encoder(512).unwrap();
    let lengths: Vec<usize> = texts_and_ids(&golden).iter().map(|(_, ids)| ids.len()).collect();
    assert_eq!(lengths, [129, 300, 512]);
    for (text, ids) in texts_and_ids(&golden) {
        assert_eq!(encoder.encode_ids(&text).unwrap(), ids, "token ids of the {}-token text", ids.len());
    }
}

#[test]
fn every_layers_hidden_states_of_long_inputs_match_transformers() {
    let golden = golden_long();
    let dir = minilm_dir();
    let (tokenizer, weights) = (read(dir.join("tokenizer.json")), read(dir.join("model.safetensors")));
    let texts = texts_and_ids(&golden);
    // hidden_states[0] (the embeddings) has no model of its own; layer 1's states depend on it.
    for layer in 1..=6 {
        let session = minilm_cut_after(layer, &tokenizer, &weights);
        for ((_, ids), text) in texts.iter().zip(golden["texts"].as_array().unwrap()) {
            let n = ids.len();
            let want = &text["hidden_states"][layer];
            let (rows, _) = hidden_and_pooled(&session, ids);
            assert_eq!(rows.len(), n);
            for (position, expected) in want["rows"].as_object().unwrap() {
                let diff = max_abs_diff(&rows[position.parse::<usize>().unwrap()], &f32s(expected));
                assert!(diff <= TOLERANCE, "{n} tokens, layer {layer}, token {position}: differs by {diff}");
            }
            let hidden = rows[0].len();
            let means: Vec<f32> = (0..hidden).map(|j| (rows.iter().map(|r| r[j] as f64).sum::<f64>() / n as f64) as f32).collect();
            let diff = max_abs_diff(&means, &f32s(&want["column_means"]));
            assert!(diff <= TOLERANCE, "{n} tokens, layer {layer}: the mean over tokens differs by {diff}");
            let norms: Vec<f32> = rows.iter().map(|r| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() as f32).collect();
            let expected_norms = f32s(&want["row_norms"]);
            let (worst, diff) = norms.iter().zip(&expected_norms).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
            assert!(diff <= TOLERANCE * (hidden as f32).sqrt(), "{n} tokens, layer {layer}: the norm of token {worst} differs by {diff}");
        }
    }
}

#[test]
fn pooler_output_of_long_inputs_matches_transformers_alone_and_padded_together() {
    let golden = golden_long();
    let session = minilm();
    let pretrained = session.pretrained();
    let texts = texts_and_ids(&golden);
    let expected: Vec<Vec<f32>> = golden["texts"].as_array().unwrap().iter().map(|t| f32s(&t["pooler_output"])).collect();
    for ((_, ids), want) in texts.iter().zip(&expected) {
        let (_, pooled) = hidden_and_pooled(&session, ids);
        let diff = max_abs_diff(&pooled, want);
        assert!(diff <= TOLERANCE, "{} tokens: pooler output differs by {diff}", ids.len());
    }
    // The three together, padded to 512 (the [CLS]-only top layer of training and evaluation).
    let seqs: Vec<&[u32]> = texts.iter().map(|(_, ids)| ids.as_slice()).collect();
    let batch = pretrained.encoder(512).unwrap().batch(&seqs, false);
    let out = webtune::encoder::encode_eval(&pretrained.config, &pretrained.weights, None, &batch, false).unwrap();
    for ((pooled, want), ids) in out.pooled.chunks(pretrained.config.hidden_size).zip(&expected).zip(&seqs) {
        let diff = max_abs_diff(pooled, want);
        assert!(diff <= TOLERANCE, "{} tokens in a batch padded to 512: pooler output differs by {diff}", ids.len());
    }
}
