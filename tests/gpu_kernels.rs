//! Each GPU kernel against its CPU kernel (`webtune::kernels`) on the shapes that break tiled
//! and row-wise kernels: k not a multiple of the tile, one row, sequence length 1, 77 columns,
//! padding keys, batches of products on strided views. Runs on the default adapter — Mesa's
//! lavapipe on the test machines (`./build.sh setup` installs it).
use webtune::gpu::{Gpu, GpuTensor, Kernels, Product, RowGroups, View};
use webtune::kernels::{self, Mat};

fn gpu() -> (Gpu, Kernels) {
    let gpu = Gpu::request_blocking(0).unwrap_or_else(|e| panic!("{e} — install a Vulkan driver (./build.sh setup installs Mesa's lavapipe)"));
    let kernels = Kernels::new(&gpu);
    (gpu, kernels)
}

/// Deterministic values in about [-2, 2].
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 40_000) as f32 / 10_000.0 - 2.0
        })
        .collect()
}

/// Largest |gpu − cpu| relative to the largest |cpu| (at least 1).
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tolerance: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(1f32, |m, v| m.max(v.abs()));
    let (i, worst) = gpu.iter().zip(cpu).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0f32), |best, (i, d)| if d > best.1 || d.is_nan() { (i, d) } else { best });
    assert!(worst / scale <= tolerance, "{what}: value {i} is {} on the GPU and {} on the CPU (relative error {} > {tolerance})", gpu[i], cpu[i], worst / scale);
}

#[test]
fn products_in_three_layouts_match_the_cpu_gemm() {
    let (gpu, kernels) = gpu();
    for (m, n, k) in [(1, 1, 1), (1, 77, 384), (130, 67, 45), (64, 64, 16), (17, 200, 1), (128, 384, 1536)] {
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let (ga, gb) = (GpuTensor::from_slice(&gpu, &a), GpuTensor::from_slice(&gpu, &b));
        let c = GpuTensor::zeros(&gpu, m * n);
        let cases: [(&str, View, View, Mat, Mat); 3] = [
            ("A·B", View::rows(&ga, k), View::rows(&gb, n), Mat::rows(&a, k), Mat::rows(&b, n)),
            // A·Bᵀ: B stored as (n × k)
            ("A·Bᵀ", View::rows(&ga, k), View::transposed(&gb, k), Mat::rows(&a, k), Mat::transposed(&b, k)),
            // Aᵀ·B: A stored as (k × m)
            ("Aᵀ·B", View::transposed(&ga, m), View::rows(&gb, n), Mat::transposed(&a, m), Mat::rows(&b, n)),
        ];
        for (name, va, vb, ma, mb) in cases {
            let mut rec = kernels.record(&gpu);
            rec.matmul(View::rows(&c, n), va, vb, Product::new(m, n, k), None);
            rec.submit();
            let expected = kernels::product(m, n, k, ma, mb);
            assert_close(&format!("{name} {m}×{n}×{k}"), &c.read_blocking(&gpu).unwrap(), &expected, 1e-5);
        }
    }
}

#[test]
fn accumulating_scaled_product_with_bias() {
    let (gpu, kernels) = gpu();
    let (m, n, k) = (33, 70, 19);
    let (a, b, bias, c0) = (values(m * k, 3), values(k * n, 4), values(n, 5), values(m * n, 6));
    let c = GpuTensor::from_slice(&gpu, &c0);
    let (ga, gb, gbias) = (GpuTensor::from_slice(&gpu, &a), GpuTensor::from_slice(&gpu, &b), GpuTensor::from_slice(&gpu, &bias));
    let mut rec = kernels.record(&gpu);
    rec.matmul(View::rows(&c, n), View::rows(&ga, k), View::rows(&gb, n), Product::new(m, n, k).scaled(0.5).accumulating(), Some(&gbias));
    rec.submit();
    let product = kernels::product(m, n, k, Mat::rows(&a, k), Mat::rows(&b, n));
    let expected: Vec<f32> = (0..m * n).map(|i| 0.5 * product[i] + bias[i % n] + c0[i]).collect();
    assert_close("0.5·A·B + bias + C", &c.read_blocking(&gpu).unwrap(), &expected, 1e-5);
}

