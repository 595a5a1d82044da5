//! The step-wise phases of a run on real-sized data: each `step()` call does one bounded chunk
//! (encoding the frozen cache, evaluating) and says so in a `progress` event; the training
//! accuracy is measured on a fixed sample; a run stopped in any phase ends cleanly.
use crate::common;

use common::*;
use webtune::data::{Dataset, Example};
use webtune::events::{Event, Phase};
use webtune::{plan, Run, Session, Strategy, TrainOptions};

/// `n` distinct sentences of about `words` words, three classes.
fn sentences(n: usize, words: usize) -> Dataset {
    let vocab = ["the", "movie", "was", "good", "bad", "and", "i", "really", "liked", "it", "not", "very", "card", "money", "transfer", "my"];
    let examples = (0..n)
        .map(|i| {
            let len = words / 2 + i % words;
            Example { text: (0..len).map(|j| vocab[(i * 5 + j * 7 + j * j) % vocab.len()]).collect::<Vec<_>>().join(" "), label: i % 3, line: i + 1 }
        })
        .collect();
    Dataset { examples, labels: vec!["a".into(), "b".into(), "c".into()] }
}

/// Every event of a run, to the end.
fn all_events(run: &mut Run) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let event = run.step();
        let done = event.is_done();
        events.push(event);
        if done {
            return events;
        }
    }
}

/// (done, total) of the progress events of one phase (and epoch, for evaluations).
fn progress_of(events: &[Event], which: Phase, of_epoch: usize) -> Vec<(usize, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { phase, epoch, done, total, .. } if *phase == which && *epoch == of_epoch => Some((*done, *total)),
            _ => None,
        })
        .collect()
}

/// Progress counts rise strictly towards the total, in chunks of at most `max_tokens` padded
/// tokens (or one sentence). The cache's last chunk reports `total`; an evaluation's last chunk
/// is reported by the epoch event instead (`ends_with_progress` false).
fn check_chunks(what: &str, progress: &[(usize, usize)], total: usize, lengths: &[usize], max_tokens: usize, ends_with_progress: bool) {
    assert!(progress.len() >= 2, "{what}: {} progress event(s), expected several chunks", progress.len());
    let mut previous = 0;
    let ends: Vec<usize> = progress.iter().map(|&(done, _)| done).chain((!ends_with_progress).then_some(total)).collect();
    for (&done, &(_, t)) in ends.iter().zip(progress.iter().chain(std::iter::once(&(total, total)))) {
        assert_eq!(t, total, "{what}: total");
        assert!(done > previous, "{what}: progress must rise ({previous} → {done})");
        let longest = lengths[previous..done].iter().max().unwrap();
        assert!(done - previous == 1 || (done - previous) * longest <= max_tokens, "{what}: a chunk of {} sentences × {longest} tokens exceeds {max_tokens}", done - previous);
        previous = done;
    }
    assert_eq!(previous, total, "{what}: the chunks cover the phase");
}

fn token_lengths(session: &Session, data: &Dataset) -> Vec<usize> {
    let encoder = session.pretrained().encoder(128).unwrap();
    encoder.encode_all(&data.texts()).unwrap().iter().map(Vec::len).collect()
}

