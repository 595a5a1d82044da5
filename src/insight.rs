//! What the model's representation of the sentences does during training: a 2-D map of the
//! pooled vectors (the classifier's input), how well the classes separate in the full space,
//! and which blocks of weights moved.
//!
//! The map uses one projection for the whole Train: the top two principal components of the
//! pre-trained model's pooled vectors of the training sentences. Every run starts from the same
//! pre-trained weights, so every run computes the same axes from its snapshot before training,
//! and a point's motion on the map means the model moved it — a frozen encoder's points stay
//! exactly where they are. (Per-snapshot axes would show the separation even where it happens
//! off that plane, but then the picture turns between epochs and motion means nothing.)
//!
//! PCA by hand (block power iteration on the covariance with a Rayleigh–Ritz step): two
//! components of a few thousand vectors do not justify a linear-algebra dependency.

/// The plane of the map: a centre and two orthonormal directions in the pooled space.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalPlane {
    pub mean: Vec<f32>,
    pub axes: [Vec<f32>; 2],
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn normalize(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// Mean of the rows.
fn mean_row(rows: &[Vec<f32>]) -> Vec<f64> {
    let d = rows.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; d];
    for row in rows {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= rows.len().max(1) as f64);
    mean
}

/// Covariance matrix (d × d, row-major) of the rows.
fn covariance(rows: &[Vec<f32>], mean: &[f64]) -> Vec<f64> {
    let d = mean.len();
    let mut cov = vec![0f64; d * d];
    let mut centred = vec![0f64; d];
    for row in rows {
        centred.iter_mut().zip(row).zip(mean).for_each(|((c, v), m)| *c = *v as f64 - m);
        for i in 0..d {
            let ci = centred[i];
            let out = &mut cov[i * d..(i + 1) * d];
            out.iter_mut().zip(&centred).for_each(|(o, cj)| *o += ci * cj);
        }
    }
    cov.iter_mut().for_each(|c| *c /= rows.len().max(1) as f64);
    cov
}

fn multiply(cov: &[f64], v: &[f64]) -> Vec<f64> {
    let d = v.len();
    (0..d).map(|i| cov[i * d..(i + 1) * d].iter().zip(v).map(|(a, b)| a * b).sum()).collect()
}

/// The top two eigenvectors of a symmetric positive semi-definite matrix, largest first.
fn top_two_eigenvectors(cov: &[f64], d: usize) -> [Vec<f64>; 2] {
    // Deterministic start: two fixed, different directions.
    let mut a: Vec<f64> = (0..d).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
    let mut b: Vec<f64> = (0..d).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + (i % 5) as f64 * 0.1)).collect();
    for _ in 0..5000 {
        let mut na = multiply(cov, &a);
        let mut nb = multiply(cov, &b);
        normalize(&mut na);
        let proj: f64 = na.iter().zip(&nb).map(|(x, y)| x * y).sum();
        nb.iter_mut().zip(&na).for_each(|(y, x)| *y -= proj * x);
        normalize(&mut nb);
        let change = na.iter().zip(&a).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) + nb.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        a = na;
        b = nb;
        if change < 1e-12 {
            break;
        }
    }
    // Rayleigh–Ritz in span(a, b): the 2 × 2 problem gives the individual eigenvectors.
    let (ca, cb) = (multiply(cov, &a), multiply(cov, &b));
    let dotf = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    let (h11, h12, h22) = (dotf(&a, &ca), dotf(&a, &cb), dotf(&b, &cb));
    let theta = 0.5 * (2.0 * h12).atan2(h11 - h22);
    let (c, s) = (theta.cos(), theta.sin());
    let first: Vec<f64> = a.iter().zip(&b).map(|(x, y)| c * x + s * y).collect();
    let second: Vec<f64> = a.iter().zip(&b).map(|(x, y)| -s * x + c * y).collect();
    let (l1, l2) = (dotf(&first, &multiply(cov, &first)), dotf(&second, &multiply(cov, &second)));
    if l1 >= l2 { [first, second] } else { [second, first] }
}

