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


def check_device(device: str) -> None:
    """A torch device this machine has (a clear error before any work, rather than a traceback later). Here, below
    both the training loop and the processes of a distributed run, which check the device before they start."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type not in ("cpu", "cuda", "mps"):  # torch knows more (meta: tensors without data), none trains here
        raise ConfigError(f"device {device!r} cannot train; use cpu, cuda, cuda:N or mps")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this machine (or this torch build) has no CUDA GPU; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here; use --device cpu")