#[test]
fn frozen_encodes_its_cache_in_bounded_chunks_with_progress() {
    let session = minilm();
    let (train, val) = (sentences(300, 20), sentences(90, 20));
    let options = TrainOptions { epochs: 2, batch_size: 32, head_learning_rate: Some(1e-2), ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Frozen, &train, Some(&val), &options).unwrap();
    let events = all_events(&mut run);
    assert!(matches!(&events[0], Event::Start { train_size: 300, val_size: 90, train_eval_size: 300, .. }), "{:?}", events[0]);
    let max_tokens = (plan::CHUNK_FLOPS / plan::encoder_flops_per_token(&session.pretrained().config)) as usize;
    let lengths: Vec<usize> = token_lengths(&session, &train).into_iter().chain(token_lengths(&session, &val)).collect();
    check_chunks("cache", &progress_of(&events, Phase::Cache, 0), 390, &lengths, max_tokens, true);
    // All encoding comes before the first step; the head's evaluation needs no chunks.
    let first_step = events.iter().position(|e| matches!(e, Event::Step { .. })).unwrap();
    let last_cache = events.iter().rposition(|e| matches!(e, Event::Progress { phase: Phase::Cache, .. })).unwrap();
    assert!(last_cache < first_step);
    assert!(progress_of(&events, Phase::Evaluate, 1).is_empty());
    let epochs: Vec<usize> = events.iter().filter_map(|e| if let Event::Epoch { epoch, .. } = e { Some(*epoch) } else { None }).collect();
    assert_eq!(epochs, vec![1, 2]);
    assert!(matches!(events.last().unwrap(), Event::Done { evaluated_on, .. } if evaluated_on == "validation"));
}

#[test]
fn evaluation_is_chunked_and_uses_a_fixed_training_sample() {
    let session = minilm();
    let train = sentences(240, 16);
    let options = TrainOptions { epochs: 2, batch_size: 60, train_eval_sample: 90, ..TrainOptions::default() };
    let mut run = session.start_run(Strategy::Top(1), &train, None, &options).unwrap();
    let events = all_events(&mut run);
    assert!(matches!(&events[0], Event::Start { train_eval_size: 90, total_steps: 8, .. }), "{:?}", events[0]);
    let max_tokens = (plan::CHUNK_FLOPS / plan::encoder_flops_per_token(&session.pretrained().config)) as usize;
    let sample = webtune::data::stratified_sample(&train, 90, 0);
    let all_lengths = token_lengths(&session, &train);
    let lengths: Vec<usize> = sample.iter().map(|&i| all_lengths[i]).collect();
    for epoch in [1, 2] {
        let progress = progress_of(&events, Phase::Evaluate, epoch);
        check_chunks(&format!("evaluation of epoch {epoch}"), &progress, 90, &lengths, max_tokens, false);
    }
    for event in &events {
        if let Event::Epoch { train_eval_size, val_accuracy, .. } = event {
            assert_eq!(*train_eval_size, 90);
            assert!(val_accuracy.is_none());
        }
    }
    // No validation data: the report is on the training sample, 30 sentences per class.
    match events.last().unwrap() {
        Event::Done { evaluated_on, per_class, .. } => {
            assert_eq!(evaluated_on, "training sample");
            assert_eq!(per_class.iter().map(|c| c.support).collect::<Vec<_>>(), vec![30, 30, 30]);
        }
        other => panic!("expected done, got {other:?}"),
    }
}

/// Step until `phase` has produced `chunks` progress events, then stop.
fn stop_during(session: &Session, strategy: Strategy, phase: Phase, chunks: usize) {
    let (train, val) = (sentences(200, 20), sentences(60, 20));
    let options = TrainOptions { epochs: 1, batch_size: 100, ..TrainOptions::default() };
    let mut run = session.start_run(strategy, &train, Some(&val), &options).unwrap();
    let mut seen = 0;
    while seen < chunks {
        match run.step() {
            Event::Progress { phase: p, .. } if p == phase => seen += 1,
            event if event.is_done() => panic!("the run ended before {chunks} chunks of {phase:?}: {event:?}"),
            _ => {}
        }
    }
    let stopped = run.stop();
    assert!(matches!(stopped, Event::Stopped { .. }), "{stopped:?}");
    assert!(run.finished());
    assert_eq!(run.step(), stopped, "a stopped run stays stopped");
    // What was trained so far still predicts and exports.
    let predictions = run.predict(&["the movie was good".to_string()]).unwrap();
    assert_eq!(predictions[0].labels.len(), 3);
    assert!(run.export().is_ok());
}

#[test]
fn a_run_stopped_while_caching_or_evaluating_ends_cleanly() {
    let session = minilm();
    stop_during(&session, Strategy::Frozen, Phase::Cache, 2);
    stop_during(&session, Strategy::Full, Phase::Evaluate, 2);
}
