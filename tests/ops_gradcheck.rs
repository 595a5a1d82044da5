//! Finite-difference checks of the custom ops' hand-written backward (src/ops.rs): LayerNorm,
//! softmax, GELU and the fused Linear (with and without a gradient slot). Each op is wrapped in
//! loss = Σ op(inputs) ⊙ r for a fixed random r, and every input's analytic gradient is compared
//! with central differences.
use candle_core::{Device, Tensor, Var};
use webtune::ops::{self, GradSlot};
use webtune::rng;

const EPS: f32 = 1e-2;

fn random(shape: &[usize], seed: u64, scale: f32) -> Vec<f32> {
    let n = shape.iter().product();
    rng::normal_vec(&mut rng::seeded(seed, 5), n, 0.0, scale)
}

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
}

/// Loss of `op` at the given input values, as f64.
fn loss_at(op: &dyn Fn(&[Tensor]) -> Tensor, values: &[Vec<f32>], shapes: &[Vec<usize>], r: &Tensor) -> f64 {
    let inputs: Vec<Tensor> = values.iter().zip(shapes).map(|(v, s)| tensor(v, s)).collect();
    op(&inputs).mul(r).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
}

/// Compare analytic and numeric gradients of every input. `weight_slot`: input index whose
/// gradient is read from that slot instead of candle's gradient store.
fn check(name: &str, op: &dyn Fn(&[Tensor]) -> Tensor, shapes: Vec<Vec<usize>>, weight_slot: Option<(usize, GradSlot)>) {
    let values: Vec<Vec<f32>> = shapes.iter().enumerate().map(|(i, s)| random(s, 10 + i as u64, 1.0)).collect();
    let vars: Vec<Var> = values.iter().zip(&shapes).map(|(v, s)| Var::from_tensor(&tensor(v, s)).unwrap()).collect();
    let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = op(&inputs);
    let r = tensor(&random(out.dims(), 99, 1.0), out.dims());
    let grads = out.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, var) in vars.iter().enumerate() {
        let analytic: Vec<f32> = match &weight_slot {
            Some((slot_input, slot)) if *slot_input == i => slot.peek(|g| g.to_vec()).expect("slot filled by backward"),
            _ => grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: input {i} got no gradient")).flatten_all().unwrap().to_vec1().unwrap(),
        };
        for j in 0..values[i].len() {
            let mut plus = values.clone();
            plus[i][j] += EPS;
            let mut minus = values.clone();
            minus[i][j] -= EPS;
            let numeric = (loss_at(op, &plus, &shapes, &r) - loss_at(op, &minus, &shapes, &r)) / (2.0 * EPS as f64);
            let a = analytic[j] as f64;
            assert!((a - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "{name}: d/d input{i}[{j}]: analytic {a}, numeric {numeric}");
        }
    }
}

#[test]
fn layer_norm_backward_matches_finite_differences() {
    check("layer_norm", &|t| ops::layer_norm(&t[0], &t[1], &t[2], 1e-12).unwrap(), vec![vec![3, 8], vec![8], vec![8]], None);
}

#[test]
fn softmax_backward_matches_finite_differences() {
    check("softmax", &|t| ops::softmax_last_dim(&t[0]).unwrap(), vec![vec![2, 3, 7]], None);
}

#[test]
fn gelu_backward_matches_finite_differences() {
    check("gelu", &|t| ops::gelu_erf(&t[0]).unwrap(), vec![vec![4, 9]], None);
}

#[test]
fn linear_backward_matches_finite_differences() {
    check("linear", &|t| ops::linear(&t[0], &t[1], &t[2], None).unwrap(), vec![vec![5, 6], vec![6, 4], vec![4]], None);
}

#[test]
fn linear_with_gradient_slot_matches_finite_differences() {
    let slot = GradSlot::new(6 * 4);
    let op_slot = slot.clone();
    check("linear+slot", &move |t| ops::linear(&t[0], &t[1], &t[2], Some(&op_slot)).unwrap(), vec![vec![5, 6], vec![6, 4], vec![4]], Some((1, slot)));
}

#[test]
fn linear_forward_equals_matmul_plus_bias() {
    let x = tensor(&random(&[7, 5], 1, 1.0), &[7, 5]);
    let w = tensor(&random(&[5, 3], 2, 1.0), &[5, 3]);
    let b = tensor(&random(&[3], 3, 1.0), &[3]);
    let fused = ops::linear(&x, &w, &b, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let plain = x.matmul(&w).unwrap().broadcast_add(&b).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let diff = fused.iter().zip(&plain).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-5, "fused linear differs from matmul + bias by {diff}");
}
