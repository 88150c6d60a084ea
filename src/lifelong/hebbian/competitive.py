"""Competitive (winner-take-all) Hebbian learning (Rumelhart & Zipser 1985; Kohonen's hard competitive learning).

Units w_1..w_K compete for each input x; exactly one output is active, the winner c = argmin_j |x - w_j|^2 (for
unit-norm weights and inputs the unit with the largest output w_j . x), and only the winner learns, moving
toward the input:

    w_c <- w_c + eta (x - w_c),     the other units unchanged.

Batch form: n_c inputs won by unit c in one mini-batch, applied one after the other with the same eta, move w_c
by the fraction 1 - (1 - eta)^n_c of the way to their mean (exact when the inputs are equal; a unit never
overshoots the mean however many inputs it wins). That is one matrix product and one scatter per batch.

Dead units (units that win nothing, e.g. initialised on an outlier) are handled by re-seeding: in `fit`, a unit
that won no input during an epoch is moved onto the input that is worst represented (largest distance to its
winner), except after the last epoch.

`CompetitiveClassifier` labels each unit with the class whose inputs it wins most often and predicts the label
of the winner (the labelling of Diehl & Cook 2015).
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..checks import as_tensor, check_float, check_int, check_n_units
from .rules import squared_distances, winner_update  # noqa: F401 (re-exported)


def quantization_error(X, units) -> float:
    """Mean squared distance from each input to its nearest unit (numpy arrays or tensors)."""
    X, units = torch.as_tensor(np.asarray(X, dtype=np.float64)), torch.as_tensor(np.asarray(units, dtype=np.float64))
    return float(squared_distances(X, units).min(1).values.mean())


class CompetitiveLearning(TransformerMixin, BaseEstimator):
    """Winner-take-all competitive learning: the winning unit moves toward the input, the others do not.

    Parameters
    ----------
    n_units : number of competing units K (default 8).
    learning_rate : eta, the winner's step toward the input (default 0.05; Rumelhart & Zipser use a constant g).
    max_iter : passes over the data in `fit` (default 10).
    batch_size : inputs per mini-batch (default 100; 1 gives the sequential rule).
    reseed_dead : move units that won nothing in an epoch onto the worst-represented input (default True).
    random_state : seeds the initial units (distinct random inputs) and the order of the inputs.

    Attributes
    ----------
    units_ : (n_units, n_features) the weight vectors.
    wins_ : (n_units,) inputs won by each unit during training.
    n_iter_ : epochs run.
    """

    def __init__(self, n_units=8, learning_rate=0.05, max_iter=10, batch_size=100, reseed_dead=True,
                 random_state=None):
        self.n_units = n_units
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.reseed_dead = reseed_dead
        self.random_state = random_state

    def _check_params(self):
        check_int("n_units", self.n_units)
        check_float("learning_rate", self.learning_rate, high=1.0)
        check_int("max_iter", self.max_iter)
        check_int("batch_size", self.batch_size)

    def _initialise(self, X, rng):
        check_n_units(self.n_units, len(X))
        self.units_ = X[rng.choice(len(X), self.n_units, replace=False)].copy()
        self.wins_ = np.zeros(self.n_units, dtype=np.int64)
        self.n_iter_ = 0

    def _epoch(self, X, rng, reseed):
        units, x = as_tensor(self.units_), as_tensor(X)  # units share memory with self.units_
        wins = torch.zeros(len(units), dtype=torch.int64)
        order = torch.from_numpy(rng.permutation(len(X)))
        for start in range(0, len(X), self.batch_size):
            xb = x[order[start:start + self.batch_size]]
            winners = squared_distances(xb, units).argmin(1)
            wins += winner_update(units, xb, winners, self.learning_rate).long()
        self.wins_ += wins.numpy()
        self.n_iter_ += 1
        dead = torch.nonzero(wins == 0).flatten()
        if reseed and len(dead):
            error = squared_distances(x, units).min(1).values
            units[dead] = x[error.argsort(descending=True)[:len(dead)]].to(units.dtype)

    def fit(self, X, y=None):
        """`max_iter` epochs of competitive learning on X, units initialised on distinct random inputs."""
        self._check_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        rng = self._rng = check_random_state(self.random_state)  # partial_fit continues with it
        self._initialise(X, rng)
        for epoch in range(self.max_iter):
            self._epoch(X, rng, reseed=self.reseed_dead and epoch < self.max_iter - 1)
        return self

    def partial_fit(self, X, y=None):
        """One pass over X (no re-seeding); the first call initialises the units on inputs of X."""
        self._check_params()
        first = not hasattr(self, "units_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first)
        if first:
            self._rng = check_random_state(self.random_state)
            self._initialise(X, self._rng)
        self._epoch(X.astype(self.units_.dtype, copy=False), self._rng, reseed=False)
        return self

    def _distances(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return squared_distances(as_tensor(X.astype(self.units_.dtype, copy=False)), as_tensor(self.units_))

    def predict(self, X):
        """Index of the winning unit for each input."""
        return self._distances(X).argmin(1).numpy()

    def transform(self, X):
        """Euclidean distance from each input to each unit, (n_samples, n_units)."""
        return self._distances(X).sqrt().numpy()

    def score(self, X, y=None):
        """Minus the quantisation error: the mean squared distance from each input to its winner."""
        return -float(self._distances(X).min(1).values.mean())


class CompetitiveClassifier(ClassifierMixin, BaseEstimator):
    """Competitive learning (unsupervised) with units labelled afterwards: each unit takes the class whose
    training inputs it wins most often (a unit that wins none takes the class of its nearest training input);
    the prediction is the winner's label. Parameters as `CompetitiveLearning`.

    Attributes: classes_, competitive_ (the fitted `CompetitiveLearning`), votes_ (n_units, n_classes) inputs
    of each class won by each unit, unit_labels_ (n_units,) the class index of each unit.
    """

    def __init__(self, n_units=8, learning_rate=0.05, max_iter=10, batch_size=100, reseed_dead=True,
                 random_state=None):
        self.n_units = n_units
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.reseed_dead = reseed_dead
        self.random_state = random_state

    def _learner(self):
        return CompetitiveLearning(**self.get_params())

    def _label(self, X, y_index):
        """Add the votes of (X, y) and relabel the units."""
        winners = self.competitive_.predict(X)
        np.add.at(self.votes_, (winners, y_index), 1)
        self.unit_labels_ = self.votes_.argmax(1)
        silent = self.votes_.sum(1) == 0
        if silent.any():
            nearest = self.competitive_._distances(X)[:, torch.from_numpy(np.flatnonzero(silent))].argmin(0)
            self.unit_labels_[silent] = y_index[nearest.numpy()]

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.competitive_ = self._learner().fit(X)
        self.votes_ = np.zeros((self.n_units, len(self.classes_)), dtype=np.int64)
        self._label(X, y_index)
        self.n_iter_ = self.competitive_.n_iter_
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over (X, y); the first call needs `classes`, every class that will ever be seen."""
        first = not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("the first call to partial_fit needs classes=, every class that will be seen")
            self.classes_ = np.unique(classes)
            self.competitive_ = self._learner()
            self.votes_ = np.zeros((self.n_units, len(self.classes_)), dtype=np.int64)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(f"labels {unknown.tolist()} are not among the classes given at the first call, "
                             f"{self.classes_.tolist()}")
        self.competitive_.partial_fit(X)
        self._label(X, np.searchsorted(self.classes_, y))
        self.n_iter_ = self.competitive_.n_iter_
        return self

    def predict(self, X):
        """The label of the winning unit."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.classes_[self.unit_labels_[self.competitive_.predict(X)]]
