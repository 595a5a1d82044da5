//! A run driven unit by unit (`Run::advance`, what the page does so that Stop takes effect
//! inside a long step): the same losses and weights as `Run::step`, bit for bit, even with other
//! work between the units; a step of as many units as the model's layers and the strategy's
//! backward extent say, each at most one layer's work; and a Stop between two units of a step
//! leaves the weights of the last finished step.
use crate::common;

use common::*;
use webtune::data::{Dataset, Example};
use webtune::events::{Event, UnitProgress};
use webtune::train::Advance;
use webtune::{Run, Session, Strategy, TrainOptions};

/// `n` distinct sentences, three classes.
fn sentences(n: usize) -> Dataset {
    let vocab = ["the", "movie", "was", "good", "bad", "and", "i", "really", "liked", "it", "not", "very", "card", "money", "transfer", "my"];
    let examples = (0..n)
        .map(|i| {
            let len = 4 + i % 9;
            Example { text: (0..len).map(|j| vocab[(i * 5 + j * 7 + j * j) % vocab.len()]).collect::<Vec<_>>().join(" "), label: i % 3, line: i + 1 }
        })
        .collect();
    Dataset { examples, labels: vec!["a".into(), "b".into(), "c".into()] }
}

fn options() -> TrainOptions {
    // Two epochs of three steps: evaluations between them, the last batch smaller.
    TrainOptions { epochs: 2, batch_size: 4, seed: 7, ..TrainOptions::default() }
}

fn start(session: &Session, strategy: Strategy) -> Run {
    let data = sentences(10);
    let val = sentences(13);
    session.start_run(strategy, &data, Some(&val), &options()).unwrap()
}

/// One call's outcome, as a driver sees it.
enum Seen {
    Unit(UnitProgress),
    Event(Event),
}

/// Every call's outcome of a run driven by `advance` to its end; `between` runs after each unit.
fn advance_to_end(run: &mut Run, mut between: impl FnMut(&Run)) -> Vec<Seen> {
    let mut seen = Vec::new();
    loop {
        match run.advance() {
            Advance::Unit(unit) => {
                seen.push(Seen::Unit(unit));
                between(run);
            }
            Advance::Event(event) => {
                let done = event.is_done();
                seen.push(Seen::Event(event));
                if done {
                    return seen;
                }
            }
        }
    }
}

fn events(seen: &[Seen]) -> Vec<&Event> {
    seen.iter().filter_map(|s| if let Seen::Event(e) = s { Some(e) } else { None }).collect()
}

