//! `webtune bench` and `webtune random-checkpoint`.
use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct BenchArgs {}

#[derive(clap::Args)]
pub struct RandomCheckpointArgs {
    /// Output folder (config.json, tokenizer.json copied from --tokenizer-from, model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Folder whose tokenizer.json to copy (the bert-base-uncased vocabulary).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    tokenizer_from: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(_args: BenchArgs) -> CliResult {
    Err("bench: not written yet".into())
}

pub fn random_checkpoint(args: RandomCheckpointArgs) -> CliResult {
    let config = webtune::config::BertConfig::bert_base();
    let bytes = webtune::checkpoint::random_bert(&config, args.seed);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let config_json = serde_json::to_vec_pretty(&config).expect("config serializes");
    std::fs::write(args.out.join("config.json"), config_json).map_err(|e| e.to_string())?;
    std::fs::copy(args.tokenizer_from.join("tokenizer.json"), args.out.join("tokenizer.json")).map_err(|e| format!("tokenizer.json: {e}"))?;
    std::fs::write(args.out.join("model.safetensors"), bytes).map_err(|e| e.to_string())?;
    eprintln!("wrote a random bert-base-uncased-shaped checkpoint to {}", args.out.display());
    Ok(())
}
