//! The embedding map and the layer changes: PCA against numpy, frozen snapshots that do not
//! move, full fine-tuning pulling the notebook's classes apart, and block changes that are zero
//! exactly where a strategy freezes.
use crate::common;

use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::{BlockChange, Event, MapPoints};
use webtune::insight::{separation, PrincipalPlane};
use webtune::{Session, Strategy, TrainOptions};

fn golden_matrix(rows: usize, cols: usize) -> Vec<Vec<f32>> {
    (0..rows)
        .map(|i| {
            (0..cols)
                .map(|j| {
                    let (fi, fj) = (i as f64, j as f64);
                    let extra = if i % 3 == 0 { 0.5 * fj / cols as f64 } else { 0.0 };
                    ((0.37 * fi + 1.3 * fj).sin() + 0.05 * fj * (0.11 * fi * fj).cos() + extra) as f32
                })
                .collect()
        })
        .collect()
}

#[test]
fn principal_components_match_numpy() {
    let golden: serde_json::Value = serde_json::from_slice(&read(repo_path("tests/data/pca_golden.json"))).unwrap();
    let x = golden_matrix(golden["rows"].as_u64().unwrap() as usize, golden["cols"].as_u64().unwrap() as usize);
    let p = PrincipalPlane::principal_components(&x);
    assert_eq!(p, PrincipalPlane::principal_components(&x), "the projection is deterministic");
    for (k, axis) in golden["axes"].as_array().unwrap().iter().enumerate() {
        let diff = max_abs_diff(&p.axes[k], &f32s(axis));
        assert!(diff <= 1e-5, "axis {k} differs from numpy's by {diff}");
    }
    assert!(max_abs_diff(&p.mean, &f32s(&golden["mean"])) <= 1e-6);
    for (i, row) in golden["projected_first_rows"].as_array().unwrap().iter().enumerate() {
        let (x_, y_) = p.project(&x[i]);
        let want = f32s(row);
        assert!((x_ as f32 - want[0]).abs() <= 1e-5 && (y_ as f32 - want[1]).abs() <= 1e-5, "row {i}: ({x_}, {y_}) vs {want:?}");
    }
}

#[test]
fn separation_grows_as_classes_pull_apart() {
    let cloud = |offset: f32| -> Vec<Vec<f32>> { (0..20).map(|i| vec![offset + (i % 5) as f32 * 0.1, (i / 5) as f32 * 0.1]).collect() };
    let labels: Vec<usize> = (0..40).map(|i| i / 20).collect();
    let near: Vec<Vec<f32>> = cloud(0.0).into_iter().chain(cloud(0.1)).collect();
    let far: Vec<Vec<f32>> = cloud(0.0).into_iter().chain(cloud(5.0)).collect();
    assert!(separation(&far, &labels) > 50.0 * separation(&near, &labels));
    let same: Vec<Vec<f32>> = cloud(0.0).into_iter().chain(cloud(0.0)).collect();
    assert!(separation(&same, &labels) < 1e-12);
}

struct Insight {
    maps: Vec<(usize, MapPoints, f64, Option<[f64; 3]>)>,
    layers: Vec<(usize, Vec<BlockChange>)>,
}

fn run_insight(session: &Session, strategy: Strategy) -> Insight {
    let data = parse_labelled_text(&notebook_text()).unwrap();
    let mut run = session.start_run(strategy, &data, None, &TrainOptions::default()).unwrap();
    let mut insight = Insight { maps: Vec::new(), layers: Vec::new() };
    loop {
        match run.step() {
            Event::Embedding { epoch, train, separation, decision_line, validation, .. } => {
                assert!(validation.is_none());
                insight.maps.push((epoch, train, separation, decision_line));
            }
            Event::Layers { epoch, blocks, .. } => insight.layers.push((epoch, blocks)),
            Event::Done { .. } => return insight,
            Event::Error { message } => panic!("{message}"),
            _ => {}
        }
    }
}