/// Attention's products: per (sentence, head), Q·Kᵀ on column blocks of (tokens × hidden).
#[test]
fn batched_head_products_on_strided_blocks() {
    let (gpu, kernels) = gpu();
    let (batch, len, heads, d) = (3, 5, 4, 8);
    let h = heads * d;
    let (q, k) = (values(batch * len * h, 7), values(batch * len * h, 8));
    let (gq, gk) = (GpuTensor::from_slice(&gpu, &q), GpuTensor::from_slice(&gpu, &k));
    let scores = GpuTensor::zeros(&gpu, batch * heads * len * len);
    let mut rec = kernels.record(&gpu);
    let out = View::rows(&scores, len).batched(heads * len * len, len * len);
    let a = View::block(&gq, h, 0, 0).batched(len * h, d);
    let b = View::block_transposed(&gk, h, 0, 0).batched(len * h, d);
    rec.matmul(out, a, b, Product::new(len, len, d).scaled(0.25).batch(batch * heads, heads), None);
    rec.submit();
    let mut expected = Vec::new();
    for s in 0..batch {
        for hd in 0..heads {
            let mut block = kernels::product(len, len, d, Mat::block(&q, h, s * len, hd * d), Mat::block_transposed(&k, h, s * len, hd * d));
            block.iter_mut().for_each(|v| *v *= 0.25);
            expected.extend(block);
        }
    }
    assert_close("batched Q·Kᵀ", &scores.read_blocking(&gpu).unwrap(), &expected, 1e-5);
}

#[test]
fn gelu_and_its_backward() {
    let (gpu, kernels) = gpu();
    let x: Vec<f32> = values(70_001, 9).iter().map(|v| v * 3.0).collect();
    let dy = values(x.len(), 10);
    let (gx, out, gdy) = (GpuTensor::from_slice(&gpu, &x), GpuTensor::zeros(&gpu, x.len()), GpuTensor::from_slice(&gpu, &dy));
    let mut rec = kernels.record(&gpu);
    rec.gelu(&out, &gx);
    rec.gelu_backward(&gdy, &gx);
    rec.submit();
    assert_close("gelu", &out.read_blocking(&gpu).unwrap(), &kernels::gelu_forward(&x), 1e-6);
    let mut expected = dy.clone();
    kernels::gelu_backward_inplace(&mut expected, &x);
    assert_close("gelu backward", &gdy.read_blocking(&gpu).unwrap(), &expected, 1e-6);
}

#[test]
fn layer_norm_forward_and_backward() {
    let (gpu, kernels) = gpu();
    for (rows, cols) in [(1, 384), (37, 77), (9, 768)] {
        let (x, gamma, beta, dy) = (values(rows * cols, 11), values(cols, 12), values(cols, 13), values(rows * cols, 14));
        let (mut out, mut xhat, mut rstd) = (vec![0f32; rows * cols], vec![0f32; rows * cols], vec![0f32; rows]);
        kernels::layer_norm(&mut out, &x, &gamma, &beta, 1e-12, Some((&mut xhat, &mut rstd)));
        let mut dx = vec![0f32; rows * cols];
        kernels::layer_norm_backward(&mut dx, &dy, &xhat, &rstd, &gamma);
        let t = |v: &[f32]| GpuTensor::from_slice(&gpu, v);
        let (gx, gg, gb, gdy) = (t(&x), t(&gamma), t(&beta), t(&dy));
        let (gout, gxhat, grstd, gdx, eval) = (GpuTensor::zeros(&gpu, x.len()), GpuTensor::zeros(&gpu, x.len()), GpuTensor::zeros(&gpu, rows), GpuTensor::zeros(&gpu, x.len()), GpuTensor::zeros(&gpu, x.len()));
        let mut rec = kernels.record(&gpu);
        rec.layer_norm(&gout, &gx, &gg, &gb, 1e-12, Some((&gxhat, &grstd)));
        rec.layer_norm(&eval, &gx, &gg, &gb, 1e-12, None);
        rec.layer_norm_backward(&gdx, &gdy, &gxhat, &grstd, &gg);
        rec.submit();
        let shape = format!("{rows}×{cols}");
        assert_close(&format!("LayerNorm {shape}"), &gout.read_blocking(&gpu).unwrap(), &out, 1e-5);
        assert_close(&format!("LayerNorm (eval) {shape}"), &eval.read_blocking(&gpu).unwrap(), &out, 1e-5);
        assert_close(&format!("rstd {shape}"), &grstd.read_blocking(&gpu).unwrap(), &rstd, 1e-5);
        assert_close(&format!("LayerNorm backward {shape}"), &gdx.read_blocking(&gpu).unwrap(), &dx, 1e-5);
    }
}

