"""Neural gas on a 2-D ring: the learned competitive Hebbian graph, and quantisation error against k-means.

Protocol: 5,000 points uniform on the annulus 0.9 <= r <= 1.1; NeuralGas with 40 units and the default schedule
(eps 0.5 -> 0.005, lambda 10 -> 0.01, edge age 20 -> 200) over t_max = 40,000 steps (Fritzke's 1997 survey
setting), fed in chunks of 1,000 steps to record the quantisation error (mean squared distance to the nearest
unit) along the way; 5 seeds. k-means (scikit-learn, k-means++ and 10 restarts) with 40 centres on the same
points. Known answers: the graph is a ring (every unit two neighbours: the induced Delaunay triangulation of a
thin ring is a cycle); the error falls (monotonically in expectation) and ends no worse than k-means.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hebbian_neural_gas.py     # well under a minute
"""

import time

import numpy as np
from sklearn.cluster import KMeans

from _common import RESULTS, save

from lifelong.hebbian import NeuralGas, quantization_error

N_UNITS, T_MAX, CHUNK, SEEDS = 40, 40_000, 1_000, 5


def ring(n, seed):
    rng = np.random.default_rng(seed)
    angle, radius = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.9, 1.1, n)
    return np.c_[radius * np.cos(angle), radius * np.sin(angle)]


def is_single_cycle(edges):
    """Every unit of degree 2 and the graph connected: one cycle through all the units."""
    if not (edges.sum(1) == 2).all():
        return False
    seen, stack = {0}, [0]
    while stack:
        for j in np.flatnonzero(edges[stack.pop()]):
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(edges)


def main():
    X = ring(5000, seed=0)
    runs = []
    started = time.perf_counter()
    for seed in range(SEEDS):
        gas = NeuralGas(n_units=N_UNITS, n_steps=T_MAX, random_state=seed)
        stream = X[np.random.default_rng(seed).integers(0, len(X), T_MAX)]  # samples drawn with replacement
        curve = []
        for start in range(0, T_MAX, CHUNK):
            gas.partial_fit(stream[start:start + CHUNK])
            curve.append(quantization_error(X, gas.units_))
        degrees = gas.edges_.sum(1)
        runs.append({"seed": seed, "curve": curve, "final_error": curve[-1],
                     "share_degree_2": float(np.mean(degrees == 2)), "single_cycle": is_single_cycle(gas.edges_),
                     "n_edges": int(gas.edges_.sum() // 2)})
        if seed == 0:
            first = gas
        print(f"seed {seed}: error {curve[-1]:.5f}, degree-2 units {runs[-1]['share_degree_2']:.2f}, "
              f"one cycle: {runs[-1]['single_cycle']}", flush=True)
    gas_seconds = (time.perf_counter() - started) / SEEDS
    kmeans = [quantization_error(X, KMeans(N_UNITS, n_init=10, random_state=s).fit(X).cluster_centers_)
              for s in range(SEEDS)]
    kmeans_single = [quantization_error(X, KMeans(N_UNITS, n_init=1, random_state=s).fit(X).cluster_centers_)
                     for s in range(SEEDS)]
    curves = np.array([r["curve"] for r in runs])
    mean_curve = curves.mean(0)
    increases = int((np.diff(mean_curve) > 0).sum())
    largest_rise = float((np.diff(mean_curve) / mean_curve[:-1]).max())
    summary = {"n_points": len(X), "n_units": N_UNITS, "t_max": T_MAX, "seeds": SEEDS,
               "neural_gas_error_mean": float(curves[:, -1].mean()), "kmeans_error_mean": float(np.mean(kmeans)),
               "kmeans_errors": kmeans,
               "kmeans_single_start_error_mean": float(np.mean(kmeans_single)), "largest_relative_rise": largest_rise, "mean_curve": mean_curve.tolist(), "mean_curve_increases": increases,
               "seconds_per_neural_gas_run": gas_seconds, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    plot(X, first, mean_curve, np.mean(kmeans))
    rows = "\n".join(f"| {r['seed']} | {r['final_error']:.5f} | {r['share_degree_2']:.2f} | {r['single_cycle']} | "
                     f"{r['n_edges']} |" for r in runs)
    save("hebbian_neural_gas", summary, f"""# Neural gas on a ring: topology and quantisation error

`benchmarks/hebbian_neural_gas.py`: {len(X)} points on the annulus 0.9 <= r <= 1.1, {N_UNITS} units,
t_max = {T_MAX} steps, eps 0.5 -> 0.005, lambda 10 -> 0.01, edge age 20 -> 200 (Martinetz & Schulten 1991,
Fritzke 1997), {SEEDS} seeds, {gas_seconds:.1f} s per run on one CPU thread. Plot: `hebbian_neural_gas.png`
(units and edges over the data; the error along the run).

| seed | quantisation error | share of units with 2 neighbours | one cycle through all units | edges |
|---|---|---|---|---|
{rows}

Quantisation error (mean squared distance to the nearest unit), mean over seeds: neural gas
**{curves[:, -1].mean():.5f}**; k-means with the same 40 centres: **{np.mean(kmeans):.5f}** with k-means++ and 10
restarts (the best of 10), {np.mean(kmeans_single):.5f} with a single k-means++ start. Neural gas ends within
{100 * (curves[:, -1].mean() / np.mean(kmeans) - 1):+.1f}% of the best-of-10 k-means, i.e. at the same optimum
(on a ring every reasonable partition into 40 arcs is near-optimal, so neither method has much to gain).
The seed-averaged error curve (every {CHUNK} steps) rose {increases} time(s) in {len(mean_curve) - 1} chunks, by at
most {100 * largest_rise:.2f}% (late in the run, where eps is small and what is left is sampling noise): it
falls monotonically in expectation, as Martinetz et al. (1993) show for the annealed neural gas.
""")


def plot(X, gas, curve, kmeans_error):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    left.scatter(X[:, 0], X[:, 1], s=1, color="0.8")
    for i, j in zip(*np.nonzero(np.triu(gas.edges_))):
        left.plot(gas.units_[[i, j], 0], gas.units_[[i, j], 1], "b-", lw=1)
    left.plot(gas.units_[:, 0], gas.units_[:, 1], "ro", ms=4)
    left.set_aspect("equal")
    left.set_title("neural gas: units and competitive Hebbian edges")
    steps = np.arange(1, len(curve) + 1) * CHUNK
    right.semilogy(steps, curve, label="neural gas (mean of seeds)")
    right.axhline(kmeans_error, color="k", ls="--", label="k-means, 10 restarts")
    right.set_xlabel("steps t")
    right.set_ylabel("quantisation error")
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "hebbian_neural_gas.png", dpi=90)


if __name__ == "__main__":
    main()
