"""Neural gas with competitive Hebbian edges (Martinetz & Schulten 1991; Martinetz, Berkovich & Schulten 1993).

For each input x (one at a time: the ranking depends on the units moved by the previous input):
1. rank every unit by its distance to x: k_j = 0 for the nearest, 1 for the next, ...;
2. move every unit, w_j <- w_j + eps(t) exp(-k_j / lambda(t)) (x - w_j);
3. competitive Hebbian learning: connect the winner i0 and the runner-up i1 (edge age 0), age the winner's
   other edges by one, and drop the winner's edges older than T(t).

eps, lambda and T go from initial to final values geometrically over t_max steps, p(t) = p_i (p_f/p_i)^(t/t_max)
(constant at p_f after t_max). Defaults: eps 0.5 -> 0.005 and lambda 10 -> 0.01 (Martinetz et al. 1993);
the edge age limit T 20 -> 200 (the values of Fritzke's 1997 survey "Some competitive learning methods", which
runs this algorithm with t_max = 40,000). Why T grows: early on the units move far at each step, so an edge
between two units that were winner and runner-up a thousand steps ago may no longer join neighbours and must die
young; late, the units hardly move and every edge of the induced Delaunay triangulation is refreshed only when
an input falls in its (small) region, so edges must live longer or true neighbours would lose theirs.

The learned graph is the induced Delaunay triangulation of the data manifold: on a ring, a ring.
Each step costs one distance computation, one sort and a few row updates over the K units.
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..checks import check_float, check_int, check_n_units
from .rules import annealed, neural_gas_step  # noqa: F401 (re-exported)


class NeuralGas(TransformerMixin, BaseEstimator):
    """Neural gas (soft competitive learning by rank) with competitive Hebbian edges between units.

    Parameters (defaults from the papers, see the module docstring)
    ----------
    n_units : number of units (default 10).
    max_iter : passes over the data in `fit` (default 20); t_max = max_iter * n_samples steps unless `n_steps`.
    n_steps : t_max, the length of the annealing schedule in steps (default None: as above; for `partial_fit`,
        max_iter times the size of the first batch).
    eps_initial, eps_final : step size eps, 0.5 -> 0.005.
    lambda_initial, lambda_final : neighbourhood range lambda, 10 -> 0.01.
    age_initial, age_final : edge age limit T, 20 -> 200.
    random_state : seeds the initial units (distinct random inputs) and the order of the inputs.

    Attributes
    ----------
    units_ : (n_units, n_features).
    edges_ : (n_units, n_units) symmetric boolean adjacency matrix of the competitive Hebbian graph.
    edge_ages_ : (n_units, n_units) age of each edge, inf where there is none.
    n_steps_ : adaptation steps done (t); t_max_ : the schedule length; n_iter_ : passes over the data.
    """

    def __init__(self, n_units=10, max_iter=20, n_steps=None, eps_initial=0.5, eps_final=0.005,
                 lambda_initial=10.0, lambda_final=0.01, age_initial=20.0, age_final=200.0, random_state=None):
        self.n_units = n_units
        self.max_iter = max_iter
        self.n_steps = n_steps
        self.eps_initial = eps_initial
        self.eps_final = eps_final
        self.lambda_initial = lambda_initial
        self.lambda_final = lambda_final
        self.age_initial = age_initial
        self.age_final = age_final
        self.random_state = random_state

    def _check_params(self):
        check_int("n_units", self.n_units)
        check_int("max_iter", self.max_iter)
        if self.n_steps is not None:
            check_int("n_steps", self.n_steps)
        for name in ("eps_initial", "eps_final"):
            check_float(name, getattr(self, name), high=1.0)
        for name in ("lambda_initial", "lambda_final", "age_initial", "age_final"):
            check_float(name, getattr(self, name))

    def _initialise(self, X, rng, t_max):
        check_n_units(self.n_units, len(X))
        self.units_ = X[rng.choice(len(X), self.n_units, replace=False)].copy()
        self.edge_ages_ = np.full((self.n_units, self.n_units), np.inf)
        self.n_steps_ = 0
        self.t_max_ = self.n_steps or t_max

    def _run(self, X, order):
        """One step per input X[order[i]], continuing the schedule."""
        for i in order:
            t = self.n_steps_
            neural_gas_step(self.units_, self.edge_ages_, X[i],
                            annealed(self.eps_initial, self.eps_final, t, self.t_max_),
                            annealed(self.lambda_initial, self.lambda_final, t, self.t_max_),
                            annealed(self.age_initial, self.age_final, t, self.t_max_))
            self.n_steps_ += 1
        self.edges_ = np.isfinite(self.edge_ages_)

    def fit(self, X, y=None):
        """`max_iter` passes over X in random orders: t_max = max_iter * n_samples steps (or n_steps)."""
        self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        self._initialise(X, rng, self.max_iter * len(X))
        for _ in range(self.max_iter):
            self._run(X, rng.permutation(len(X)))
        self.n_iter_ = self.max_iter
        return self

    def partial_fit(self, X, y=None):
        """One step per row of X, in order, continuing the annealing schedule."""
        self._check_params()
        first = not hasattr(self, "units_")
        X = validate_data(self, X, dtype=np.float64, reset=first)
        if first:
            self._initialise(X, check_random_state(self.random_state), self.max_iter * len(X))
            self.n_iter_ = 0
        self._run(X, range(len(X)))
        self.n_iter_ += 1
        return self

    def _distances(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return ((X * X).sum(1)[:, None] - 2 * X @ self.units_.T + (self.units_ ** 2).sum(1)).clip(min=0)

    def predict(self, X):
        """Index of the nearest unit for each input."""
        return self._distances(X).argmin(1)

    def transform(self, X):
        """Euclidean distance from each input to each unit, (n_samples, n_units)."""
        return np.sqrt(self._distances(X))

    def score(self, X, y=None):
        """Minus the quantisation error, the mean squared distance from each input to its nearest unit."""
        return -float(self._distances(X).min(1).mean())
