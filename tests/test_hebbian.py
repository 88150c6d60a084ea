"""lifelong.hebbian against known answers: hand-computed cases, numpy's eigenvectors, k-means, the papers' claims."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from lifelong.errors import ConfigError, TrainingError
from lifelong.hebbian import (CompetitiveClassifier, CompetitiveLearning, Hebb, HebbianMemory, KrotovHopfield,
                              NeuralGas, Oja, Sanger, annealed, coactivation, krotov_update, neural_gas_step,
                              quantization_error, winner_update)


def bipolar(n, dim, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, dim))


# ---------------------------------------------------------------- the Hebbian statistic and the Hopfield memory
def test_coactivation_is_the_averaged_outer_product_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    pre, post = rng.standard_normal((7, 3)), rng.standard_normal((7, 4))
    expected = sum(np.outer(pre[k], post[k]) for k in range(7)) / 7
    assert np.allclose(coactivation(pre, post), expected)
    assert torch.allclose(coactivation(torch.from_numpy(pre), torch.from_numpy(post)), torch.from_numpy(expected))
    assert np.allclose(coactivation(pre), pre.T @ pre / 7)
    with pytest.raises(ValueError, match="same number"):
        coactivation(pre, post[:5])


def test_hebbian_weights_hand_computed():
    patterns = np.array([[1, -1, 1], [1, 1, -1]])
    # w_ij = (1/2)(x_i^1 x_j^1 + x_i^2 x_j^2), zero diagonal
    expected = np.array([[0, 0, 0], [0, 0, -1], [0, -1, 0]])
    assert np.array_equal(HebbianMemory().fit(patterns).weights_, expected)


def test_partial_fit_averages_over_every_pattern_stored():
    patterns = bipolar(30, 50)
    whole = HebbianMemory().fit(patterns)
    parts = HebbianMemory().partial_fit(patterns[:10]).partial_fit(patterns[10:])
    assert np.allclose(whole.weights_, parts.weights_) and parts.n_patterns_ == 30


@pytest.mark.parametrize("update", ["synchronous", "asynchronous"])
def test_patterns_well_below_capacity_are_fixed_points_and_noisy_probes_return(update):
    patterns = bipolar(10, 200)  # p/N = 0.05, well below 0.138
    memory = HebbianMemory(update=update, random_state=0).fit(patterns)
    assert memory.score(patterns) == 1.0
    rng = np.random.default_rng(1)
    for share in (0.1, 0.2):
        noisy = patterns * np.where(rng.random(patterns.shape) < share, -1, 1)
        assert memory.score(noisy, patterns) == 1.0


def test_recall_never_raises_the_energy():
    patterns = bipolar(25, 100)  # p/N = 0.25: spurious states, but the energy still only goes down
    memory = HebbianMemory(update="asynchronous", random_state=0).fit(patterns)
    probes = bipolar(40, 100, seed=3)
    assert (memory.energy(memory.predict(probes)) <= memory.energy(probes) + 1e-12).all()


def test_retrieval_collapses_above_capacity():
    """Amit, Gutfreund & Sompolinsky: above p/N ~ 0.14 the stored patterns are no longer (near) fixed points."""
    n = 300
    overlaps = {}
    for load in (0.05, 0.25):
        patterns = bipolar(int(load * n), n, seed=2)
        recalled = HebbianMemory(update="asynchronous", random_state=0).fit(patterns).predict(patterns)
        overlaps[load] = (recalled * patterns).mean(1)
    assert overlaps[0.05].min() == 1.0
    assert np.mean(overlaps[0.25] > 0.95) < 0.1


def test_memory_bad_input():
    memory = HebbianMemory().fit(bipolar(3, 8))
    with pytest.raises(ValueError, match="bipolar"):
        HebbianMemory().fit(np.array([[1, 0, -1]]))
    with pytest.raises(ValueError, match="bipolar"):
        memory.predict(np.full((1, 8), 0.5))
    with pytest.raises(ValueError, match="8 features"):
        memory.predict(bipolar(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        HebbianMemory().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(ConfigError, match="update"):
        HebbianMemory(update="sometimes").fit(bipolar(3, 8))


def test_memory_pickles_and_refits_identically():
    """The scikit-learn invariants that its own checks cannot test here (they feed real-valued data)."""
    patterns = bipolar(5, 20)
    memory = HebbianMemory().fit(patterns)
    again = pickle.loads(pickle.dumps(memory))
    assert np.array_equal(again.predict(patterns), memory.predict(patterns)) and memory.n_features_in_ == 20
    assert np.array_equal(HebbianMemory().fit(patterns).fit(patterns).weights_, memory.weights_)


# ---------------------------------------------------------------- online Hebbian rules
@pytest.fixture(scope="module")
def gaussian():
    """5-D Gaussian data with a clear spectrum 5 > 2 > 1 > 0.5 > 0.1 in a random basis, and its eigenvectors."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    covariance = basis @ np.diag([5.0, 2.0, 1.0, 0.5, 0.1]) @ basis.T
    X = rng.multivariate_normal(np.full(5, 3.0), covariance, size=4000)
    _, vectors = np.linalg.eigh(np.cov(X.T))
    return X, vectors[:, ::-1]  # columns by decreasing variance


