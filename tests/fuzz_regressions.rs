//! Replays every input under `tests/data/fuzz/TARGET/` through the code its fuzz target runs
//! (`fuzz/src/targets.rs`, included here by path, so no fuzzing toolchain is needed). Each input
//! once made that target panic, hang or abort, or is a case the fixes for it refuse; none may
//! again. New ones come from `./build.sh fuzz` (see fuzz/README.md).
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

#[path = "../fuzz/src/targets.rs"]
mod targets;

/// Longer than any of these inputs takes, short enough that a hang fails the test.
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_regression_input_is_handled() {
    let mut replayed = 0;
    for (target, run) in targets::TARGETS {
        for path in inputs(target) {
            let bytes = std::fs::read(&path).unwrap();
            let (done, finished) = mpsc::channel();
            let name = path.display().to_string();
            std::thread::spawn(move || {
                let result = std::panic::catch_unwind(|| run(&bytes));
                let _ = done.send(result.is_ok());
            });
            match finished.recv_timeout(TIME_LIMIT) {
                Ok(true) => replayed += 1,
                Ok(false) => panic!("{target}: {name} panicked (see above)"),
                Err(_) => panic!("{target}: {name} did not finish within {TIME_LIMIT:?}"),
            }
        }
    }
    assert!(replayed > 0, "no regression inputs found under tests/data/fuzz/");
}

#[test]
fn the_fuzz_fixtures_and_seeds_work() {
    // The tiny model the checkpoint and options targets use loads, and trains a few steps.
    let config = webtune::config::BertConfig::from_json(targets::TINY_CONFIG).unwrap();
    targets::checkpoint(&webtune::checkpoint::random_bert(&config, 1));
    targets::options(b"{\"epochs\": 1, \"batch_size\": 2}");
    targets::config(targets::TINY_CONFIG);
    targets::tokenizer(targets::TINY_TOKENIZER);
    targets::data(b"text\tlabel\ngood\t1\nbad\t0\n\0text\tlabel\nfine\t1\n");
    // The record seed is a real CLI record whose head reads back.
    let record = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/fixtures/record.json")).unwrap();
    webtune::record::read_record_head(&record).expect("the record fixture reads back");
    targets::record(record.as_bytes());
}