#[test]
fn masked_softmax_and_backward_with_padding_keys_and_length_one() {
    let (gpu, kernels) = gpu();
    for (sentences, rows_each, len) in [(2, 6, 7), (3, 4, 1)] {
        let mut mask = vec![1f32; sentences * len];
        if len > 2 {
            mask[len - 1] = 0.0;
            mask[len - 2] = 0.0;
        }
        let scores = values(sentences * rows_each * len, 15);
        let ds = values(scores.len(), 16);
        let mut probs = scores.clone();
        for (r, row) in probs.chunks_mut(len).enumerate() {
            let s = r / rows_each;
            kernels::masked_softmax(row, &mask[s * len..(s + 1) * len]);
        }
        let mut dx = ds.clone();
        kernels::softmax_backward_rows(&mut dx, &probs, len);
        let (gs, gm, gds) = (GpuTensor::from_slice(&gpu, &scores), GpuTensor::from_slice(&gpu, &mask), GpuTensor::from_slice(&gpu, &ds));
        let mut rec = kernels.record(&gpu);
        rec.masked_softmax(&gs, &gm, len, rows_each);
        rec.softmax_backward(&gds, &gs, len);
        rec.submit();
        assert_close(&format!("softmax len {len}"), &gs.read_blocking(&gpu).unwrap(), &probs, 1e-6);
        assert_close(&format!("softmax backward len {len}"), &gds.read_blocking(&gpu).unwrap(), &dx, 1e-6);
    }
}

#[test]
fn column_sums_multiply_and_add() {
    let (gpu, kernels) = gpu();
    let (rows, cols) = (300, 77);
    let (x, y, acc0) = (values(rows * cols, 17), values(rows * cols, 18), values(cols, 19));
    let t = |v: &[f32]| GpuTensor::from_slice(&gpu, v);
    let (gx, gy, sums, products, scaled) = (t(&x), t(&y), t(&acc0), t(&acc0), t(&x));
    let mut rec = kernels.record(&gpu);
    rec.add_column_sums(&sums, &gx, cols);
    rec.add_column_product_sums(&products, &gx, &gy, cols);
    rec.multiply(&scaled, &gy);
    rec.add_scaled(&scaled, &gx, -0.5);
    rec.submit();
    let mut expected_sums = acc0.clone();
    kernels::add_column_sums(&mut expected_sums, &x);
    let xy: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let mut expected_products = acc0.clone();
    kernels::add_column_sums(&mut expected_products, &xy);
    let expected_scaled: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a * b - 0.5 * a).collect();
    assert_close("column sums", &sums.read_blocking(&gpu).unwrap(), &expected_sums, 1e-5);
    assert_close("column sums of products", &products.read_blocking(&gpu).unwrap(), &expected_products, 1e-5);
    assert_close("x ⊙ y − 0.5 x", &scaled.read_blocking(&gpu).unwrap(), &expected_scaled, 1e-6);
}

#[test]
fn embedding_gather_and_its_scatter_add_backward() {
    let (gpu, kernels) = gpu();
    let (vocab, positions_n, h) = (50, 9, 12);
    let ids: Vec<u32> = vec![3, 7, 3, 0, 49, 7, 7, 3];
    let positions: Vec<u32> = (0..ids.len() as u32).map(|i| i % 4).collect();
    let (word, position, token_type, dx) = (values(vocab * h, 20), values(positions_n * h, 21), values(2 * h, 22), values(ids.len() * h, 23));
    let t = |v: &[f32]| GpuTensor::from_slice(&gpu, v);
    let out = GpuTensor::zeros(&gpu, ids.len() * h);
    let grad = GpuTensor::zeros(&gpu, vocab * h);
    let groups = RowGroups::of(&gpu, &ids);
    let mut rec = kernels.record(&gpu);
    rec.embed(&out, &t(&word), &t(&position), &t(&token_type), &GpuTensor::from_u32(&gpu, &ids), &GpuTensor::from_u32(&gpu, &positions), h);
    rec.scatter_rows(&grad, &t(&dx), &groups, h);
    rec.submit();
    let mut expected = Vec::new();
    for (t, &id) in ids.iter().enumerate() {
        let p = positions[t] as usize;
        expected.extend((0..h).map(|c| word[id as usize * h + c] + position[p * h + c] + token_type[c]));
    }
    assert_close("embedding gather", &out.read_blocking(&gpu).unwrap(), &expected, 1e-6);
    let mut expected_grad = vec![0f32; vocab * h];
    for (t, &id) in ids.iter().enumerate() {
        (0..h).for_each(|c| expected_grad[id as usize * h + c] += dx[t * h + c]);
    }
    assert_close("embedding scatter-add", &grad.read_blocking(&gpu).unwrap(), &expected_grad, 1e-6);
}
