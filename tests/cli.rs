//! The native CLI's own checks on its arguments (the core's are tested in training.rs).
mod common;

use std::process::Command;

use common::*;

fn webtune(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webtune")).args(args).current_dir(repo_path("")).output().expect("webtune runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_empty_validation_file_is_an_error_not_no_validation() {
    let dir = std::env::temp_dir().join(format!("webtune-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.tsv");
    std::fs::write(&empty, "\n  \n").unwrap();
    let model = minilm_dir();
    let (ok, stderr) = webtune(&["train", "--model", model.to_str().unwrap(), "--data", "data/notebook.tsv", "--val-data", empty.to_str().unwrap(), "--epochs", "1"]);
    assert!(!ok, "training with an empty --val-data file succeeded");
    assert!(stderr.contains("empty.tsv") && stderr.contains("is empty"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
