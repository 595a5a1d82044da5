//! Memory of a run, measured with webtune's counting allocator: the plan's estimated peak
//! against the measured one, and what a finished run still holds. One test binary of its own
//! (the allocator counts the whole process), and the tests take a lock so that no other run
//! allocates while one is measured.
mod common;

use std::sync::Mutex;

use common::*;
use webtune::alloc_stats;
use webtune::config::BertConfig;
use webtune::data::{Dataset, Example};
use webtune::events::Event;
use webtune::{Session, Strategy, TrainOptions};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `n` sentences of `words` words, two classes.
fn sentences(n: usize, words: usize) -> Dataset {
    let vocab = ["the", "movie", "was", "good", "bad", "and", "i", "really", "liked", "it", "not", "very"];
    let examples = (0..n)
        .map(|i| Example { text: (0..words).map(|j| vocab[(i * 5 + j * 7 + j * j) % vocab.len()]).collect::<Vec<_>>().join(" "), label: i % 2, line: i + 1 })
        .collect();
    Dataset { examples, labels: vec!["a".into(), "b".into()] }
}

struct Measured {
    estimated_peak: u64,
    peak: u64,
    retained: u64,
    allocated_growth: i64,
}

fn measure(session: &Session, strategy: Strategy, data: &Dataset, options: &TrainOptions) -> Measured {
    let before = alloc_stats::allocated_bytes() as i64;
    let mut run = session.start_run(strategy, data, None, options).unwrap();
    let estimated_peak = run.plan().peak_bytes;
    let (peak, retained) = loop {
        match run.step() {
            Event::Done { peak_bytes, retained_bytes, .. } => break (peak_bytes, retained_bytes),
            Event::Error { message } => panic!("{message}"),
            _ => {}
        }
    };
    let allocated_growth = alloc_stats::allocated_bytes() as i64 - before;
    drop(run);
    Measured { estimated_peak, peak, retained, allocated_growth }
}

fn check(label: &str, m: &Measured) {
    let mib = |b: f64| b / 1048576.0;
    let ratio = m.estimated_peak as f64 / m.peak as f64;
    eprintln!("{label}: estimated peak {:.0} MiB, measured {:.0} MiB (ratio {ratio:.2}); retained {:.0} MiB, heap growth after done {:.0} MiB", mib(m.estimated_peak as f64), mib(m.peak as f64), mib(m.retained as f64), mib(m.allocated_growth as f64));
    assert!((0.75..=1.25).contains(&ratio), "{label}: the estimate is off by more than 25 %: {ratio:.2}");
}

#[test]
fn minilm_estimates_are_within_a_quarter_of_the_measured_peaks() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let session = minilm();
    let notebook = webtune::data::parse_labelled_text(&notebook_text()).unwrap();
    let cases = [
        ("full, notebook, batch 2", Strategy::Full, notebook.clone(), TrainOptions { epochs: 1, ..TrainOptions::default() }),
        ("full, batch 16 × 64", Strategy::Full, sentences(32, 80), TrainOptions { epochs: 1, batch_size: 16, max_len: 64, pad_to_max_len: true, ..TrainOptions::default() }),
        ("top:2, batch 8 × 128", Strategy::Top(2), sentences(16, 150), TrainOptions { epochs: 1, batch_size: 8, ..TrainOptions::default() }),
        ("frozen, 2,000 sentences", Strategy::Frozen, sentences(2000, 20), TrainOptions { epochs: 1, batch_size: 32, ..TrainOptions::default() }),
    ];
    for (label, strategy, data, options) in cases {
        check(label, &measure(&session, strategy, &data, &options));
    }
}

#[test]
fn bert_base_estimates_are_within_a_quarter_of_the_measured_peaks() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let config = BertConfig::bert_base();
    let session = Session::load(&serde_json::to_vec(&config).unwrap(), &read(minilm_dir().join("tokenizer.json")), &webtune::checkpoint::random_bert(&config, 0)).unwrap();
    let data = sentences(4, 150);
    for (label, strategy) in [("bert-base full, batch 2 × 128", Strategy::Full), ("bert-base top:2, batch 2 × 128", Strategy::Top(2))] {
        check(label, &measure(&session, strategy, &data, &TrainOptions { epochs: 1, ..TrainOptions::default() }));
    }
}

#[test]
fn a_finished_run_keeps_only_its_trained_weights() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let session = minilm();
    let data = webtune::data::parse_labelled_text(&notebook_text()).unwrap();
    let options = TrainOptions { epochs: 1, ..TrainOptions::default() };
    // The first run in a process also leaves what lives as long as the process (6 MB more heap
    // than every later run, measured when this test ran alone): measure a second run.
    measure(&session, Strategy::Full, &data, &options);
    let m = measure(&session, Strategy::Full, &data, &options);
    // Full trains every weight: the run keeps one copy (≈ 4 bytes × 22.7M) but frees the
    // gradient slots (≈ 1 copy) and the Adam moments (2 copies).
    let weights = 4 * session.info().num_parameters as i64;
    assert!(m.retained as i64 >= weights, "retained {} < one copy of the weights {weights}", m.retained);
    assert!(m.allocated_growth <= m.retained as i64 + (8 << 20), "after done the heap still holds {} bytes beyond the {} the run keeps", m.allocated_growth, m.retained);
    assert!(m.peak as i64 >= 3 * weights, "the peak {} should include weights, gradients and moments", m.peak);
}

/// Loading a model holds the file's bytes and the weights built from them at once: the plan's
/// load estimate (what the page checks before it downloads the weights) must cover the measured
/// peak of a real load, and not by far more.
#[test]
fn the_load_estimate_covers_the_measured_peak_of_loading_minilm() {
    let _lock = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = minilm_dir();
    let (config, tokenizer, model) = (read(dir.join("config.json")), read(dir.join("tokenizer.json")), read(dir.join("model.safetensors")));
    let config_parsed = BertConfig::from_json(&config).unwrap();
    // As in the page: the file's bytes are in memory before the load starts.
    alloc_stats::reset_peak();
    let before = alloc_stats::allocated_bytes();
    let session = Session::load(&config, &tokenizer, &model).unwrap();
    let measured = (alloc_stats::peak_bytes() - before + model.len()) as u64;
    let estimated = webtune::plan::load_peak_bytes(&config_parsed, model.len() as u64);
    let ratio = estimated as f64 / measured as f64;
    eprintln!("load: estimated peak {} MiB, measured {} MiB (file {} MiB): ratio {ratio:.2}", estimated >> 20, measured >> 20, model.len() >> 20);
    assert!((1.0..=1.25).contains(&ratio), "the load estimate must cover the measured peak, by at most a quarter more: {ratio:.2}");
    drop(session);
}

/// The page's limit: a model whose load cannot fit is refused with a message that says so,
/// before its weights are fetched; bert-base loads beside a quarter-full heap.
#[test]
fn a_model_too_large_to_load_is_refused_before_loading() {
    const TAB: u64 = (4 << 30) - (384 << 20);
    let base = BertConfig::bert_base();
    let f32_file = webtune::plan::model_bytes(&base);
    webtune::plan::check_load_fits(&base, f32_file, TAB / 4, TAB).unwrap();
    let mut large = BertConfig::bert_base();
    (large.hidden_size, large.intermediate_size, large.num_attention_heads, large.num_hidden_layers) = (2048, 8192, 16, 36);
    let message = webtune::plan::check_load_fits(&large, webtune::plan::model_bytes(&large), 0, TAB).unwrap_err().to_string();
    assert!(message.contains("Loading this model needs about") && message.contains("Pick a smaller model"), "{message}");
}
