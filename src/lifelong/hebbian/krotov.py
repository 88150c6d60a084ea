"""Unsupervised learning by competing hidden units (Krotov & Hopfield 2019, PNAS 116:7723).

Hidden unit mu has weights W_mu (rows of W). For an input v, its drive is the p-inner product

    I_mu = <W_mu, v>_mu = sum_i sign(W_mu,i) |W_mu,i|^(p-1) v_i,

and the units compete: the strongest (rank 1) learns Hebbian, g = 1; the unit ranked k learns anti-Hebbian,
g = -Delta; the others do not learn. The update (their eq. 3, with the decay that keeps |W_mu|_p -> 1):

    tau dW_mu,i/dt = g(Q_mu) (v_i - I_mu W_mu,i).

Mini-batch form, as in the authors' code: dW = sum over the batch of g (v - I W), divided by its largest
absolute entry (so the largest weight moves by exactly eps per step), eps = eps0 (1 - epoch / max_iter) annealed
linearly to zero. Paper defaults for MNIST: 2000 hidden units, p = 3, k = 7, Delta = 0.4, and the features
passed to the classifier are h_mu = f(W_mu . v) with f(x) = max(x, 0)^n, n = 4.5 (`transform`). The supervised
top layer is not part of this estimator (see benchmarks/hebbian_krotov.py: a linear softmax layer on top).
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..checks import as_tensor, check_float, check_int


def krotov_update(W: torch.Tensor, v: torch.Tensor, p: float, k: int, delta: float) -> torch.Tensor:
    """The (unnormalised) weight change for the mini-batch v (B, D): sum_batch g (v - I W)."""
    drive = v @ (W.sign() * W.abs() ** (p - 1)).T  # I, (B, K)
    top = drive.topk(k, dim=1).indices
    winners, kth = top[:, 0], top[:, k - 1]
    # g is 1 for the winner, -delta for the k-th unit, 0 elsewhere: the sums are scatters, not dense products
    g_times_v = torch.zeros_like(W).index_add_(0, winners, v).index_add_(0, kth, v, alpha=-delta)
    rows = torch.arange(len(v))
    g_times_drive = torch.zeros(len(W), dtype=W.dtype).index_add_(0, winners, drive[rows, winners]) \
        .index_add_(0, kth, drive[rows, kth], alpha=-delta)
    return g_times_v - g_times_drive[:, None] * W


class KrotovHopfield(TransformerMixin, BaseEstimator):
    """Hebbian / anti-Hebbian competing hidden units (Krotov & Hopfield 2019), an unsupervised feature learner.

    Parameters
    ----------
    n_units : hidden units (paper, MNIST: 2000).
    p : the Lebesgue norm of the weights (paper: 3).
    k : rank of the unit that learns anti-Hebbian (paper: 7; 2 <= k <= n_units).
    delta : strength Delta of the anti-Hebbian learning (paper: 0.4).
    power : n of the feature function max(x, 0)^n in `transform` (paper: 4.5).
    learning_rate : eps0, annealed linearly to 0 over the epochs (authors' code: 0.02).
    max_iter : epochs (default 100).
    batch_size : mini-batch size (authors' code: 100).
    random_state : seeds the initial weights (standard normal, as in the authors' code) and the input order.

    Attributes: weights_ (n_units, n_features), n_iter_.
    """

    def __init__(self, n_units=2000, p=3.0, k=7, delta=0.4, power=4.5, learning_rate=0.02, max_iter=100,
                 batch_size=100, random_state=None):
        self.n_units = n_units
        self.p = p
        self.k = k
        self.delta = delta
        self.power = power
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state

    def _check_params(self):
        check_int("n_units", self.n_units)
        check_float("p", self.p, low=1.0, low_open=False)
        check_int("k", self.k, low=2)
        if self.k > self.n_units:
            raise ValueError(f"k={self.k} must not exceed n_units={self.n_units}")
        check_float("delta", self.delta, low_open=False)
        check_float("power", self.power)
        check_float("learning_rate", self.learning_rate)
        check_int("max_iter", self.max_iter)
        check_int("batch_size", self.batch_size)

    def fit(self, X, y=None, callback=None):
        """`max_iter` epochs on X; `callback(estimator, epoch)`, if given, runs after each epoch."""
        self._check_params()
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        rng = check_random_state(self.random_state)
        v = as_tensor(X)
        W = torch.from_numpy(rng.standard_normal((self.n_units, X.shape[1])).astype(X.dtype))
        self.weights_ = W.numpy()  # shares memory with W: updated in place
        self.n_iter_ = 0
        for epoch in range(self.max_iter):
            eps = self.learning_rate * (1 - epoch / self.max_iter)
            order = torch.from_numpy(rng.permutation(len(X)))
            for start in range(0, len(X), self.batch_size):
                dW = krotov_update(W, v[order[start:start + self.batch_size]], self.p, self.k, self.delta)
                W += eps * dW / dW.abs().max().clamp_min(1e-30)
            self.n_iter_ += 1
            if callback is not None:
                callback(self, epoch)
        return self

    def transform(self, X):
        """The hidden units' features h = max(W v, 0)^power, (n_samples, n_units)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        W = torch.from_numpy(self.weights_)
        drive = as_tensor(X.astype(self.weights_.dtype, copy=False)) @ W.T
        return (drive.clamp_min(0) ** self.power).numpy()
