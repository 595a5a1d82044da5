"""Golden reference for webtune's PCA (src/insight.rs): the top two principal components of a
fixed matrix, from numpy's SVD. Writes tests/data/pca_golden.json (deterministic; rerun with
any Python that has numpy, e.g. target/python-venv/bin/python tests/python/make_pca_golden.py).

The matrix is defined by a formula (tests/insight.rs builds the same one) so no data file is
needed: row i, column j = sin(0.37·i + 1.3·j) + 0.05·j·cos(0.11·i·j) + (i % 3 == 0) · 0.5·j/20.
"""
import json, math, os
import numpy as np

N, D = 60, 20
x = np.array([[math.sin(0.37 * i + 1.3 * j) + 0.05 * j * math.cos(0.11 * i * j) + (0.5 * j / D if i % 3 == 0 else 0.0)
               for j in range(D)] for i in range(N)], dtype=np.float64)
mean = x.mean(axis=0)
_, s, vt = np.linalg.svd(x - mean, full_matrices=False)
axes = vt[:2].copy()
for a in axes:  # sign: the largest-magnitude coordinate positive (as webtune does)
    if a[np.argmax(np.abs(a))] < 0:
        a *= -1
projected = (x - mean) @ axes.T
out = {
    "rows": N, "cols": D,
    "mean": mean.tolist(),
    "axes": axes.tolist(),
    "explained_variance": (s[:3] ** 2 / N).tolist(),
    "projected_first_rows": projected[:5].tolist(),
    "numpy": np.__version__,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "pca_golden.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path))
