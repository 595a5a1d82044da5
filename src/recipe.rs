//! "Export recipe": a run's recipe as a folder a person runs with the tools they would use
//! anyway — PyTorch, transformers and PEFT, under `accelerate launch` or `torchrun`, on a CPU,
//! one GPU or a cluster — to train the same recipe on more data or a bigger model.
//!
//! The folder ([`export`]): `train.py` (one template, `src/recipe/train.py`, the same for every
//! run), `recipe.json` (the run's values: model, strategy, options, classes, data files),
//! `data/` (the training and validation sentences the run used, after any split), `order.json`
//! and `init.safetensors` (what webtune decides itself: each epoch's data order, the training
//! sentences accuracy is measured on, the classifier's — and a LoRA run's A matrices' — initial
//! weights, drawn exactly as a [`crate::train::Run`] draws them), `requirements.txt` and
//! `README.md`. With those, the script's run matches webtune's step by step
//! (`tests/python/check_recipe.py`).
use candle_core::Tensor;
use serde::Serialize;
use serde_json::json;

use crate::architecture::Architecture;
use crate::checkpoint;
use crate::data::Dataset;
use crate::lora;
use crate::model::{self, Pretrained};
use crate::optim::AdamConfig;
use crate::rng;
use crate::train;
use crate::types::{Strategy, TrainOptions};
use crate::{Error, Result};

const TRAIN_PY: &str = include_str!("recipe/train.py");
const REQUIREMENTS: &str = include_str!("recipe/requirements.txt");
const README: &str = include_str!("recipe/README.md");

/// Where the script gets the pre-trained model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A Hugging Face hub repository at a revision.
    Hub { repo: String, revision: String },
    /// A model folder (the CLI's `--model`).
    Folder(String),
    /// Files picked in the page: the person passes the folder with `--model`.
    LocalFiles,
}

/// What a recipe is made of: the run's strategy, data and options, and where its model came from.
pub struct RecipeRun<'a> {
    pub strategy: Strategy,
    pub train: &'a Dataset,
    pub validation: Option<&'a Dataset>,
    /// How the validation data came about, as a results record says it: "none", "split" or
    /// "separate".
    pub validation_kind: &'a str,
    pub options: &'a TrainOptions,
    pub model: ModelSource,
    /// Who exported it ("webtune page", "webtune CLI 0.1.0").
    pub producer: &'a str,
}

/// The recipe's folder as (relative path, bytes), in the order a listing shows them.
pub fn export(pretrained: &Pretrained, run: &RecipeRun<'_>) -> Result<Vec<(String, Vec<u8>)>> {
    if let Strategy::Lora(_) = run.strategy {
        run.options.lora.validate()?;
    }
    let mut files = vec![
        ("README.md".to_string(), readme(run).into_bytes()),
        ("train.py".to_string(), TRAIN_PY.as_bytes().to_vec()),
        ("requirements.txt".to_string(), REQUIREMENTS.as_bytes().to_vec()),
        ("recipe.json".to_string(), recipe_json(run, pretrained.config.architecture())?),
        ("order.json".to_string(), order_json(run).to_string().into_bytes()),
        ("init.safetensors".to_string(), checkpoint::serialize(&initial_weights(pretrained, run)?)?),
        ("data/train.tsv".to_string(), labelled_tsv(run.train).into_bytes()),
    ];
    if let Some(validation) = run.validation {
        files.push(("data/validation.tsv".to_string(), labelled_tsv(validation).into_bytes()));
    }
    Ok(files)
}

fn model_json(model: &ModelSource) -> serde_json::Value {
    match model {
        ModelSource::Hub { repo, revision } => json!({ "hub": repo, "revision": revision }),
        ModelSource::Folder(folder) => json!({ "folder": folder }),
        ModelSource::LocalFiles => json!({ "folder": null, "note": "loaded from local files in the page: pass the folder with --model" }),
    }
}

/// recipe.json: the run's values, read by train.py (fields in this order).
#[derive(Serialize)]
struct RecipeFile<'a> {
    format: &'static str,
    version: u32,
    producer: &'a str,
    strategy: String,
    model: serde_json::Value,
    labels: &'a [String],
    data: DataFiles<'a>,
    options: &'a TrainOptions,
    optimizer: serde_json::Value,
    /// PEFT's `target_modules` of a LoRA run.
    #[serde(skip_serializing_if = "Option::is_none")]
    lora_target_modules: Option<serde_json::Value>,
}

/// The data files, relative to the recipe's folder.
#[derive(Serialize)]
struct DataFiles<'a> {
    train: &'static str,
    validation: Option<&'static str>,
    /// As a results record says it: "none", "split" or "separate".
    validation_kind: &'a str,
}

