"""Parameter checks with clear errors (ConfigError), shared by the estimators and the methods.

The scikit-learn-style estimators call them in `fit`, not in `__init__`, as scikit-learn does."""

import numbers

import numpy as np

from .errors import ConfigError


def check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_float(name: str, value, low: float = 0.0, high: float = np.inf, low_open: bool = True) -> float:
    """A real number in (low, high] (or [low, high] with low_open=False)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and not np.isnan(value) and \
        (value > low if low_open else value >= low) and value <= high
    if not ok:
        raise ConfigError(f"{name} must be a number in {'(' if low_open else '['}{low}, {high}], got {value!r}")
    return float(value)


def check_weight(name: str, value) -> float:
    """A finite number >= 0: a loss weight, a penalty's lambda, a decay."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}")
    return value


def check_n_units(n_units: int, n_samples: int) -> None:
    """Units are initialised on distinct samples: there must be at least as many samples as units."""
    if n_units > n_samples:
        raise ValueError(f"n_units={n_units} is larger than the number of samples, n_samples={n_samples}: "
                         "lower n_units or give more samples")


def as_tensor(X: np.ndarray):
    """A torch view of a numpy array (shared memory); read-only inputs (memory maps) are copied first, since
    torch tensors cannot be read-only."""
    import torch

    X = np.ascontiguousarray(X)
    return torch.from_numpy(X if X.flags.writeable else X.copy())
