"""Hebb's rule as an associative memory: the Hopfield network (Hopfield 1982).

Storage is the averaged Hebbian (outer-product) rule over p bipolar patterns xi^k in {-1, +1}^N,

    w_ij = (1/p) sum_k xi_i^k xi_j^k,    w_ii = 0,

and recall iterates x <- sign(W x) from a probe until nothing changes (a tie, (W x)_i = 0, keeps x_i). Recall
never increases the energy E(x) = -1/2 x^T W x, so it ends in a fixed point (asynchronous updates) or, with
synchronous updates, possibly a two-cycle (stopped at `max_iter`). Random patterns are fixed points while the
load p/N is small; retrieval collapses near p/N = 0.138 (Amit, Gutfreund & Sompolinsky 1985; see
benchmarks/hebbian_capacity.py).
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..checks import check_choice, check_int
from .rules import accumulate_coactivation, coactivation  # noqa: F401 (re-exported)

UPDATES = ("synchronous", "asynchronous")


def _check_bipolar(X) -> None:
    bad = np.abs(X) != 1
    if bad.any():
        raise ValueError(f"HebbianMemory stores bipolar patterns: every entry must be +1 or -1, got "
                         f"{X[bad].flat[0]!r} (map 0/1 data with 2 * x - 1)")


class HebbianMemory(BaseEstimator):
    """A Hopfield associative memory of bipolar patterns, stored with the averaged Hebbian rule (zero diagonal).

    Parameters
    ----------
    update : "synchronous" (every unit at once, x <- sign(W x): one matrix product per step for a whole batch
        of probes) or "asynchronous" (one unit at a time in a random order per sweep, Hopfield 1982: always
        converges to a fixed point).
    max_iter : maximum number of recall steps (sweeps), default 100.
    random_state : seeds the asynchronous update order.

    Attributes
    ----------
    weights_ : (n_features, n_features) the Hebbian weights w_ij = (1/p) sum_k xi_i^k xi_j^k, w_ii = 0.
    n_patterns_ : p, the number of patterns stored.
    """

    def __init__(self, update="synchronous", max_iter=100, random_state=None):
        self.update = update
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        """Store the bipolar patterns X (n_patterns, n_features), forgetting earlier ones."""
        for attribute in ("weights_", "n_patterns_"):
            self.__dict__.pop(attribute, None)
        return self.partial_fit(X)

    def partial_fit(self, X, y=None):
        """Add the patterns X: W becomes the average over every pattern stored so far."""
        check_choice("update", self.update, UPDATES)
        check_int("max_iter", self.max_iter)
        first = not hasattr(self, "weights_")
        X = validate_data(self, X, dtype=np.float64, reset=first)
        _check_bipolar(X)
        weights = coactivation(X)
        if not first:  # a running average over all patterns: (p_old W_old + p_new W_new) / (p_old + p_new)
            weights = (self.n_patterns_ * self.weights_ + len(X) * weights) / (self.n_patterns_ + len(X))
            self.n_patterns_ += len(X)
        else:
            self.n_patterns_ = len(X)
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights
        return self

    def _probes(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        _check_bipolar(X)
        return X

    def predict(self, X):
        """Recall: iterate sign(W x) from each probe (row of X) until no unit changes; the recalled patterns."""
        x = self._probes(X).copy()
        W = self.weights_
        rng = check_random_state(self.random_state)
        for _ in range(self.max_iter):
            if self.update == "synchronous":
                field = x @ W  # W is symmetric: row k of x @ W is (W x^k)^T
                new = np.where(field > 0, 1.0, np.where(field < 0, -1.0, x))
                changed = (new != x).any()
                x = new
            else:
                changed = False
                for i in rng.permutation(x.shape[1]):  # one unit at a time, every probe at once
                    field = x @ W[:, i]
                    new = np.where(field > 0, 1.0, np.where(field < 0, -1.0, x[:, i]))
                    changed |= bool((new != x[:, i]).any())
                    x[:, i] = new
            if not changed:
                break
        return x

    def energy(self, X):
        """E(x) = -1/2 x^T W x for each row x of X; recall never increases it."""
        x = self._probes(X)
        return -0.5 * np.einsum("ki,ki->k", x @ self.weights_, x)

    def score(self, X, y=None):
        """Share of probes recalled exactly: to themselves (fixed points), or to the rows of `y` (the clean
        patterns) when given."""
        target = self._probes(X) if y is None else np.asarray(y, dtype=np.float64)
        if target.shape != np.shape(X):
            raise ValueError(f"y must have the shape of X, {np.shape(X)}, got {target.shape}")
        return float((self.predict(X) == target).all(axis=1).mean())
