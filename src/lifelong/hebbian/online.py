"""Online Hebbian learning rules for one linear layer y = W x: plain Hebb, Oja, Sanger.

With outputs y = W x (W: n_units x n_features, inputs centred by a running mean), one step on a mini-batch
X_b of B samples (rows) applies the average of the B per-sample updates (Y_b = X_b W^T):

    plain Hebb            Delta W = eta/B  Y^T X                                    grows without bound
    Oja (1982; 1989)      Delta W = eta/B (Y^T X - (Y^T Y) W)                       -> the top principal subspace
    Sanger (1989, GHA)    Delta W = eta/B (Y^T X - LT(Y^T Y) W)                     -> the top principal components

LT keeps the lower triangle with the diagonal. For one unit Oja's rule is Delta w = eta y (x - y w): w converges
to the unit first eigenvector of the covariance C (its fixed points satisfy C w = (w^T C w) w). With several
units Oja's subspace rule finds an orthonormal basis of the top-k subspace in some rotation; Sanger's rule
(each unit sees the input minus what the units before it explain) finds the eigenvectors themselves, in order.
Plain Hebb has the same direction of growth but no decay: |w| grows like (1 + eta lambda_1)^t.
The mini-batch average has the per-sample rule's fixed points; batch_size=1 is the per-sample rule itself.
A constant eta leaves a small jitter around the fixed point (of order eta), as in the papers' analysis.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import TrainingError
from ..checks import check_float, check_int


class _HebbianRule(TransformerMixin, BaseEstimator):
    """Shared by the three rules: parameters, centring, the epoch loop; a rule defines `_decay`."""

    def __init__(self, n_units=1, learning_rate=0.01, max_iter=20, batch_size=10, center=True, random_state=None):
        self.n_units = n_units
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.center = center
        self.random_state = random_state

    def _decay(self, Y, W):
        """The term subtracted from Y^T X (the plain Hebbian term): none for plain Hebb."""
        return 0.0

    def _check_params(self):
        check_int("n_units", self.n_units)
        check_float("learning_rate", self.learning_rate)
        check_int("max_iter", self.max_iter)
        check_int("batch_size", self.batch_size)

    def _initialise(self, n_features, rng):
        # small random weights of norm 0.1 per unit: the rules decide where they go
        W = rng.standard_normal((self.n_units, n_features))
        self.components_ = 0.1 * W / np.linalg.norm(W, axis=1, keepdims=True)
        self.mean_ = np.zeros(n_features)
        self.n_samples_seen_ = 0

    def _epoch(self, X, rng):
        W = self.components_
        order = rng.permutation(len(X))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as an error
            for start in range(0, len(X), self.batch_size):
                Xb = X[order[start:start + self.batch_size]]
                Y = Xb @ W.T
                W += self.learning_rate / len(Xb) * (Y.T @ Xb - self._decay(Y, W))
        if not np.isfinite(W).all():
            raise TrainingError(f"{type(self).__name__}: the weights overflowed (|w| grew without bound); lower "
                                "learning_rate or max_iter, or use a rule with decay (Oja, Sanger)")

    def fit(self, X, y=None):
        """`max_iter` passes over X (centred by its mean), in shuffled mini-batches."""
        self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        rng = self._rng = check_random_state(self.random_state)  # partial_fit continues with it
        self._initialise(X.shape[1], rng)
        if self.center:
            self.mean_ = X.mean(axis=0)
        self.n_samples_seen_ = len(X)
        for _ in range(self.max_iter):
            self._epoch(X - self.mean_, rng)
        self.n_iter_ = self.max_iter
        return self

    def partial_fit(self, X, y=None):
        """One pass over X, continuing from the current weights; the centring mean is a running mean."""
        self._check_params()
        first = not hasattr(self, "components_")
        X = validate_data(self, X, dtype=np.float64, reset=first)
        if first:
            self._rng = check_random_state(self.random_state)
            self._initialise(X.shape[1], self._rng)
            self.n_iter_ = 0
        if self.center:
            n = self.n_samples_seen_
            self.mean_ = (n * self.mean_ + X.sum(axis=0)) / (n + len(X))
        self.n_samples_seen_ += len(X)
        self._epoch(X - self.mean_, self._rng)
        self.n_iter_ += 1
        return self

    def transform(self, X):
        """The outputs y = W (x - mean) of the units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (X - self.mean_) @ self.components_.T


class Hebb(_HebbianRule):
    """Plain Hebbian learning, Delta w = eta y x (Hebb 1949): the weights grow without bound.

    Parameters: n_units (1), learning_rate eta (0.01), max_iter epochs (20), batch_size (10), center (True: x is
    centred by the running mean), random_state. Attributes: components_ (n_units, n_features), mean_.
    """


class Oja(_HebbianRule):
    """Oja's rule, Delta w = eta y (x - y w) (Oja 1982): converges to the first principal component (unit norm).

    With n_units > 1, Oja's subspace rule Delta W = eta (y x^T - y y^T W) (Oja 1989): an orthonormal basis
    of the top-n_units principal subspace. Parameters and attributes as `Hebb`.
    """

    def _decay(self, Y, W):
        return (Y.T @ Y) @ W


class Sanger(_HebbianRule):
    """Sanger's generalized Hebbian algorithm, Delta W = eta (y x^T - LT(y y^T) W) (Sanger 1989): the rows of
    components_ converge to the top n_units principal components, in order of variance (up to sign).
    Parameters and attributes as `Hebb`.
    """

    def _decay(self, Y, W):
        return np.tril(Y.T @ Y) @ W
