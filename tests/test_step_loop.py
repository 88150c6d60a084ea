"""The engine's step loop (`training.train_task`) does per step only what a step needs (no hook that does nothing,
no share to cut when alone, no list of batches made per epoch): the numbers must be those of the loop written out
plainly, and its memory must not grow with the number of steps."""

import gc
import tracemalloc

import pytest
import torch

from lifelong.engine import run
from lifelong.experiment import build_method, build_model
from lifelong.methods import Finetune
from lifelong.benchmarks import make_scenario
from lifelong.scenarios import Task
from lifelong.training import TrainConfig, evaluate, own_hook, train_task

CONFIG = dict(epochs=2, batch_size=10, lr=0.01, optimizer="sgd", momentum=0.9, progress=False, seed=3)


@pytest.fixture(scope="module")
def digits_scenario():
    return make_scenario("split-digits")


def build(name, scenario, setting, seed, **options):
    torch.manual_seed(seed)
    return build_method(name, build_model(scenario, hidden=(32,)), setting, options)


def reference_run(method, scenario, config: TrainConfig) -> dict:
    """The step loop as plainly as PyTorch writes it, every hook called at every step: per batch `x[idx]`, the
    method's loss, zero_grad, backward, before_step, the optimizer's step, the epoch's loss summed as a tensor.
    The random state as the engine's learner holds it (the seed's, after the model was built)."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    matrix, epoch_losses = [], []
    for task in scenario.tasks:
        method.before_task(task)
        x, *rest = method.training_data(task)
        optimizer = torch.optim.SGD(method.trainable_parameters(), lr=config.lr, momentum=config.momentum,
                                    fused=True)
        losses = []
        for epoch in range(config.epochs):
            method.train_mode()
            method.before_epoch(epoch, config.epochs)
            order = torch.randperm(len(x), generator=generator)
            total = torch.zeros(())
            batches = order.split(config.batch_size)
            for idx in batches:
                loss = method.loss(x[idx], *(t[idx] for t in rest))
                optimizer.zero_grad()
                loss.backward()
                method.before_step()
                optimizer.step()
                total += loss.detach()
            losses.append(total.item() / len(batches))
        method.after_task(task)
        epoch_losses.append(losses)
        correct = evaluate(method, scenario.tasks[: task.id + 1], config)
        key = "aware" if method.setting == "task" else "agnostic"
        matrix.append([c / n for c, n in zip(correct[key], correct["counts"])])
    return {"matrix": matrix, "epoch_loss": epoch_losses, "state": method.model.state_dict()}


@pytest.mark.exact
@pytest.mark.parametrize("name, setting, options", [
    ("finetune", "class", {}),  # no hook of its own
    ("si", "task", {"strength": 1.0}),  # before_step, before_epoch and loss of its own; the task setting's masked loss
    ("lwf", "class", {"warmup": False}),  # a per-sample extra (the recorded responses) sliced with each batch
])
def test_the_step_loop_gives_the_numbers_of_the_plain_loop(digits_scenario, name, setting, options):
    config = TrainConfig(**CONFIG)
    method = build(name, digits_scenario, setting, 7, **options)
    ours = run(method, digits_scenario, config)
    theirs = reference_run(build(name, digits_scenario, setting, 7, **options), digits_scenario, config)
    # exactly, with no tolerance: the same operations in the same order
    assert [row[: i + 1] for i, row in enumerate(ours["accuracy_matrix"])] == theirs["matrix"]
    assert ours["epoch_loss"] == theirs["epoch_loss"]
    assert all(torch.equal(value, theirs["state"][key]) for key, value in method.model.state_dict().items())
    assert len(theirs["matrix"]) == len(digits_scenario) and len(ours["epoch_loss"][0]) == CONFIG["epochs"]


def test_a_hook_is_called_only_where_a_method_has_one(digits_scenario):
    torch.manual_seed(0)
    plain = Finetune(build_model(digits_scenario, hidden=(32,)), "class")
    assert own_hook(plain, "before_step") is None and own_hook(plain, "before_epoch") is None

    class Counting(Finetune):
        def before_step(self):
            calls.append(self.model.training)
            super().before_step()

    given = Finetune(build_model(digits_scenario, hidden=(32,)), "class")
    given.before_step = lambda: None  # a hook given to an instance is its own too
    assert own_hook(given, "before_step") is not None

    calls = []
    task = digits_scenario.tasks[0]
    config = TrainConfig(**CONFIG)
    results = []
    for cls in (Finetune, Counting):
        method = build("finetune", digits_scenario, "class", 0)
        method.__class__ = cls
        assert (own_hook(method, "before_step") is None) == (cls is Finetune)
        method.before_task(task)
        losses = train_task(method, task, digits_scenario, config, torch.Generator().manual_seed(0))
        results.append((losses, method.model.state_dict()))
    steps = config.epochs * -(-len(task.y_train) // config.batch_size)
    assert calls == [True] * steps  # every step, after the backward pass, in training mode
    (losses, state), (counted_losses, counted_state) = results
    assert losses == counted_losses  # a hook that does nothing changes nothing whether it is called or not
    assert all(torch.equal(state[k], counted_state[k]) for k in state)


class _Shape:
    """What `build_model` reads of a scenario."""
    backbone, input_shape = "mlp", (8,)


def _held_at_the_last_step(n_steps: int) -> tuple[int, int]:
    """What is held at the last step of an epoch of `n_steps` steps (batch 1), after a garbage collection (PyTorch
    leaves a few bytes of cyclic garbage a step, the same in a bare loop): Python's memory allocated since the
    epoch's start, and the tensors alive."""

    class Recording(Finetune):
        def loss(self, *batch):
            self.steps += 1
            if self.steps == n_steps and tracemalloc.is_tracing():
                gc.collect()
                self.held = (tracemalloc.get_traced_memory()[0] - self.start,
                             sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects()))
            return super().loss(*batch)

    torch.manual_seed(0)
    x = torch.randn(n_steps, 8)
    task = Task(0, [0, 1], x, torch.arange(n_steps) % 2, x[:2], torch.tensor([0, 1]))
    method = Recording(build_model(_Shape(), hidden=(4,)), "class")
    method.before_task(task)
    config = TrainConfig(epochs=1, batch_size=1, lr=0.01, optimizer="sgd", progress=False)
    method.steps, method.start = 0, 0
    train_task(method, task, None, config, torch.Generator().manual_seed(0))  # first-call costs out of the way
    gc.collect()
    tracemalloc.start()
    try:
        method.steps, method.start = 0, tracemalloc.get_traced_memory()[0]
        train_task(method, task, None, config, torch.Generator().manual_seed(0))
    finally:
        tracemalloc.stop()
    return method.held


def test_memory_per_step_is_flat():
    (few_bytes, few_tensors), (many_bytes, many_tensors) = _held_at_the_last_step(50), _held_at_the_last_step(2000)
    # a list of the epoch's batches (views of its order), or of the steps' losses, would hold 1,950 more tensors
    # and some 170 kB more here
    assert many_tensors == few_tensors and many_bytes - few_bytes < 5_000, (few_bytes, many_bytes)
