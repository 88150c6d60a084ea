import math

import numpy as np
import pytest

from lifelong import metrics

NAN = math.nan
# Hand-made: 3 tasks; task 0 drops from 0.9 to 0.6 then 0.3, task 1 from 0.8 to 0.7.
R = [[0.9, NAN, NAN],
     [0.6, 0.8, NAN],
     [0.3, 0.7, 1.0]]


def test_average_accuracy_by_hand():
    assert metrics.average_accuracy(R) == pytest.approx([0.9, 0.7, (0.3 + 0.7 + 1.0) / 3])


def test_forgetting_by_hand():
    # after task 1: task 0 fell 0.9 -> 0.6; after task 2: task 0 fell 0.9 -> 0.3, task 1 fell 0.8 -> 0.7
    assert metrics.forgetting(R) == pytest.approx([0.3, (0.6 + 0.1) / 2])


def test_forgetting_uses_the_best_earlier_accuracy_not_the_first():
    R2 = [[0.5, NAN, NAN], [0.9, 0.8, NAN], [0.4, 0.8, 0.7]]
    assert metrics.forgetting(R2)[-1] == pytest.approx(((0.9 - 0.4) + 0.0) / 2)


def test_backward_transfer_by_hand():
    assert metrics.backward_transfer(R) == pytest.approx(((0.3 - 0.9) + (0.7 - 0.8)) / 2)
    assert math.isnan(metrics.backward_transfer([[0.5]]))


def test_no_forgetting_gives_zero_and_positive_transfer_is_positive():
    R3 = np.array([[0.5, NAN], [0.6, 0.9]])
    assert metrics.forgetting(R3) == [pytest.approx(-0.1)]
    assert metrics.backward_transfer(R3) == pytest.approx(0.1)


def test_seen_classes_accuracy_weights_tasks_by_size():
    correct = [[90, 0], [60, 10]]
    counts = [100, 20]  # task 1 is small: its 50% weighs little
    assert metrics.seen_classes_accuracy(correct, counts) == pytest.approx([0.9, 70 / 120])
    assert metrics.average_accuracy([[0.9, NAN], [0.6, 0.5]])[-1] == pytest.approx(0.55)


def test_rejects_a_matrix_that_is_not_square():
    with pytest.raises(ValueError, match="square"):
        metrics.average_accuracy([[0.1, 0.2]])
