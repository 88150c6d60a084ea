"""WA (weight aligning, Zhao et al. 2020): the loss and gamma by hand, alignment, the official code's variants
(non-negative weights, no bias, a fresh head), checkpoints, and runs end to end."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lifelong import Learner
from lifelong.cli import main
from lifelong.engine import TrainConfig, run
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.benchmarks import make_scenario
from lifelong.methods import WA
from lifelong.methods.wa import alignment_factor
from lifelong.models import MLP, ContinualModel

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)
OFFICIAL = dict(norm="l1", clip_gamma=True, nonnegative_weights=True, head_bias=False, kd_weight="steps",
                fresh_head=True)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def fresh(scenario, seed=0, **options):
    torch.manual_seed(seed)
    if "memory" not in options:
        options = {"memory_per_class": 10, **options}
    return build_method("wa", build_model(scenario, hidden=(32,)), "class", options)


def labelled(task):
    return task.x_train, np.asarray(task.classes)[task.y_train.numpy()]


def head_weight(method):
    return torch.cat([part.weight for part in method.model.head.parts]).detach()


# ---------------------------------------------------------------------- the loss by hand
@pytest.mark.parametrize("kd_weight, lam", [("classes", 2 / 3), ("steps", 1 / 2)])
def test_the_loss_of_a_two_old_class_case_by_hand(digits, kd_weight, lam):
    """Two old classes, one new (n = 2, m = 1), the second step (t = 1): lambda = n / (n + m) = 2/3, or the official
    code's t / (t + 1) = 1/2. Student logits z = (1, 0, 0), label 2; teacher's old logits (0, 2); T = 2:
        q = softmax(z_old / 2) = softmax(0.5, 0),  q_hat = softmax(0, 1) = (1, e) / (1 + e)
        L_KD = -(q_hat_0 log q_0 + q_hat_1 log q_1) = log(1 + e^0.5) - 0.5 / (1 + e)     (no T^2)
        L_CE = -log softmax(z)_2 = log(e + 2)."""
    method = fresh(digits, kd_weight=kd_weight)
    method.offsets, method.sizes = [0, 2], [2, 1]
    method.output_mask = torch.ones(2, 3, dtype=torch.bool)
    e = math.e
    kd = math.log(1 + math.exp(0.5)) - 0.5 / (1 + e)
    ce = math.log(e + 2)
    loss = method.distillation_loss(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([2]), None,
                                    torch.tensor([[0.0, 2.0]]))
    assert loss.item() == pytest.approx(lam * kd + (1 - lam) * ce, rel=1e-6)
    # a batch is averaged: the same row twice gives the same loss
    loss = method.distillation_loss(torch.tensor([[1.0, 0.0, 0.0]] * 2), torch.tensor([2, 2]), None,
                                    torch.tensor([[0.0, 2.0]] * 2))
    assert loss.item() == pytest.approx(lam * kd + (1 - lam) * ce, rel=1e-6)


def test_without_distillation_the_loss_is_the_cross_entropy_and_no_old_model_is_kept(digits):
    method = fresh(digits, distill=False)
    first, second = digits.tasks[:2]
    method.before_task(first)
    method.after_task(first)
    method.before_task(second)
    data = method.training_data(second)
    assert len(data) == 3 and method.old_model is None  # no recorded old logits
    x, targets = data[0][:16], data[1][:16]
    assert method.loss(x, targets, None).item() == pytest.approx(
        F.cross_entropy(method.model(x), targets).item(), rel=1e-6)


# ---------------------------------------------------------------------- gamma and alignment
OLD = [[3.0, 4.0], [0.0, 1.0]]  # L2 norms 5, 1 (mean 3); L1 norms 7, 1 (mean 4)


@pytest.mark.parametrize("new, norm, clip, gamma", [
    ([[1.0, 0.0], [0.0, -2.0]], "l2", False, 3 / 1.5),    # new L2 norms 1, 2: mean 1.5
    ([[1.0, 0.0], [0.0, -2.0]], "l1", False, 4 / 1.5),    # new L1 norms 1, 2
    ([[1.0, 0.0], [0.0, -2.0]], "l2", True, 1.0),         # the official clamp: at most 1
    ([[6.0, 8.0], [0.0, -4.0]], "l2", False, 3 / 7),      # new L2 norms 10, 4: mean 7
    ([[6.0, 8.0], [0.0, -4.0]], "l1", False, 4 / 9),      # new L1 norms 14, 4: mean 9
    ([[6.0, 8.0], [0.0, -4.0]], "l2", True, 3 / 7),       # below 1: the clamp changes nothing
    ([[0.0, 0.0], [0.0, 0.0]], "l2", False, 1.0),         # new rows all zero: left alone
])
def test_gamma_on_hand_made_weights(new, norm, clip, gamma):
    weight = torch.tensor(OLD + new)
    assert alignment_factor(weight, 2, norm, clip) == pytest.approx(gamma, rel=1e-6)


@pytest.mark.parametrize("sizes", [[2, 3, 2], [7]])  # a part per task; one part with every output (preallocated)
@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_after_alignment_the_new_rows_mean_norm_is_the_old_rows(sizes, norm):
    torch.manual_seed(0)
    model = ContinualModel(MLP(4, (8,)))
    for size in sizes:
        model.head.add(size)
    method = WA(model, memory=10, norm=norm)
    with torch.no_grad():
        for part in model.head.parts:
            part.weight.mul_(torch.linspace(0.5, 3.0, part.out_features)[:, None])  # rows of unequal norms
    before = head_weight(method)
    biases = [part.bias.detach().clone() for part in model.head.parts]
    gamma = method.align_weights(2, 5)  # rows 0-1 old, 2-4 new, 5-6 not seen yet
    after = head_weight(method)
    p = 1 if norm == "l1" else 2
    assert after[2:5].norm(p=p, dim=1).mean().item() == pytest.approx(after[:2].norm(p=p, dim=1).mean().item(),
                                                                      rel=1e-5)
    assert torch.allclose(after[2:5], gamma * before[2:5])
    assert torch.equal(after[:2], before[:2]) and torch.equal(after[5:], before[5:])  # old and unseen rows untouched
    assert all(torch.equal(b, part.bias) for b, part in zip(biases, model.head.parts))  # the bias untouched


def test_the_aligned_model_predicts_and_is_the_next_steps_teacher(digits):
    method = fresh(digits)
    first, second, third = digits.tasks[:3]
    for task in (first, second):
        method.before_task(task)
        method.training_data(task)
        before = head_weight(method)
        method.after_task(task)
    gamma = method.gammas[-1]
    after = head_weight(method)
    assert len(method.gammas) == 1 and gamma != pytest.approx(1.0)
    assert torch.allclose(after[2:4], gamma * before[2:4]) and torch.equal(after[:2], before[:2])
    x = third.x_test[:8]
    with torch.no_grad():
        aligned = method.model(x)
    assert torch.allclose(method.predict(x), aligned)
    method.before_task(third)
    assert torch.allclose(method.old_logits(x), aligned[:, :4])  # distils from the aligned outputs


def test_alignment_off_leaves_the_head_as_trained(digits):
    method = fresh(digits, align=False)
    for task in digits.tasks[:2]:
        method.before_task(task)
        method.training_data(task)
        before = head_weight(method)
        method.after_task(task)
    assert torch.equal(head_weight(method), before) and method.gammas == [1.0]


# ---------------------------------------------------------------------- the official code's variants
def test_non_negative_weights_are_clamped_before_each_forward_pass_and_after_the_task(digits):
    method = fresh(digits, nonnegative_weights=True)
    task = digits.tasks[0]
    method.before_task(task)
    assert (head_weight(method) >= 0).all()
    x, targets, task_ids = method.training_data(task)
    with torch.no_grad():
        method.model.head.parts[0].weight.sub_(1.0)  # as an optimizer step might leave it
    assert (head_weight(method) < 0).any()
    method.loss(x[:8], targets[:8], task_ids[:8])
    assert (head_weight(method) >= 0).all()
    with torch.no_grad():
        method.model.head.parts[0].weight.sub_(1.0)  # the last step of the task
    method.after_task(task)
    assert (head_weight(method) >= 0).all()


def test_trained_with_the_official_variants_the_head_is_non_negative_and_bias_free(digits):
    method = fresh(digits, **OFFICIAL)
    config = TrainConfig(seed=0, **FAST)
    seen = []

    class Watch:  # the head as every task ends, after alignment
        def __call__(self, results):
            seen.append((head_weight(method).clone(), [part.bias.detach().clone() for part in method.model.head.parts]))

    run(method, digits, config, loggers=[Watch()])
    assert len(seen) == len(digits.tasks)
    for weight, biases in seen:
        assert (weight >= 0).all() and all(torch.equal(b, torch.zeros_like(b)) for b in biases)
    assert len(method.gammas) == len(digits.tasks) - 1 and all(0 < g <= 1 for g in method.gammas)
    assert not any(part.bias in set(method.trainable_parameters()) for part in method.model.head.parts)


def test_a_fresh_head_is_initialised_again_at_each_step_and_distils_from_the_old_one(digits):
    method = fresh(digits, fresh_head=True)
    first, second = digits.tasks[:2]
    method.before_task(first)
    method.training_data(first)
    with torch.no_grad():
        method.model.head.parts[0].weight.fill_(0.5)  # "trained"
    method.after_task(first)
    x = second.x_test[:8]
    with torch.no_grad():
        old = method.model(x)
    method.before_task(second)
    assert not (method.model.head.parts[0].weight == 0.5).any()  # the old rows drawn again
    assert torch.allclose(method.old_logits(x), old)  # the teacher is the model before the reset


# ---------------------------------------------------------------------- checkpoints and whole runs
def test_save_and_load_predict_the_same_and_go_on_the_same(digits, tmp_path):
    learner = Learner("wa", hidden=(32,), memory=60, **FAST)
    for task in digits.tasks[:2]:
        learner.learn(*labelled(task))
    learner.save(tmp_path / "wa.pt")
    loaded = Learner.load(tmp_path / "wa.pt")
    x = digits.tasks[1].x_test
    assert np.allclose(loaded.predict_proba(x), learner.predict_proba(x), atol=1e-6)
    assert loaded.method.gammas == pytest.approx(learner.method.gammas)
    for one in (learner, loaded):
        one.learn(*labelled(digits.tasks[2]))
    assert np.allclose(loaded.predict_proba(x), learner.predict_proba(x), atol=1e-5)
    assert loaded.method.gammas == pytest.approx(learner.method.gammas)


@pytest.mark.exact
def test_a_resumed_run_gives_the_uninterrupted_runs_numbers(digits, tmp_path):
    config = TrainConfig(seed=3, **FAST)
    options = {"memory": 60, **OFFICIAL}
    reference = run(fresh(digits, seed=3, **options), digits, config, out_dir=tmp_path / "whole")

    class Interrupted(WA):
        def before_task(self, task):
            if task.id == 2:
                raise KeyboardInterrupt
            super().before_task(task)

    torch.manual_seed(3)
    interrupted = Interrupted(build_model(digits, hidden=(32,)), "class", **options)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, digits, config, out_dir=tmp_path / "cut")
    resumed = run(fresh(digits, seed=3, **options), digits, config, out_dir=tmp_path / "cut", resume=True)
    assert np.allclose(resumed["accuracy_matrix"], reference["accuracy_matrix"], atol=1e-9, equal_nan=True)
    details = json.loads((tmp_path / "cut" / "results.json").read_text())["method_details"]
    assert details["gammas"] == pytest.approx(reference["method_details"]["gammas"])


def test_runs_from_the_command_line_and_beats_fine_tuning(digits, tmp_path, capsys):
    code = main(["run", "--method", "wa", "--memory", "100", "--setting", "class", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    results = [json.loads(p.read_text()) for p in tmp_path.rglob("results.json")]
    assert len(results) == 1
    details = results[0]["method_details"]
    assert len(details["gammas"]) == len(digits.tasks) - 1 and details["norm"] == "l2"
    finetune = run_experiment("finetune", digits, "class", hidden=(32,), **FAST)["final_average_accuracy"]
    ours = run_experiment("wa", digits, "class", hidden=(32,), method_options={"memory": 100, **OFFICIAL},
                          **FAST)["final_average_accuracy"]
    assert ours > finetune + 0.3  # fine-tuning keeps only the last task: 20 %


# ---------------------------------------------------------------------- bad options
@pytest.mark.parametrize("options, message", [
    ({"norm": "l3"}, "unknown wa norm 'l3'; choose one of: l2, l1"),
    ({"kd_weight": "tasks"}, "unknown wa kd_weight 'tasks'; choose one of: classes, steps"),
    ({"clip_gamma": "yes"}, "wa clip_gamma must be true or false"),
    ({"nonnegative_weights": 1}, "wa nonnegative_weights must be true or false"),
    ({"temperature": 0}, "temperature must be a positive number"),
])
def test_bad_options_are_refused(digits, options, message):
    with pytest.raises(ConfigError, match=message):
        fresh(digits, **options)


@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "wa", "--setting", "class"], "wa keeps exemplars and needs a memory size"),
    (["run", "--method", "wa", "--memory", "50", "--setting", "task"], "wa runs in the class setting only"),
    (["run", "--method", "wa", "--memory", "50", "--setting", "class", "--param", "norm=l3"], "unknown wa norm"),
])
def test_bad_command_lines_are_one_line_before_any_training(capsys, argv, message):
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lifelong: error:") and message in lines[0], err
