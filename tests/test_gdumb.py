"""GDumb: the greedy class-balanced sampler by hand, the evaluated model trained from its initial state on the
memory alone (the stream trains nothing), SGDR and clipping, a stream of digits far above fine-tuning, a resume
with the same numbers."""

import copy
import math

import pytest
import torch

from lifelong import Learner
from lifelong.benchmarks import make_scenario
from lifelong.buffers import ClassBalancedBuffer
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, run_experiment
from lifelong.methods.gdumb import sgdr_lr
from lifelong.models import MLP, ContinualModel
from lifelong.scenarios import Task

STREAM = dict(stream=True, batch_size=10, lr=0.03, optimizer="sgd", progress=False)


def offer(buffer, labels, start=0):
    """Offer samples whose input is their running number (to find them again) and whose target is the label."""
    labels = torch.tensor(labels)
    x = torch.arange(start, start + len(labels), dtype=torch.float32)[:, None]
    buffer.add(x, labels, torch.zeros_like(labels))
    return start + len(labels)


def held(buffer):
    x, y, _ = buffer.contents()
    return x[:, 0].long().tolist(), y.tolist()


def test_the_greedy_sampler_by_hand():
    buffer = ClassBalancedBuffer(6)
    n = offer(buffer, [0] * 6)  # room: all admitted
    assert buffer.counts() == {0: 6}
    n = offer(buffer, [1], n)  # class 1 holds 0 < 6 / 2: admitted, a class-0 sample makes room
    assert buffer.counts() == {0: 5, 1: 1}
    n = offer(buffer, [1, 1, 1], n)  # the third: class 1 holds 3, not below 6 / 2: refused
    assert buffer.counts() == {0: 3, 1: 3}
    samples, targets = held(buffer)
    assert sorted(s for s, t in zip(samples, targets) if t == 1) == [6, 7, 8]  # the refused one (9) is not there
    n = offer(buffer, [2], n)  # 0 < 6 / 3: admitted; classes 0 and 1 tie at 3, the first seen (0) gives one up
    assert buffer.counts() == {0: 2, 1: 3, 2: 1}
    n = offer(buffer, [2], n)  # 1 < 2: admitted, the largest class (1) gives one up
    assert buffer.counts() == {0: 2, 1: 2, 2: 2}
    n = offer(buffer, [2, 0], n)  # both at their share: refused
    assert buffer.counts() == {0: 2, 1: 2, 2: 2} and len(buffer) == 6 and buffer.seen == n
    samples, targets = held(buffer)
    assert 10 in samples and 11 in samples and 12 not in samples and 13 not in samples
    assert all(targets[i] == label for label, slots in buffer.slots.items() for i in slots)


def test_a_batch_is_offered_as_one_sample_at_a_time_and_classes_end_balanced():
    labels = torch.randint(5, (500,), generator=torch.Generator().manual_seed(1)).tolist()
    labels = [0] * 100 + labels  # a first class that arrives alone, then all five
    batched, single = ClassBalancedBuffer(50), ClassBalancedBuffer(50)
    n = 0
    for start in range(0, len(labels), 37):
        n = offer(batched, labels[start:start + 37], n)
        assert len(batched) <= 50
    for i, label in enumerate(labels):
        offer(single, [label], i)
    assert held(batched) == held(single) and batched.slots == single.slots
    assert batched.counts() == {c: 10 for c in range(5)}
    samples, targets = held(batched)
    assert all(labels[s] == t for s, t in zip(samples, targets))  # each slot holds a sample with its own label
    # a sample admitted early in a batch and evicted later in the same batch: the slot holds the later one
    batched, single = ClassBalancedBuffer(4), ClassBalancedBuffer(4)
    offer(batched, [1, 1, 0, 0, 2])  # the 2 evicts one of the 1s written in this very batch
    for i, label in enumerate([1, 1, 0, 0, 2]):
        offer(single, [label], i)
    assert held(batched) == held(single) and sorted(held(batched)[1]) == [0, 0, 1, 2]


def test_the_buffer_resumes_where_it_was():
    buffer = ClassBalancedBuffer(8, torch.Generator().manual_seed(3))
    offer(buffer, [0, 1, 0, 0, 2, 0, 1, 1, 0, 2, 2])
    twin = ClassBalancedBuffer(8)
    twin.load_state_dict(copy.deepcopy(buffer.state_dict()))
    offer(buffer, [3, 3, 1, 0, 3], 20)
    offer(twin, [3, 3, 1, 0, 3], 20)
    assert held(buffer) == held(twin) and buffer.slots == twin.slots


def tiny(**options):
    torch.manual_seed(0)
    method = build_method("gdumb", ContinualModel(MLP(4, (8,))), "class", {"memory": 6, "passes": 3, **options})
    task = Task(0, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4), torch.arange(3))
    method.enter_stream([task])
    return method


