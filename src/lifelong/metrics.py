"""Continual-learning metrics, all derived from the accuracy matrix.

R is a T x T matrix with `R[i][j]` the accuracy on task j's test set after learning task i (rows i < j are the
tasks not yet seen: they are not evaluated and hold NaN). Tasks are numbered from 0.
"""

import math

import numpy as np


def _matrix(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square and non-empty, got shape {R.shape}")
    return R


def average_accuracy(R) -> list[float]:
    """`A_i = 1/(i+1) * sum_{j<=i} R[i][j]`: the mean accuracy over the tasks seen, after each task i."""
    R = _matrix(R)
    return [float(np.mean(R[i, : i + 1])) for i in range(len(R))]


def forgetting(R) -> list[float]:
    """Average forgetting after each task i >= 1 (Chaudhry et al. 2018):

    `f_i = 1/i * sum_{j<i} max_{l<i} (R[l][j] - R[i][j])`, the drop of each earlier task j from the best accuracy it
    ever had before task i to its accuracy now. One value per task i = 1..T-1 (none after the first task).
    """
    R = _matrix(R)
    return [float(np.mean([np.max(R[j:i, j]) - R[i, j] for j in range(i)])) for i in range(1, len(R))]


def backward_transfer(R) -> float:
    """`BWT = 1/(T-1) * sum_{j<T-1} (R[T-1][j] - R[j][j])` (Lopez-Paz & Ranzato 2017): the influence of later
    learning on earlier tasks, measured at the end. Negative is forgetting; NaN for a single task."""
    R = _matrix(R)
    T = len(R)
    if T < 2:
        return math.nan
    return float(np.mean([R[T - 1, j] - R[j, j] for j in range(T - 1)]))


def seen_classes_accuracy(correct, counts) -> list[float]:
    """Accuracy over the pooled test sets of all tasks seen, after each task (the curve of iCaRL and BiC):
    `sum_{j<=i} correct[i][j] / sum_{j<=i} counts[j]`. Unlike A_i, it weights each task by its number of test
    samples, which matters when tasks differ in size."""
    correct = np.asarray(correct, dtype=float)
    counts = np.asarray(counts, dtype=float)
    return [float(correct[i, : i + 1].sum() / counts[: i + 1].sum()) for i in range(len(counts))]


def summarize(R) -> dict:
    """The headline numbers of one run, as stored in the results file."""
    avg = average_accuracy(R)
    fgt = forgetting(R)
    return {
        "average_accuracy": avg,
        "final_average_accuracy": avg[-1],
        "forgetting": fgt,
        "final_forgetting": fgt[-1] if fgt else None,
        "backward_transfer": None if len(avg) < 2 else backward_transfer(R),
    }
