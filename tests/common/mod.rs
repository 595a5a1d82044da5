//! Shared helpers of the native integration tests: where the offline model and the golden
//! reference files live.
#![allow(dead_code)]
use std::path::PathBuf;

use webtune::Session;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `../shared` beside the repository (CI places a copy there).
pub fn shared_path(rel: &str) -> PathBuf {
    repo_path("../shared").join(rel)
}

pub fn minilm_dir() -> PathBuf {
    let dir = repo_path("models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "{} is missing: run ./build.sh model first", dir.display());
    dir
}

pub fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn load_dir(dir: &std::path::Path) -> Session {
    Session::load(&read(dir.join("config.json")), &read(dir.join("tokenizer.json")), &read(dir.join("model.safetensors"))).expect("model loads")
}

pub fn minilm() -> Session {
    load_dir(&minilm_dir())
}

pub fn golden(name: &str) -> serde_json::Value {
    serde_json::from_slice(&read(shared_path(&format!("golden/{name}")))).expect("golden JSON parses")
}

pub fn notebook_text() -> String {
    String::from_utf8(read(repo_path("data/notebook.tsv"))).unwrap()
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A tensor's values, flattened.
pub fn to_vec(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The tiny random BERT (seed 5) with the first value of the tensor `name` set to `value`
/// (a NaN or an infinity, to fault a run), and the offline model's tokenizer.
pub fn tiny_session_with_first_value(name: &str, value: f32) -> Session {
    let config = webtune::config::BertConfig::tiny();
    let bytes = webtune::checkpoint::random_bert(&config, 5);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let named: Vec<(String, candle_core::Tensor)> = st
        .tensors()
        .into_iter()
        .map(|(tensor, view)| {
            let mut values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            if tensor == name {
                values[0] = value;
            }
            (tensor, candle_core::Tensor::from_vec(values, view.shape(), &candle_core::Device::Cpu).unwrap())
        })
        .collect();
    Session::load(&serde_json::to_vec(&config).unwrap(), &read(minilm_dir().join("tokenizer.json")), &webtune::checkpoint::serialize(&named).unwrap()).unwrap()
}

/// A small random BERT (2 layers of 16) with MiniLM's tokenizer and larger weights than BERT's
/// 0.02, so that every path carries a visible gradient: the finite-difference checks' model.
pub fn small_bert() -> webtune::model::Pretrained {
    let config = webtune::config::BertConfig { hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 32, ..webtune::config::BertConfig::default() };
    // Larger weights than BERT's 0.02 so that every path carries a visible gradient.
    let mut config_json = serde_json::to_value(&config).unwrap();
    config_json["initializer_range"] = 0.3.into();
    let config: webtune::config::BertConfig = serde_json::from_value(config_json.clone()).unwrap();
    let weights = webtune::checkpoint::random_bert(&config, 8);
    let p = webtune::model::Pretrained::load(&serde_json::to_vec(&config_json).unwrap(), &read(minilm_dir().join("tokenizer.json")), &weights).unwrap();
    assert_eq!(p.config.hidden_size, 16);
    p
}

/// The batch: two sentences of different lengths (so padding and the attention mask matter).
pub fn small_batch(p: &webtune::model::Pretrained) -> webtune::tokenize::Batch {
    let encoder = p.encoder(32).unwrap();
    let ids = encoder.encode_all(&["the movie was very good".to_string(), "bad".to_string()]).unwrap();
    encoder.batch(&ids.iter().map(|s| s.as_slice()).collect::<Vec<_>>(), false)
}
