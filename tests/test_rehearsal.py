"""ER, DER and DER++: their losses by hand on the same draws, the buffer's logits the pre-step outputs, replay in
every step after the first, a stream where they beat fine-tuning by far, and a resume with the same numbers."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lifelong.benchmarks import make_scenario
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.models import MLP, ContinualModel
from lifelong.scenarios import Task

STREAM = dict(stream=True, batch_size=10, lr=0.03, optimizer="sgd", progress=False)


def tiny(name, **options):
    torch.manual_seed(0)
    method = build_method(name, ContinualModel(MLP(4, (8,))), "class", {"memory": 6, **options})
    task = Task(0, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4), torch.arange(3))
    method.enter_stream([task])
    return method


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 4, generator=g), torch.randint(3, (5,), generator=g), torch.zeros(5, dtype=torch.long)


def test_der_loss_is_ce_plus_alpha_mse_by_hand():
    for name, options in (("der", {"alpha": 0.7}), ("der++", {"alpha": 0.3, "beta": 0.9})):
        method = tiny(name, minibatch=4, **options)
        method.loss(*batch(1))  # fills the buffer with 5 samples and their logits
        x, y, t = batch(2)
        twin = copy.deepcopy(method.buffer)  # the same draws, made again by hand
        loss = method.loss(x, y, t)
        model = method.model
        expected = F.cross_entropy(model(x), y)
        bx, _, _, fields = twin.sample(4)
        expected = expected + options["alpha"] * ((model(bx) - fields["logits"]) ** 2).sum() / (4 * 3)
        # the stored logits are the head's full width here: the term is Mammoth's F.mse_loss
        assert torch.allclose(expected - options["alpha"] * F.mse_loss(model(bx), fields["logits"]),
                              F.cross_entropy(model(x), y))
        if name == "der++":
            bx2, by2, _, _ = twin.sample(4)
            expected = expected + options["beta"] * F.cross_entropy(model(bx2), by2)
        assert torch.allclose(loss, expected), (name, loss, expected)


def test_stored_logits_are_the_pre_step_outputs_and_only_stored_columns_count():
    method = tiny("der")
    x, y, t = batch(3)
    method.model.train()
    before = method.model(x).detach()
    method.loss(x, y, t)
    stored = method.buffer.data["logits"][:5]
    assert torch.equal(stored, before)
    # a sample stored when the head had 2 outputs: its third column is not compared
    logits = torch.tensor([[1.0, 2.0, 5.0]])
    assert method.logit_distance(logits, torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2])) == pytest.approx(5 / 3)


def test_er_trains_on_the_incoming_batch_and_a_buffer_draw():
    method = tiny("er", minibatch=3)
    seen = []
    forward = method.model.forward
    method.model.forward = lambda x: (seen.append(len(x)), forward(x))[1]
    method.loss(*batch(4))
    method.loss(*batch(5))
    assert seen == [5, 8]  # the first step alone (an empty buffer), then 5 incoming + 3 replayed in one pass
    x, y, t = batch(6)
    bx, by, bt, _ = copy.deepcopy(method.buffer).sample(3)
    loss = method.loss(x, y, t)
    assert torch.allclose(loss, F.cross_entropy(forward(torch.cat([x, bx])), torch.cat([y, by])))


def test_options_are_checked():
    with pytest.raises(ConfigError, match="needs its size: add --memory N"):
        build_method("er", ContinualModel(MLP(4, (8,))), "class", {})
    with pytest.raises(ConfigError, match="minibatch must be a positive number"):
        tiny("der", minibatch=0)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def test_a_stream_of_digits_er_and_derpp_beat_finetune_by_far(digits):
    final = {name: run_experiment(name, digits, "class", method_options={"memory": 200} if name != "finetune" else {},
                                  **STREAM)["final_average_accuracy"] for name in ("finetune", "er", "der++")}
    assert final["finetune"] < 0.3  # only the last task's classes (chance over 10 is 0.1)
    assert final["er"] > final["finetune"] + 0.35 and final["der++"] > final["finetune"] + 0.35, final


@pytest.mark.exact
@pytest.mark.parametrize("name, setting, options", [
    ("er", "class", {"memory": 50}), ("der++", "class", {"memory": 50}), ("er-ace", "class", {"memory": 50}),
    ("a-gem", "class", {"memory": 50}), ("gdumb", "class", {"memory": 50, "passes": 4}),
    ("task-free-mas", "domain", {}),
])
def test_a_resumed_stream_gives_the_same_numbers(name, setting, options, digits, tmp_path, monkeypatch):
    """Every stream method's state (buffers, their generators, seen classes, GDumb's initial model, task-free MAS's
    buffers and plateau detector) is in the checkpoint: a stream stopped before task 3 resumes to the same numbers."""
    import lifelong.learner

    options = dict(method_options=options, **STREAM)
    whole = run_experiment(name, digits, setting, **options)
    train_task = lifelong.learner.train_task

    def interrupted(method, task, *args):
        if task.id == 2:
            raise KeyboardInterrupt
        return train_task(method, task, *args)

    monkeypatch.setattr(lifelong.learner, "train_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(name, digits, setting, out_dir=tmp_path, **options)
    monkeypatch.setattr(lifelong.learner, "train_task", train_task)
    resumed = run_experiment(name, digits, setting, out_dir=tmp_path, resume=True, **options)
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["method_details"] == whole["method_details"]
    if name == "task-free-mas":
        assert whole["method_details"]["importance_updates"] >= 1  # the resume crossed an importance update