/// Signs fixed so that each axis's largest-magnitude coordinate is positive (numpy's SVD signs
/// are arbitrary; this makes the map reproducible).
fn fix_sign(v: &mut [f64]) {
    let largest = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

impl PrincipalPlane {
    /// The top two principal components of `rows` (each a vector of the same length).
    pub fn principal_components(rows: &[Vec<f32>]) -> PrincipalPlane {
        let mean = mean_row(rows);
        let d = mean.len();
        let cov = covariance(rows, &mean);
        let [mut first, mut second] = top_two_eigenvectors(&cov, d);
        fix_sign(&mut first);
        fix_sign(&mut second);
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        PrincipalPlane { mean: to_f32(mean), axes: [to_f32(first), to_f32(second)] }
    }

    /// (x, y) of a vector on the map.
    pub fn project(&self, v: &[f32]) -> (f64, f64) {
        let centred: Vec<f32> = v.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        (dot(&centred, &self.axes[0]), dot(&centred, &self.axes[1]))
    }

    /// The line a·x + b·y + c = 0 where a two-class linear classifier (`weight` rows of
    /// classes 0 and 1, `bias`) is undecided, as seen on the map of the snapshot's `points`
    /// (pooled vectors): the least-squares fit of the classifier's logit margin
    /// (w₁ − w₀)·v + (b₁ − b₀) over the points' map positions, at zero. Restricting the
    /// classifier to the plane through the mean alone would ignore everything off the plane —
    /// which is what separates the classes once fine-tuning moves them off the pre-trained axes —
    /// and draw the line far from the points. Falls back to that restriction when the points
    /// cannot fix a fit (fewer than three, or all on one line).
    pub fn decision_line(&self, weight: &[Vec<f32>], bias: &[f32], points: &[Vec<f32>]) -> Option<[f64; 3]> {
        if weight.len() != 2 {
            return None;
        }
        let w: Vec<f32> = weight[1].iter().zip(&weight[0]).map(|(a, b)| a - b).collect();
        let db = (bias[1] - bias[0]) as f64;
        let restricted = [dot(&w, &self.axes[0]), dot(&w, &self.axes[1]), dot(&w, &self.mean) + db];
        let samples: Vec<([f64; 3], f64)> = points.iter().map(|v| {
            let (x, y) = self.project(v);
            ([x, y, 1.0], dot(&w, v) + db)
        }).collect();
        Some(least_squares_plane(&samples).unwrap_or(restricted))
    }
}

/// The (a, b, c) minimising Σ (a·x + b·y + c − m)² over `samples` ((x, y, 1), m), by the normal
/// equations (3 × 3, Cramer's rule); None when they are singular.
fn least_squares_plane(samples: &[([f64; 3], f64)]) -> Option<[f64; 3]> {
    let mut ata = [[0f64; 3]; 3];
    let mut atm = [0f64; 3];
    for (row, m) in samples {
        for i in 0..3 {
            atm[i] += row[i] * m;
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
        }
    }
    let det = |m: &[[f64; 3]; 3]| m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let d = det(&ata);
    let scale = ata[0][0] * ata[1][1] * ata[2][2];
    // Singular (or NaN) normal equations: no fit.
    if samples.len() < 3 || d.abs().partial_cmp(&(1e-12 * scale.abs().max(f64::MIN_POSITIVE))) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let mut solution = [0f64; 3];
    for (k, value) in solution.iter_mut().enumerate() {
        let mut m = ata;
        for i in 0..3 {
            m[i][k] = atm[i];
        }
        *value = det(&m) / d;
    }
    Some(solution)
}

/// How well the classes separate in the full space: the ratio of between-class to within-class
/// variance (traces of the scatter matrices). 0 when every class sits on the overall mean; it
/// grows as the classes pull apart relative to their spread.
pub fn separation(rows: &[Vec<f32>], labels: &[usize]) -> f64 {
    let overall = mean_row(rows);
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut sums = vec![vec![0f64; overall.len()]; classes];
    let mut counts = vec![0usize; classes];
    for (row, &label) in rows.iter().zip(labels) {
        sums[label].iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
        counts[label] += 1;
    }
    let means: Vec<Vec<f64>> = sums.into_iter().zip(&counts).map(|(s, &n)| s.into_iter().map(|x| x / n.max(1) as f64).collect()).collect();
    let between: f64 = means.iter().zip(&counts).map(|(m, &n)| n as f64 * m.iter().zip(&overall).map(|(a, b)| (a - b).powi(2)).sum::<f64>()).sum();
    let within: f64 = rows.iter().zip(labels).map(|(row, &l)| row.iter().zip(&means[l]).map(|(v, m)| (*v as f64 - m).powi(2)).sum::<f64>()).sum();
    if within > 0.0 { between / within } else { 0.0 }
}

/// Relative change ‖W − W₀‖ / ‖W₀‖ of a block of tensors (each `(current, original)` as flat
/// values); `None` when the original block is all zeros.
pub fn relative_change(pairs: &[(Vec<f32>, Vec<f32>)]) -> Option<f64> {
    let (mut diff, mut base) = (0f64, 0f64);
    for (now, then) in pairs {
        for (a, b) in now.iter().zip(then) {
            diff += (*a as f64 - *b as f64).powi(2);
            base += (*b as f64).powi(2);
        }
    }
    (base > 0.0).then(|| (diff / base).sqrt())
}