def test_oja_converges_to_the_first_principal_component(gaussian):
    X, top = gaussian
    w = Oja(random_state=0).fit(X).components_[0]
    assert abs(np.linalg.norm(w) - 1) < 0.02
    assert abs(w @ top[:, 0]) > 0.995


def test_sanger_finds_the_top_components_in_order(gaussian):
    X, top = gaussian
    W = Sanger(n_units=3, max_iter=30, random_state=0).fit(X).components_
    assert np.allclose(np.abs(np.diag(W @ top[:, :3])), 1, atol=0.02)
    assert np.allclose(W @ W.T, np.eye(3), atol=0.03)


def test_oja_subspace_rule_spans_the_top_subspace(gaussian):
    X, top = gaussian
    W = Oja(n_units=2, max_iter=30, random_state=1).fit(X).components_
    assert np.allclose(W @ W.T, np.eye(2), atol=0.02)
    assert np.allclose(W.T @ W, top[:, :2] @ top[:, :2].T, atol=0.06)  # the same projector as the top-2 PCs


def test_plain_hebb_grows_without_bound_along_the_first_component(gaussian):
    X, top = gaussian
    hebb = Hebb(learning_rate=0.001, random_state=0)
    norms = []
    for _ in range(4):
        hebb.partial_fit(X)
        norms.append(np.linalg.norm(hebb.components_))
    # geometric growth, no fixed point: x (1 + eta lambda_1)^(n / B) ~ e^(0.001 * 5 * 400) ~ 7 per pass
    assert all(b > 5 * a for a, b in zip(norms, norms[1:]))
    assert abs(hebb.components_[0] @ top[:, 0]) / norms[-1] > 0.999
    with pytest.raises(TrainingError, match="grew without bound"):
        Hebb(learning_rate=0.5, max_iter=50).fit(X)


def test_one_sample_batches_are_the_per_sample_rule(gaussian):
    X = gaussian[0][:50]
    fitted = Oja(batch_size=1, max_iter=1, center=False, random_state=0).fit(X).components_[0]
    rng = np.random.RandomState(0)  # the same draws as fit: the initial weights (norm 0.1), then the order
    w = rng.standard_normal(5)
    w = 0.1 * w / np.linalg.norm(w)
    for k in rng.permutation(50):
        y = w @ X[k]
        w += 0.01 * y * (X[k] - y * w)  # Oja 1982, one sample at a time
    assert np.allclose(fitted, w)


# ---------------------------------------------------------------- competitive learning
def test_winner_update_batch_form_hand_computed():
    units = torch.tensor([[0.0, 0.0], [10.0, 10.0], [5.0, -5.0]])
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]])
    counts = winner_update(units, x, torch.tensor([0, 0, 1]), 0.5)
    # unit 0 won two inputs (mean (2, 1)): moves 1 - 0.5^2 = 0.75 of the way; unit 1 half way to (9, 9)
    assert torch.allclose(units, torch.tensor([[1.5, 0.75], [9.5, 9.5], [5.0, -5.0]]))
    assert counts.tolist() == [2, 1, 0]