def test_the_evaluated_model_is_trained_from_its_initial_state_on_the_memory_alone():
    learner = Learner("gdumb", hidden=(8,), memory=20, passes=2, stream=True, epochs=1, batch_size=10,
                      progress=False)
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    learner.learn(x[:30], torch.arange(30) % 2)
    method = learner.method
    initial = copy.deepcopy(method.initial)
    seen, starts = [], []
    loss = method.loss

    def spy(inputs, targets, task_ids):
        if not seen or len(seen) == method._steps_per_pass * method.passes:
            starts.append({k: v.clone() for k, v in method.model.state_dict().items()})
            seen.clear()
        seen.append(inputs.clone())
        return loss(inputs, targets, task_ids)

    method.loss = spy
    stream_batches = []
    local_update = method.local_update
    method.local_update = lambda *batch: (stream_batches.append(batch[0].clone()), local_update(*batch))[1]
    trained = {k: v.clone() for k, v in method.model.state_dict().items()}
    learner.learn(x[30:], torch.arange(30) % 2 + 2)
    assert stream_batches and len(starts) == 1  # the stream was offered; one retraining
    # the stream itself trained nothing: the retraining began from the initial state, not the model trained before
    start = starts[0]
    assert all(torch.equal(start[k], initial[k]) for k in initial)
    assert not all(torch.equal(start[k], trained[k]) for k in trained)
    # every sample trained on is in the memory, and the memory is all it trained on
    memory = method.buffer.contents()[0]
    used = torch.cat(seen)
    assert len(used) == method.passes * len(memory)
    assert all((memory == row).all(1).any() for row in used)
    stream = torch.cat(stream_batches)
    assert not all((memory == row).all(1).any() for row in stream)  # the stream offered more than it kept


def test_the_stream_takes_no_gradient_step():
    method = tiny()
    before = copy.deepcopy(method.model.state_dict())
    method.local_update(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), torch.zeros(5, dtype=torch.long))
    assert len(method.buffer) == 5
    assert all(torch.equal(v, method.model.state_dict()[k]) for k, v in before.items())


def test_sgdr_warm_up_and_clipping():
    assert sgdr_lr(0, 0.05, 0.0005) == pytest.approx(0.05)
    assert sgdr_lr(0.5, 0.05, 0.0005) == pytest.approx(0.02525)  # half way down the first cycle (1 pass)
    assert sgdr_lr(1, 0.05, 0.0005) == pytest.approx(0.05)  # a restart; the second cycle lasts 2 passes
    assert sgdr_lr(2, 0.05, 0.0005) == pytest.approx(0.02525)
    assert sgdr_lr(3, 0.05, 0.0005) == pytest.approx(0.05)  # the third: 4 passes
    assert sgdr_lr(3 + 4 * (1 - 1e-9), 0.05, 0.0005) == pytest.approx(0.0005)
    method = tiny(lr=0.2, min_lr=0.002, clip=1.5)
    method._steps_per_pass = 4
    assert [method.lr_at(s) for s in range(4)] == pytest.approx([0.02] * 4)  # the warm-up pass: 0.1 x lr
    assert method.lr_at(4) == pytest.approx(0.2) and method.lr_at(6) == pytest.approx(0.101)
    method._optimizer = torch.optim.SGD(method.model.parameters(), lr=1.0)
    for p in method.model.parameters():
        p.grad = torch.full_like(p, 10.0)
    method._step = 6
    method.before_step()
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in method.model.parameters()))
    assert norm == pytest.approx(1.5, rel=1e-4)
    assert method._optimizer.param_groups[0]["lr"] == pytest.approx(0.101) and method._step == 7


def test_options_are_checked():
    with pytest.raises(ConfigError, match="needs its size: add --memory N"):
        build_method("gdumb", ContinualModel(MLP(4, (8,))), "class", {})
    with pytest.raises(ConfigError, match="passes must be a positive number"):
        tiny(passes=0)
    with pytest.raises(ConfigError, match="min_lr .* must not exceed lr"):
        tiny(lr=0.01, min_lr=0.1)
    with pytest.raises(ConfigError, match="clip must be a positive number"):
        tiny(clip=-1)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def test_a_stream_of_digits_gdumb_beats_finetune_by_far(digits):
    final = {name: run_experiment(name, digits, "class", method_options={"memory": 200, "passes": 16}
                                  if name == "gdumb" else {}, **STREAM)["final_average_accuracy"]
             for name in ("finetune", "gdumb")}
    assert final["finetune"] < 0.3
    assert final["gdumb"] > final["finetune"] + 0.5, final  # measured: 0.95 against 0.10 (32 passes)
