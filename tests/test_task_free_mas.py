"""Task-free MAS: the plateau detector on hand-made loss sequences, the running mean of the importance by hand, the
importance as autograd of ||f(x)||_2 sample by sample, the penalty's gradient by hand, the hard buffer's
highest-loss samples, the rounds of steps, a stream of digits above chance, and a resume with the same numbers."""

import pytest
import torch
import torch.nn.functional as F

from lifelong.benchmarks import make_scenario
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, run_experiment
from lifelong.methods.task_free_mas import PlateauDetector
from lifelong.models import MLP, ContinualModel
from lifelong.scenarios import Task

STREAM = dict(stream=True, batch_size=10, lr=0.03, optimizer="sgd", progress=False)


def tiny(setting="class", **options):
    torch.manual_seed(0)
    method = build_method("task-free-mas", ContinualModel(MLP(4, (8,))), setting, options)
    task = Task(0, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4), torch.arange(3))
    method.enter_stream([task])
    return method


def batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(3, (n,), generator=g), torch.zeros(n, dtype=torch.long)


def test_the_plateau_detector_by_hand():
    d = PlateauDetector(length=3, mean_threshold=0.2, variance_threshold=0.1)
    assert [d.add(v) for v in (2.0, 1.5)] == [False, False]  # mean too high
    assert not d.add(0.1) and not d.add(0.1)  # (1.5, 0.1, 0.1): mean 0.57 still too high
    assert d.add(0.1)  # (0.1, 0.1, 0.1): a plateau, armed at the start: fires
    assert (d.last_mean, d.last_variance, d.new_peak) == (pytest.approx(0.1), pytest.approx(0.0), False)
    assert not any(d.add(0.1) for _ in range(10))  # a plateau with no new peak since: no update
    assert not d.add(3.0)  # mean 1.07 > 0.1 + sqrt(0): a new peak arms it, but no plateau
    assert d.new_peak
    assert not d.add(0.1) and not d.add(0.1)  # the peak still in the window
    assert d.add(0.1)  # a plateau after the peak
    # a low mean with a high variance is no plateau
    v = PlateauDetector(length=2, mean_threshold=10.0, variance_threshold=0.1)
    assert v.add(0.0)  # mean 0, variance 0: fires (armed at the start)
    assert not v.add(2.0)  # (0, 2): mean 1 > 0 + 0 arms it, and 1 < 10, but the variance 1 > 0.1
    assert v.new_peak and v.add(2.0)  # (2, 2): variance 0, mean 2 < 10: fires
    # the peak test comes first (the authors' order): a window armed and flat enough fires in the same call
    w = PlateauDetector(length=5)
    w.window, w.new_peak, w.last_mean, w.last_variance = [0.05] * 4, False, 0.05, 0.0
    assert w.add(0.5)  # mean 0.14 > 0.05 arms it; mean < 0.2, variance 0.0324 < 0.1: fired


def test_the_importance_is_a_running_mean_of_the_updates():
    method = tiny()
    names = [n for n, _ in method.model.named_parameters()]
    draws = [{n: torch.rand_like(p) for n, p in method.model.named_parameters()} for _ in range(3)]
    for new in draws:
        method.consolidate(new)
    a, b, c = draws
    for n in names:
        second = b[n] / 2 + (1 - 1 / 2) * a[n]
        third = c[n] / 3 + (1 - 1 / 3) * second
        assert torch.allclose(method.importance[n], third)
    assert method.n_consolidated == 3
    assert all(torch.equal(method._anchor[n], p.detach()) for n, p in method.model.named_parameters())


@pytest.mark.parametrize("setting", ["class", "task"])
def test_the_importance_is_the_sum_of_abs_gradients_of_the_unsquared_norm(setting):
    method = tiny(setting)
    x, y, t = batch(7, 1)
    method.hard = (x, y, t)
    ours = method.hard_importance()
    expected = {n: torch.zeros_like(p) for n, p in method.model.named_parameters()}
    method.model.eval()
    for k in range(len(x)):  # the authors' loop: one sample, torch.norm(f(x), 2).backward(), |grad| added
        method.model.zero_grad()
        out = method.model(x[k:k + 1])[:, :3]
        torch.norm(out, 2, dim=1).sum().backward()
        for n, p in method.model.named_parameters():
            expected[n] += p.grad.abs()
    for n in expected:
        assert torch.allclose(ours[n], expected[n], atol=1e-6), n