def test_winner_update_equals_sequential_steps_for_repeated_inputs():
    units = torch.tensor([[0.0, 1.0]])
    sequential = units.clone()
    for _ in range(3):
        sequential += 0.2 * (torch.tensor([[2.0, -1.0]]) - sequential)
    winner_update(units, torch.tensor([[2.0, -1.0]] * 3), torch.tensor([0, 0, 0]), 0.2)
    assert torch.allclose(units, sequential)


def test_only_the_winner_moves():
    X = np.random.default_rng(0).standard_normal((40, 3))
    learner = CompetitiveLearning(n_units=5, random_state=0).fit(X)
    before = learner.units_.copy()
    learner.partial_fit(X[:1])
    moved = np.flatnonzero((learner.units_ != before).any(1))
    assert moved.tolist() == [np.argmin(((before - X[0]) ** 2).sum(1))]


def test_units_settle_at_the_mean_of_the_inputs_they_win_and_dead_units_are_reseeded():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.concatenate([c + rng.standard_normal((100, 2)) for c in centres])
    learner = CompetitiveLearning(n_units=6, batch_size=300, max_iter=50, random_state=0).fit(X)
    # the fixed point of winner-take-all: every unit at the centroid of the inputs it wins (k-means' condition)
    winners = learner.predict(X)
    for j in np.unique(winners):
        assert np.linalg.norm(X[winners == j].mean(0) - learner.units_[j]) < 0.05
    # a unit placed far from every input wins nothing, and is moved onto the worst-represented input
    learner.units_[0] = [100.0, 100.0]
    learner._epoch(X, np.random.RandomState(0), reseed=True)
    assert np.linalg.norm(learner.units_[0]) < 15


def test_competitive_classifier_on_digits_labels_units_by_majority():
    digits = load_digits()
    X, y = digits.data / 16, digits.target
    classifier = CompetitiveClassifier(n_units=60, max_iter=10, random_state=0).fit(X[:1200], y[:1200])
    assert classifier.score(X[1200:], y[1200:]) > 0.9
    assert np.array_equal(classifier.unit_labels_, classifier.votes_.argmax(1))
    online = CompetitiveClassifier(n_units=60, random_state=0)
    for start in range(0, 1200, 300):
        online.partial_fit(X[start:start + 300], y[start:start + 300], classes=np.arange(10))
    assert online.score(X[1200:], y[1200:]) > 0.8


def test_competitive_bad_input():
    with pytest.raises(ValueError, match="n_units=5 is larger than the number of samples, n_samples=3"):
        CompetitiveLearning(n_units=5).fit(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="learning_rate"):
        CompetitiveLearning(learning_rate=1.5).fit(np.zeros((30, 2)))
    fitted = CompetitiveLearning(n_units=2).fit(np.random.rand(10, 4))
    with pytest.raises(ValueError, match="4 features"):
        fitted.predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="classes="):
        CompetitiveClassifier().partial_fit(np.random.rand(10, 4), np.arange(10) % 2)


# ---------------------------------------------------------------- neural gas
def ring(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    angle, radius = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.9, 1.1, n)
    return np.c_[radius * np.cos(angle), radius * np.sin(angle)]


def test_annealing_schedule():
    assert annealed(0.5, 0.005, 0, 100) == 0.5 and np.isclose(annealed(0.5, 0.005, 100, 100), 0.005)
    assert np.isclose(annealed(10, 0.01, 50, 100), np.sqrt(10 * 0.01)) and annealed(10, 0.01, 500, 100) == 0.01


def test_neural_gas_step_hand_computed():
    units = np.array([[0.0], [1.0], [3.0]])
    ages = np.full((3, 3), np.inf)
    ages[1, 2] = ages[2, 1] = 5.0  # an old edge of unit 1 (the next winner)
    ages[0, 2] = ages[2, 0] = 1.0  # an edge the winner does not have
    neural_gas_step(units, ages, np.array([1.2]), eps=0.5, lam=1.0, max_age=5.5)
    # ranks by distance to 1.2: unit 1 (0), unit 0 (1), unit 2 (2); step eps exp(-k / lambda) (x - w)
    expected = [0.0 + 0.5 * np.exp(-1) * 1.2, 1.0 + 0.5 * 0.2, 3.0 + 0.5 * np.exp(-2) * (1.2 - 3.0)]
    assert np.allclose(units.ravel(), expected)
    # edge winner-runner-up (1-0) created at age 0; winner's other edge (1-2) aged to 6 > 5.5 and dropped
    assert ages[0, 1] == ages[1, 0] == 0 and ages[0, 2] == 1.0
    assert np.isinf(ages[1, 2]) and np.isinf(ages[2, 1])


