//! One seed gives the same run on any number of threads, bit for bit: every step's loss and
//! every final weight of a real all-MiniLM-L6-v2 run (`full` and `lora:4`) on 1, 2 and 3
//! threads (README: "the same curve on 1 and 2 threads"). The batch is large enough that the
//! kernels split their work (rows × hidden above the element-wise threshold, products above
//! gemm's), and the test checks that the second thread really worked.
use crate::common;

use common::*;
use webtune::data::parse_labelled_text;
use webtune::events::Event;
use webtune::{Strategy, TrainOptions};

/// What a run produced: every step's loss (as bits) and every tensor's values (as bits).
#[derive(PartialEq)]
struct Outcome {
    losses: Vec<u64>,
    weights: Vec<(String, Vec<u32>)>,
}

/// The CPU time (user + system, in clock ticks) of a thread of this process, by its task id.
#[cfg(target_os = "linux")]
fn cpu_ticks(task: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{task}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A pool of `threads` threads that records the task id of each of its threads.
fn pool(threads: usize) -> (rayon::ThreadPool, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = tasks.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| {
            // "/proc/thread-self" links to "PID/task/TID".
            if let Ok(link) = std::fs::read_link("/proc/thread-self") {
                record.lock().unwrap().push(link.file_name().unwrap().to_string_lossy().into_owned());
            }
        })
        .build()
        .unwrap();
    // Wait until every thread has started (and recorded itself).
    pool.broadcast(|_| ());
    (pool, tasks)
}

fn run_on(threads: usize, strategy: Strategy) -> Outcome {
    let session = minilm();
    let data = parse_labelled_text(&notebook_text()).unwrap();
    // Batch 8 padded to 64 tokens: 512 rows × 384 = 196,608 floats per activation, far above
    // the element-wise threshold (32,768), and 512 × 384 × 384 multiply-adds per projection,
    // far above gemm's (2^21). Two epochs: steps of 8 and of 2 sentences, and a reshuffle.
    let options = TrainOptions { epochs: 2, batch_size: 8, max_len: 64, pad_to_max_len: true, learning_rate: 1e-4, ..TrainOptions::default() };
    let (pool, tasks) = pool(threads);
    let ticks_before: Vec<u64> = tasks.lock().unwrap().iter().map(|t| cpu_ticks(t)).collect();
    let mut run = session.start_run(strategy, &data, None, &options).unwrap();
    let mut losses = Vec::new();
    pool.install(|| {
        assert_eq!(rayon::current_num_threads(), threads);
        assert_eq!(webtune::kernels::worth_splitting(512 * 384), threads > 1, "the activations of this batch are split only on several threads");
        loop {
            match run.step() {
                Event::Start { threads: reported, .. } => assert_eq!(reported, threads, "the run reports the pool it runs on"),
                Event::Step { loss, .. } => losses.push(loss.to_bits()),
                Event::Done { .. } => break,
                Event::Error { message } => panic!("{strategy} on {threads} threads: {message}"),
                _ => {}
            }
        }
    });
    assert_eq!(losses.len(), 4, "2 epochs of 2 steps");
    if threads > 1 {
        let worked: Vec<u64> = tasks.lock().unwrap().iter().zip(&ticks_before).map(|(t, before)| cpu_ticks(t) - before).collect();
        let (least, most) = (*worked.iter().min().unwrap(), *worked.iter().max().unwrap());
        // Without splitting, the run stays on the one pool thread that install picked.
        assert!(least * 10 >= most && least > 0, "{strategy} on {threads} threads: CPU ticks per pool thread {worked:?}: the work was not split");
    }
    let weights = run.named_tensors().unwrap().into_iter().map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect())).collect();
    Outcome { losses, weights }
}

fn check(strategy: Strategy) {
    let one = run_on(1, strategy);
    for threads in [2, 3] {
        let many = run_on(threads, strategy);
        assert_eq!(many.losses, one.losses, "{strategy}: per-step losses on {threads} threads differ from 1 thread's: {:?} vs {:?}", many.losses.iter().map(|b| f64::from_bits(*b)).collect::<Vec<_>>(), one.losses.iter().map(|b| f64::from_bits(*b)).collect::<Vec<_>>());
        assert_eq!(many.weights.len(), one.weights.len());
        for ((name, a), (_, b)) in many.weights.iter().zip(&one.weights) {
            let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(differing, 0, "{strategy}: {differing} of {} values of {name} differ between {threads} threads and 1", a.len());
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn full_fine_tuning_is_bitwise_the_same_on_1_2_and_3_threads() {
    check(Strategy::Full);
}

#[cfg(target_os = "linux")]
#[test]
fn lora_is_bitwise_the_same_on_1_2_and_3_threads() {
    check(Strategy::Lora(4));
}