fn recipe_json(run: &RecipeRun<'_>, architecture: Architecture) -> Result<Vec<u8>> {
    let adam = AdamConfig::default();
    let recipe = RecipeFile {
        format: "webtune-recipe",
        version: 1,
        producer: run.producer,
        strategy: run.strategy.to_string(),
        model: model_json(&run.model),
        labels: &run.train.labels,
        data: DataFiles { train: "data/train.tsv", validation: run.validation.map(|_| "data/validation.tsv"), validation_kind: run.validation_kind },
        options: run.options,
        optimizer: json!({ "betas": [adam.beta1, adam.beta2], "eps": adam.eps }),
        lora_target_modules: matches!(run.strategy, Strategy::Lora(_)).then(|| lora::peft_target_modules(&run.options.lora.targets, architecture)),
    };
    let mut bytes = serde_json::to_vec_pretty(&recipe).map_err(|e| Error::Options(format!("recipe.json: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Each epoch's order of the training sentences and the sample training accuracy is measured on.
fn order_json(run: &RecipeRun<'_>) -> serde_json::Value {
    let n = run.train.len();
    let mut shuffle = train::shuffle_stream(run.options.seed);
    let epochs: Vec<Vec<usize>> = (0..run.options.epochs).map(|_| rng::permutation(&mut shuffle, n)).collect();
    json!({ "train_size": n, "epochs": epochs, "train_eval_sample": train::train_eval_sample(run.train, run.options) })
}

/// The classifier's initial weights, a LoRA run's initial A matrices and — when the checkpoint
/// has none — the pooler webtune drew, with transformers' / PEFT's names.
fn initial_weights(pretrained: &Pretrained, run: &RecipeRun<'_>) -> Result<Vec<(String, Tensor)>> {
    let (config, seed) = (&pretrained.config, run.options.seed);
    let architecture = config.architecture();
    let head = model::init_classifier(config, run.train.labels.len(), seed)?;
    let classifier = architecture.classifier_module();
    let mut named = vec![(format!("{classifier}.weight"), head.hf_weight()?), (format!("{classifier}.bias"), head.bias.clone())];
    if !pretrained.has_pooler {
        let pooler = &pretrained.weights.pooler;
        let name = |n: &str| architecture.export_name(n).expect("every architecture has the dense layer");
        named.push((name("pooler.dense.weight"), pooler.hf_weight()?));
        named.push((name("pooler.dense.bias"), pooler.bias.clone()));
    }
    if let Strategy::Lora(rank) = run.strategy {
        let adapters = lora::init_adapters(config, &run.options.lora, rank, seed)?;
        named.extend(lora::named_adapter_tensors(&adapters, architecture)?.into_iter().filter(|(name, _)| name.ends_with("lora_A.weight")));
    }
    Ok(named)
}

/// `text<TAB>label` with a header; a field is quoted (as Python's csv and webtune read it) when
/// it holds a tab, a line break or starts with a quote.
fn labelled_tsv(ds: &Dataset) -> String {
    let field = |s: &str| {
        if s.contains(['\t', '\n', '\r']) || s.starts_with('"') { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = String::from("text\tlabel\n");
    for example in &ds.examples {
        out.push_str(&format!("{}\t{}\n", field(&example.text), field(&ds.labels[example.label])));
    }
    out
}

/// The folder's README: the template with the run's strategy and model filled in.
fn readme(run: &RecipeRun<'_>) -> String {
    let model = match &run.model {
        ModelSource::Hub { repo, revision } => format!("`{repo}` (revision `{revision}`) from the Hugging Face hub"),
        ModelSource::Folder(folder) => format!("the folder `{folder}`"),
        ModelSource::LocalFiles => "local files picked in the page: give their folder with `--model FOLDER`".to_string(),
    };
    README.replace("{strategy}", &run.strategy.to_string()).replace("{model}", &model).replace("{producer}", run.producer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Example;

    fn dataset(texts: &[(&str, usize)]) -> Dataset {
        Dataset {
            examples: texts.iter().enumerate().map(|(i, &(text, label))| Example { text: text.into(), label, line: i + 2 }).collect(),
            labels: vec!["neg".into(), "pos".into()],
        }
    }

    #[test]
    fn tsv_quotes_only_what_needs_quoting() {
        let ds = dataset(&[("plain text", 0), ("a\ttab", 1), ("\"quoted\" start", 0), ("inner \"quote\"", 1), ("two\nlines", 0)]);
        let tsv = labelled_tsv(&ds);
        assert_eq!(tsv, "text\tlabel\nplain text\tneg\n\"a\ttab\"\tpos\n\"\"\"quoted\"\" start\"\tneg\ninner \"quote\"\tpos\n\"two\nlines\"\tneg\n");
        let parsed = crate::data::parse_labelled_text(&tsv).expect("webtune reads its own TSV");
        assert_eq!(parsed.texts(), ds.texts());
    }
}