def test_neural_gas_learns_a_ring_and_quantises_no_worse_than_kmeans():
    X = ring()
    gas = NeuralGas(n_units=30, max_iter=10, random_state=0).fit(X)
    degrees = gas.edges_.sum(1)
    assert np.array_equal(gas.edges_, gas.edges_.T) and not gas.edges_.diagonal().any()
    assert np.mean(degrees == 2) >= 0.9
    kmeans = KMeans(30, n_init=10, random_state=0).fit(X)
    assert quantization_error(X, gas.units_) <= 1.02 * quantization_error(X, kmeans.cluster_centers_)
    assert np.isclose(-gas.score(X), quantization_error(X, gas.units_))


def test_neural_gas_partial_fit_follows_the_schedule_and_error_falls():
    X = ring(3000, seed=1)
    gas = NeuralGas(n_units=20, n_steps=3000, random_state=0)
    errors = []
    for start in range(0, 3000, 500):
        gas.partial_fit(X[start:start + 500])
        errors.append(-gas.score(X))
    assert gas.n_steps_ == 3000 and gas.t_max_ == 3000
    assert errors[-1] < errors[0] / 3 and errors == sorted(errors, reverse=True)


def test_neural_gas_bad_input():
    with pytest.raises(ValueError, match="n_samples=4"):
        NeuralGas(n_units=10).fit(np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="eps_initial"):
        NeuralGas(eps_initial=2.0).fit(ring(50))
    with pytest.raises(ValueError, match="NaN"):
        NeuralGas(n_units=2).fit(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]))


# ---------------------------------------------------------------- Krotov & Hopfield
def test_krotov_update_matches_the_authors_dense_formula():
    rng = np.random.default_rng(0)
    W, v = rng.standard_normal((12, 6)), rng.random((9, 6))
    p, k, delta = 3.0, 3, 0.4
    # the authors' code: tot_input = (sig |W|^(p-1)) v, yl = 1 for the top unit, -delta for the k-th, then
    # ds = yl v^T - (sum_batch yl * tot_input) W
    tot = (np.sign(W) * np.abs(W) ** (p - 1)) @ v.T
    order = np.argsort(tot, axis=0)
    yl = np.zeros_like(tot)
    yl[order[-1], np.arange(9)] = 1.0
    yl[order[-k], np.arange(9)] = -delta
    expected = yl @ v - (yl * tot).sum(1)[:, None] * W
    assert np.allclose(krotov_update(torch.from_numpy(W), torch.from_numpy(v), p, k, delta).numpy(), expected)


def test_krotov_hopfield_drives_the_winners_p_norm_to_one():
    X = load_digits().data / 16
    learner = KrotovHopfield(n_units=30, k=3, max_iter=30, learning_rate=0.2, random_state=0).fit(X)
    norms = (np.abs(learner.weights_) ** 3).sum(1) ** (1 / 3)
    assert np.mean(np.abs(norms - 1) < 0.05) > 0.5  # from standard-normal weights of 3-norm ~ 4.7
    features = learner.transform(X[:5])
    assert features.shape == (5, 30) and (features >= 0).all()
    with pytest.raises(ValueError, match="k=40 must not exceed n_units=30"):
        KrotovHopfield(n_units=30, k=40).fit(X)


def test_accumulated_coactivation_over_batches_is_n_times_the_averaged_statistic():
    import torch

    from lifelong.hebbian import accumulate_coactivation, coactivation

    torch.manual_seed(0)
    pre, post = torch.randn(30, 4), torch.randn(30, 3)
    total = torch.zeros(4, 3)
    for start in range(0, 30, 7):  # uneven batches
        accumulate_coactivation(total, pre[start:start + 7], post[start:start + 7], weight=2)
    torch.testing.assert_close(total, 2 * 30 * coactivation(pre, post))
