"""The stream setting: one pass over each task in mini-batches, the task boundaries hidden from the method (its
boundary hooks never called, every task's outputs from the first batch), methods that need boundaries refused,
blurry boundaries, the given order where a task asks for it, evaluation after each task as usual."""

import pytest
import torch

from lifelong.benchmarks import make_scenario
from lifelong.engine import run
from lifelong.errors import ConfigError
from lifelong.experiment import build_model, run_experiment
from lifelong.methods import METHODS, Finetune
from lifelong.methods.base import needs_task_boundaries
from lifelong.training import TrainConfig, evaluate

STREAM_METHODS = {"finetune", "er", "der", "der++", "er-ace", "a-gem", "gdumb", "task-free-mas", "competitive", "neural-gas"}


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


class Spy(Finetune):
    """Fine-tuning that records what the engine hands it, and fails if it is told where a task ends."""

    needs_task_boundaries = False  # declared: its boundary hooks below must then never be called

    def __init__(self, model, setting="class"):
        super().__init__(model, setting)
        self.batches = []

    def before_task(self, task):
        raise AssertionError("a stream method was told that a task begins")

    def after_task(self, task):
        raise AssertionError("a stream method was told that a task ended")

    def loss(self, x, targets, task_ids):
        logits = self.model(x)
        self.batches.append((x, targets, task_ids, logits.shape[1]))
        return self.classification_loss(logits, targets, task_ids)


def stream(**options):
    return TrainConfig(stream=True, batch_size=10, lr=0.01, progress=False, **options)


def test_a_stream_hides_the_boundaries_and_is_evaluated_after_each_task(digits):
    spy = Spy(build_model(digits))
    results = run(spy, digits, stream())
    assert all(width == 10 for *_, width in spy.batches)  # every class's output from the first batch
    assert spy.model.head.sizes == [10]  # in one linear layer (Mammoth's), not a part per task stacked each pass
    n_train = sum(len(task.y_train) for task in digits.tasks)
    assert sum(len(t) for _, t, _, _ in spy.batches) == n_train  # one pass
    assert all(len(t) <= 10 for _, t, _, _ in spy.batches)
    R = results["accuracy_matrix"]
    assert all(R[i][j] == R[i][j] for i in range(5) for j in range(i + 1))  # evaluated after each task
    assert R[0][0] > 0.8  # the future classes' untrained outputs are left out of the evaluation
    # the evaluation of the tasks seen reads their outputs only: after the last task, which the model now predicts
    # everywhere, the first task's test set alone is classified among the first task's classes
    first = evaluate(spy, digits.tasks[:1], stream())
    assert first["agnostic"] == first["aware"] and first["aware"][0] > 0
    assert results["stream"] is True and results["blurry"] == 0.0 and results["config"]["epochs"] == 1


def test_methods_that_need_boundaries_are_refused_in_one_line(digits):
    refused = sorted(name for name, cls in METHODS.items() if needs_task_boundaries(cls))
    assert set(METHODS) - set(refused) <= STREAM_METHODS and "finetune" not in refused
    for name in ("lwf", "ewc", "replay", "joint", "si"):
        assert name in refused
    with pytest.raises(ConfigError, match=r"^lwf cannot learn from a stream: it works at task boundaries") as error:
        run_experiment("lwf", digits, stream=True, batch_size=10, progress=False)
    assert "\n" not in str(error.value)


def test_stream_options_are_checked():
    with pytest.raises(ConfigError, match="epochs must be 1 with --stream"):
        TrainConfig(stream=True, epochs=3)
    with pytest.raises(ConfigError, match="blurry boundaries are a stream's"):
        TrainConfig(blurry=0.1)
    with pytest.raises(ConfigError, match="from 0 to below 1"):
        TrainConfig(stream=True, blurry=1.0)


def test_blurry_boundaries_move_a_seeded_share_of_the_next_task_in(digits):
    def targets_by_task(blurry):
        spy = Spy(build_model(digits))
        run(spy, digits, stream(blurry=blurry))
        sizes = [len(task.y_train) for task in digits.tasks]
        flat = torch.cat([t for _, t, _, _ in spy.batches])
        return list(flat.split([n - round(blurry * n) * (i > 0) + (round(blurry * sizes[i + 1]) if i + 1 < 5 else 0)
                                for i, n in enumerate(sizes)]))

    parts = targets_by_task(0.2)
    sizes = [len(task.y_train) for task in digits.tasks]
    for i, part in enumerate(parts):
        own = int(((part >= 2 * i) & (part < 2 * i + 2)).sum())
        nxt = int(((part >= 2 * i + 2) & (part < 2 * i + 4)).sum())
        assert own == sizes[i] - (round(0.2 * sizes[i]) if i else 0)
        assert nxt == (round(0.2 * sizes[i + 1]) if i + 1 < 5 else 0)
        assert own + nxt == len(part)  # nothing else
    assert all(torch.equal(a, b) for a, b in zip(parts, targets_by_task(0.2)))  # the same draw again


def test_an_ordered_task_streams_in_its_given_order(digits):
    scenario = make_scenario("split-digits")
    for task in scenario.tasks:
        task.ordered = True
    spy = Spy(build_model(scenario))
    run(spy, scenario, stream())
    seen = torch.cat([x for x, *_ in spy.batches])
    assert torch.equal(seen, torch.cat([task.x_train for task in scenario.tasks]))
    spy = Spy(build_model(digits))  # unordered: shuffled within each task
    run(spy, digits, stream())
    assert not torch.equal(torch.cat([x for x, *_ in spy.batches]), seen)