/// What a run's events say apart from timings: losses bit for bit, learning rates, accuracies.
fn outcome(events: &[&Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Step { epoch, step, loss, lr, head_lr, work_done, .. } => format!("step {epoch} {step} {:x} {lr} {head_lr} {work_done}", loss.to_bits()),
            Event::Epoch { epoch, train_loss, train_accuracy, val_loss, val_accuracy, .. } => {
                format!("epoch {epoch} {:x} {train_accuracy} {:?} {val_accuracy:?}", train_loss.to_bits(), val_loss.map(f64::to_bits))
            }
            Event::Progress { phase, epoch, done, total, work_done, .. } => format!("progress {phase:?} {epoch} {done}/{total} {work_done}"),
            Event::Done { per_class, confusion, steps, .. } => format!("done {per_class:?} {confusion:?} {steps}"),
            Event::Embedding { epoch, train, validation, .. } => format!("embedding {epoch} {train:?} {validation:?}"),
            Event::Layers { epoch, blocks, .. } => format!("layers {epoch} {blocks:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The run's trained weights as exported (and its LoRA adapter's files).
fn weights(run: &Run) -> (Vec<u8>, Option<(Vec<u8>, Vec<u8>)>) {
    (run.export().unwrap().model_safetensors, run.export_adapter().unwrap())
}

/// Units the model's six layers give a step of each strategy: the embeddings, six layers
/// forward, the head; then two halves per layer the backward reaches, the embeddings' backward
/// when they train; last the optimizer.
fn units_per_step(strategy: Strategy) -> usize {
    let forward = 1 + 6 + 1;
    match strategy {
        Strategy::Full => forward + 2 * 6 + 1 + 1,
        Strategy::Top(k) => forward + 2 * k + 1,
        // MiniLM's adapters sit in every layer: the backward reaches layer 0, not the
        // embeddings.
        Strategy::Lora(_) => forward + 2 * 6 + 1,
        Strategy::Frozen => 1,
    }
}

const STRATEGIES: [Strategy; 4] = [Strategy::Full, Strategy::Top(2), Strategy::Lora(4), Strategy::Frozen];

#[test]
fn advancing_unit_by_unit_gives_the_same_run_as_stepping() {
    let session = minilm();
    let probe = vec!["a probe sentence between two units".to_string()];
    let mut other = start(&session, Strategy::Frozen);
    while !other.step().is_done() {}
    for strategy in STRATEGIES {
        let mut stepped = start(&session, strategy);
        let mut stepped_events = Vec::new();
        loop {
            let event = stepped.step();
            let done = event.is_done();
            stepped_events.push(event);
            if done {
                break;
            }
        }
        // The page's worker runs other requests between units (Try it on another run, parsing):
        // here another run of the same model predicts after every third unit.
        let mut advanced = start(&session, strategy);
        let mut units = 0;
        let seen = advance_to_end(&mut advanced, |_| {
            units += 1;
            if units % 3 == 0 {
                other.predict(&probe).unwrap();
            }
        });
        assert!(units > 0 || strategy == Strategy::Frozen, "{strategy}: no step or chunk took more than one unit");
        assert_eq!(outcome(&events(&seen)), outcome(&stepped_events.iter().collect::<Vec<_>>()), "{strategy}: the events differ");
        assert!(weights(&advanced) == weights(&stepped), "{strategy}: the trained weights differ");
    }
}

#[test]
fn a_step_is_as_many_units_as_the_layers_and_backward_extent_give() {
    let session = minilm();
    for strategy in STRATEGIES {
        let mut run = start(&session, strategy);
        let seen = advance_to_end(&mut run, |_| {});
        // The units since the last event, checked at every step event.
        let mut since: Vec<&UnitProgress> = Vec::new();
        let mut last_step_work = 0.0;
        let mut steps = 0;
        for s in &seen {
            match s {
                Seen::Unit(unit) => since.push(unit),
                Seen::Event(Event::Step { work_done, .. }) => {
                    let units = units_per_step(strategy);
                    assert_eq!(since.len(), units - 1, "{strategy}: calls before a step's event");
                    for (i, unit) in since.iter().enumerate() {
                        assert_eq!((unit.units_done, unit.units), (i + 1, units), "{strategy}: unit {i} of a step");
                        assert!((0.0..=1.0).contains(&unit.fraction), "{strategy}: fraction {}", unit.fraction);
                        assert!(unit.work_done >= last_step_work && unit.work_done <= *work_done, "{strategy}: in-step work {} outside {last_step_work}..{work_done}", unit.work_done);
                    }
                    assert!(since.windows(2).all(|w| w[0].fraction <= w[1].fraction && w[0].elapsed_ms <= w[1].elapsed_ms), "{strategy}: in-step progress must not go back");
                    if strategy != Strategy::Frozen {
                        assert!(since.last().unwrap().fraction > 0.99, "{strategy}: a step's matrix products are all done before its optimizer");
                        assert!(since.iter().any(|u| u.work_done > last_step_work), "{strategy}: the work done must move inside a step");
                    }
                    last_step_work = *work_done;
                    steps += 1;
                    since.clear();
                }
                // An evaluation chunk (the only other piece of several units): embeddings, each
                // layer, pooler; a frozen run evaluates its cache in one call.
                Seen::Event(Event::Progress { .. } | Event::Epoch { .. } | Event::Embedding { .. }) if !since.is_empty() => {
                    assert_eq!(since.len(), 6 + 2 - 1, "{strategy}: calls of an evaluation chunk");
                    assert!(since.iter().all(|u| u.units == 8), "{strategy}: units of an evaluation chunk");
                    since.clear();
                }
                Seen::Event(_) => assert!(since.is_empty(), "{strategy}: units before an event that ends no piece of work"),
            }
        }
        assert_eq!(steps, run.total_steps(), "{strategy}: steps");
    }
}

#[test]
fn a_stop_inside_a_step_keeps_the_weights_of_the_last_finished_step() {
    let session = minilm();
    for strategy in [Strategy::Full, Strategy::Top(2), Strategy::Lora(4)] {
        // The reference: the same run, stepped to its first optimizer step.
        let mut reference = start(&session, strategy);
        while !matches!(reference.step(), Event::Step { .. }) {}
        let after_first = weights(&reference);
        let units = units_per_step(strategy);
        // Stops after the first unit of step 2, after its head (its first gradients are
        // written), and just before its optimizer.
        for units_into_step in [1, 1 + 6 + 1, units - 1] {
            let mut run = start(&session, strategy);
            while !matches!(run.advance(), Advance::Event(Event::Step { .. })) {}
            for _ in 0..units_into_step {
                assert!(matches!(run.advance(), Advance::Unit(_)), "{strategy}: step 2 has more than {units_into_step} units");
            }
            let stopped = run.stop();
            assert!(matches!(stopped, Event::Stopped { steps: 1, .. }), "{strategy}: {stopped:?}");
            assert!(run.finished(), "{strategy}: a stopped run is finished");
            assert!(weights(&run) == after_first, "{strategy}: stopped {units_into_step} units into step 2, the weights are not those of step 1");
            assert_eq!(run.step(), stopped, "{strategy}: a stopped run stays stopped");
        }
    }
}