def test_the_penalty_gradient_is_lambda_omega_times_the_drift():
    method = tiny(mas_weight=0.7)
    omega = {n: torch.rand_like(p) for n, p in method.model.named_parameters()}
    method.consolidate(omega)
    anchor = {n: p.detach().clone() for n, p in method.model.named_parameters()}
    with torch.no_grad():
        for p in method.model.parameters():
            p.add_(torch.randn_like(p))
    for p in method.model.parameters():
        p.grad = torch.zeros_like(p)
    method.before_step()
    for n, p in method.model.named_parameters():
        # d/dtheta of (lambda / 2) sum Omega (theta - theta*)^2
        assert torch.allclose(p.grad, 0.7 * omega[n] * (p.detach() - anchor[n]), atol=1e-6), n
    assert torch.allclose(0.7 / 2 * sum((omega[n] * (p - anchor[n]) ** 2).sum()
                                        for n, p in method.model.named_parameters()),
                          method.strength * method.penalty())


def test_rounds_of_steps_and_the_hard_buffer_keeps_the_highest_losses():
    method = tiny(recent_size=5, hard_size=4, gradient_steps=3)
    optimizer = torch.optim.SGD(method.model.parameters(), lr=0.1)
    assert list(method.batch_losses(*batch(3, 1))) == []  # 3 of 5: no step yet, kept
    assert len(method.recent[0]) == 3
    x2, y2, t2 = batch(9, 2)  # fills the recent buffer (2) and a second one (5) and leaves 2 waiting
    losses = []
    for loss in method.batch_losses(x2, y2, t2):
        losses.append(loss.item())
        if len(losses) % 3 == 0:  # the last step of a round: its per-sample losses rank the hard buffer
            x, y, t = (torch.cat([r, h]) for r, h in zip(method.recent, method.hard)) if method.hard is not None \
                else method.recent
            per_sample = F.cross_entropy(method.model(x), y, reduction="none").detach()
            expected = x[per_sample.argsort(descending=True, stable=True)[:4]]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert len(losses) == 6  # two rounds of 3 steps
    assert len(method.recent[0]) == 2 and torch.equal(method.recent[0], x2[7:])
    assert len(method.hard[0]) == 4
    assert torch.equal(method.hard[0], expected)  # the 4 highest losses of the second round's recent + hard
    assert method.n_rounds == 2


def test_the_hard_buffer_holds_the_top_losses_of_recent_and_hard():
    method = tiny(recent_size=6, hard_size=3, gradient_steps=1)
    x, y, t = batch(6, 4)
    steps = method.batch_losses(x, y, t)
    loss = next(steps)
    per_sample = F.cross_entropy(method.model(x), y, reduction="none")
    assert torch.allclose(loss, per_sample.mean())  # the step's loss: the mean cross-entropy
    with pytest.raises(StopIteration):
        next(steps)  # no optimizer step: the ranking is that of the forward pass above
    top = per_sample.topk(3).indices
    assert torch.equal(method.hard[0], x[top]) and torch.equal(method.hard[1], y[top])
    assert method.recent is None


def test_options_are_checked():
    for options in ({"recent_size": 0}, {"hard_size": 1.5}, {"gradient_steps": True}, {"mas_weight": -1}):
        with pytest.raises(ConfigError):
            tiny(**options)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


@pytest.mark.parametrize("setting, chance", [("class", 0.1), ("domain", 0.5)])
def test_a_stream_of_digits_learns_above_chance(digits, setting, chance):
    result = run_experiment("task-free-mas", digits, setting, **STREAM)
    assert result["final_average_accuracy"] > chance + 0.1, result["final_average_accuracy"]
    assert result["method_details"]["rounds"] == sum(len(t.y_train) for t in digits.tasks) // 30