#[test]
fn frozen_points_never_move_and_full_pulls_the_classes_apart() {
    let session = minilm();
    let frozen = run_insight(&session, Strategy::Frozen);
    let full = run_insight(&session, Strategy::Full);
    for insight in [&frozen, &full] {
        assert_eq!(insight.maps.iter().map(|m| m.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4], "a snapshot before training and after each epoch");
        assert_eq!(insight.maps[0].1.text.len(), 10, "the first snapshot names the sentences");
        assert!(insight.maps[1..].iter().all(|m| m.1.text.is_empty()));
        assert!(insight.maps.iter().all(|m| m.3.is_some()), "two classes: a decision line");
    }
    // Both start from the same pre-trained model: the same plane, the same points.
    assert_eq!(frozen.maps[0].1.x, full.maps[0].1.x);
    assert_eq!(frozen.maps[0].1.y, full.maps[0].1.y);
    for (epoch, points, sep, _) in &frozen.maps[1..] {
        assert_eq!(points.x, frozen.maps[0].1.x, "frozen: points moved in x at epoch {epoch}");
        assert_eq!(points.y, frozen.maps[0].1.y, "frozen: points moved in y at epoch {epoch}");
        assert_eq!(*sep, frozen.maps[0].2);
    }
    for (epoch, points, _, _) in &full.maps[1..] {
        assert_ne!(points.x, full.maps[0].1.x, "full: points did not move at epoch {epoch}");
    }
    let seps: Vec<f64> = full.maps.iter().map(|m| m.2).collect();
    assert!(seps[4] > 2.0 * seps[0], "full fine-tuning should pull the classes apart: separation per epoch {seps:?}");
    // The decision line moves with the head.
    assert_ne!(frozen.maps[0].3, frozen.maps[4].3);
    // After full fine-tuning the line runs through the points (the map would otherwise show it
    // off to one side, far from the classes it separates): the points' centroid is closer to it
    // than the points' spread, and it puts most points on their predicted class's side.
    let (_, points, _, line) = &full.maps[4];
    let [a, b, c] = line.unwrap();
    let n = points.x.len() as f64;
    let (cx, cy) = (points.x.iter().sum::<f64>() / n, points.y.iter().sum::<f64>() / n);
    let spread = points.x.iter().zip(&points.y).map(|(x, y)| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt()).fold(0.0, f64::max);
    let distance = (a * cx + b * cy + c).abs() / (a * a + b * b).sqrt();
    assert!(distance < spread, "decision line {distance:.3} from the points' centroid, beyond their spread {spread:.3}");
    let agree = points.x.iter().zip(&points.y).zip(&points.predicted).filter(|((x, y), p)| (a * **x + b * **y + c > 0.0) == (**p == 1)).count();
    assert!(agree * 10 >= points.x.len() * 7, "the line puts only {agree} of {} points on their predicted side", points.x.len());
}

fn nonzero_blocks(blocks: &[BlockChange]) -> Vec<String> {
    blocks.iter().filter(|b| b.change > 0.0).map(|b| b.name.clone()).collect()
}

#[test]
fn layer_changes_are_zero_exactly_where_the_strategy_freezes() {
    let session = minilm();
    let names = |blocks: &[BlockChange]| blocks.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
    let all: Vec<String> = ["embeddings", "layer 0", "layer 1", "layer 2", "layer 3", "layer 4", "layer 5", "pooler", "classifier"].map(String::from).to_vec();
    for (strategy, moving) in [
        (Strategy::Frozen, vec!["classifier"]),
        (Strategy::Top(2), vec!["layer 4", "layer 5", "pooler", "classifier"]),
        (Strategy::Full, all.iter().map(String::as_str).collect()),
    ] {
        let insight = run_insight(&session, strategy);
        assert_eq!(insight.layers.iter().map(|l| l.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        for (epoch, blocks) in &insight.layers {
            assert_eq!(names(blocks), all, "{strategy} epoch {epoch}: blocks");
            assert_eq!(nonzero_blocks(blocks), moving, "{strategy} epoch {epoch}: which blocks moved");
            assert!(blocks.iter().all(|b| b.relative == (b.name != "classifier")));
        }
    }
}
