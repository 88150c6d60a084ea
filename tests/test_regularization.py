"""The importance-weight family: MAS, l-MAS, EWC, online EWC, SI, L2 and their shared penalty."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong.engine import TrainConfig, run
from lifelong.training import train_task
from lifelong.errors import ConfigError, TrainingError
from lifelong.experiment import build_method, build_model
from lifelong.methods import MAS
from lifelong.methods import METHODS as METHODS_BY_NAME
from lifelong.methods.mas import hebbian_importance
from lifelong.methods.regularization import batch_gradient_statistic, per_sample_statistic
from lifelong.models import ContinualModel
from lifelong.results import json_safe
from lifelong.benchmarks import make_scenario

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)
METHODS = ("mas", "l-mas", "ewc", "online-ewc", "si", "l2")


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def fresh(name, scenario, setting, seed=0, hidden=(32,), **options):
    torch.manual_seed(seed)
    return build_method(name, build_model(scenario, hidden=hidden), setting, options)


def mixed_model():
    """Conv (with bias) + batch norm + ReLU + Linear layers: both the closed form and torch.func are exercised."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 5 * 5, 7), nn.ReLU(), nn.Linear(7, 4))
    model.train()
    model(torch.randn(16, 2, 5, 5))  # give batch norm non-trivial running statistics
    return model


def loop_statistic(model, objective, x, *args, transform):
    """The definition: one autograd call per sample, in evaluation mode."""
    model.eval()
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for k in range(len(x)):
        value = objective(model(x[k:k + 1]), *(a[k:k + 1] for a in args)).sum()
        grads = torch.autograd.grad(value, list(model.parameters()))
        for (n, _), g in zip(model.named_parameters(), grads):
            total[n] += g.abs() if transform == "abs" else g.square()
    return total


@pytest.mark.parametrize("transform", ["abs", "square"])
def test_per_sample_statistic_equals_a_loop_over_single_samples(transform):
    model = mixed_model()
    x, labels = torch.randn(9, 2, 5, 5), torch.randint(0, 4, (9,))
    mas_objective = lambda out: out.square().sum(1)  # noqa: E731
    fisher_objective = lambda out, y: F.cross_entropy(out, y, reduction="none")  # noqa: E731
    objective, args = (mas_objective, ()) if transform == "abs" else (fisher_objective, (labels,))
    expected = loop_statistic(model, objective, x, *args, transform=transform)
    model.train()
    got = per_sample_statistic(model, objective, x, *args, transform=transform)
    assert model.training and model[1].running_mean.shape == (3,)  # mode restored
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    # the official code's batch estimate |sum_k g_k| can only be smaller than sum_k |g_k|
    if transform == "abs":
        batch = batch_gradient_statistic(model, objective, x)
        assert all((batch[n] <= got[n] + 1e-5).all() for n in got)
        assert any((batch[n] < got[n] - 1e-3).any() for n in got)


def local_objective_importance(model, x):
    """Autograd of each layer's own l2^2 output with respect to that layer's parameters, the layer's input
    fixed, |.| per sample, summed over samples: the definition of l-MAS (Aljundi et al. section 4.2)."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    names = {p: n for n, p in model.named_parameters()}
    layers = list(model)
    for k in range(len(x)):
        h = x[k:k + 1]
        for i, layer in enumerate(layers):
            out = layer(h.detach())
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                y = F.relu(out) if i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU) else out
                grads = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
                for p, g in zip(layer.parameters(), grads):
                    total[names[p]] += g.abs()
            h = out
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_local_mas_is_autograd_of_the_local_objective_on_random_relu_networks(seed):
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 2, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8, 3))
    for model, x in ((mlp, torch.randn(11, 6)), (conv, torch.randn(7, 2, 4, 4))):
        assert (x < 0).any()  # the first layer sees negative inputs: the absolute value matters there
        expected = local_objective_importance(model, x)
        got = hebbian_importance(model, x)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)


def test_local_mas_on_a_relu_layer_is_the_hebbian_coactivation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    x = torch.randn(10, 4)
    hidden = model[1](model[0](x))
    out = model[3](model[2](hidden))
    # both ReLU: g_ij = 2 y_i y_j >= 0, so Omega = 2 * (1/N) sum_k y_i y_j
    expected = 2 * hidden.T @ out / len(x)
    torch.testing.assert_close(hebbian_importance(model, x)["2.weight"] / len(x), expected.T.detach())


def test_local_mas_from_the_last_epoch_equals_a_pass_of_its_own_when_training_stands_still(digits):
    """With a learning rate too small to move any weight, the last epoch's co-activations (gathered while training)
    are those of the trained network: the same Omega as the pass after training, and only one epoch counted."""
    task = digits.tasks[0]
    config = TrainConfig(epochs=3, batch_size=32, lr=1e-30, optimizer="sgd", progress=False)
    omegas = {}
    for activations in ("after-training", "last-epoch"):
        method = fresh("l-mas", digits, "class", activations=activations)
        method.before_task(task)
        train_task(method, task, digits, config, torch.Generator().manual_seed(0))
        method.after_task(task)
        omegas[activations] = method.importance
        assert not any(m._forward_hooks for m in method.model.modules())  # recording stopped with the task
    for name, expected in omegas["after-training"].items():
        assert expected.abs().sum() > 0 or name.endswith("bias")
        torch.testing.assert_close(omegas["last-epoch"][name], expected, rtol=1e-4, atol=1e-6)


def test_local_mas_refuses_a_layer_used_twice_per_forward_pass():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    with pytest.raises(ConfigError, match="used once per forward pass"):
        hebbian_importance(model, torch.randn(4, 3))


def regression_model():
    return nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))


def fit(model, x, y, penalty=None, steps=400):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        loss = F.mse_loss(model(x), y) + (penalty() if penalty else 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_mas_protects_a_regression_model_from_unlabelled_inputs():
    """Problem-agnostic and label-free: a 1-D regression net learns sin on [-3, 0]; MAS importance from the inputs
    alone; then it learns a second function on [0, 3]. With MAS it keeps the first function far better."""
    x_old, x_new = torch.linspace(-3, 0, 64)[:, None], torch.linspace(0, 3, 64)[:, None]
    errors = {}
    for strength in (0.0, 10.0):
        torch.manual_seed(0)
        model = regression_model()
        fit(model, x_old, torch.sin(2 * x_old))
        mas = MAS(model, "domain", strength=strength)
        mas.update_importance(x_old)  # unlabelled: no targets given
        mas.consolidate()
        fit(model, x_new, torch.cos(2 * x_new), penalty=lambda: mas.strength * mas.penalty())
        with torch.no_grad():
            errors[strength] = F.mse_loss(model(x_old), torch.sin(2 * x_old)).item()
    assert errors[10.0] < errors[0.0] / 10, errors


def test_accumulation_across_tasks_sum_and_average(digits):
    importances = {}
    for accumulate in ("sum", "average"):
        method = fresh("mas", digits, "domain", accumulate=accumulate)
        method.before_task(digits.tasks[0])
        x = digits.tasks[0].x_train[:40]
        measured = []
        for scale in (1.0, 3.0):
            with torch.no_grad():
                method.model.backbone.blocks[0][0].weight.mul_(scale)
            method.update_importance(x)
            measured.append({n: v / len(x) for n, v in method._running.items()})
            method.consolidate()
        importances[accumulate] = method.importance
    for name, value in importances["sum"].items():
        torch.testing.assert_close(value, measured[0][name] + measured[1][name])
        torch.testing.assert_close(importances["average"][name], (measured[0][name] + measured[1][name]) / 2)


def test_ewc_keeps_one_quadratic_with_the_gradient_of_one_penalty_per_task(digits):
    method = fresh("ewc", digits, "domain", strength=1.0)
    params = dict(method.model.named_parameters())
    tasks = []
    for t in range(3):
        fisher = {n: torch.rand_like(p) * (t + 1) for n, p in params.items()}
        anchor = {n: torch.randn_like(p) for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(anchor[n])
        method.combine(fisher)
        tasks.append((fisher, anchor))
    method._prepare_terms()
    with torch.no_grad():
        for p in params.values():
            p.normal_()
    got = torch.autograd.grad(method.penalty(), list(params.values()))
    per_task = sum((f[n] * (p - a[n]).square()).sum() for f, a in tasks for n, p in params.items())
    expected = torch.autograd.grad(per_task, list(params.values()))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert sum(v.numel() for v in method.state_dict()["anchor"].values()) == sum(p.numel() for p in params.values())


def full_batch_sgd(lr=0.02, epochs=60):
    return TrainConfig(epochs=epochs, batch_size=10_000, lr=lr, optimizer="sgd", momentum=0.0, progress=False)


def test_si_path_integral_is_the_drop_of_the_task_loss(digits):
    """Zenke et al. eq. 3: with small full-batch steps, sum_k w_k = L(start) - L(end) of the task's own loss, also
    on the second task, where the penalty acts too (g is copied before before_step adds the penalty's gradient)."""
    from lifelong.training import train_task

    method = fresh("si", digits, "domain", strength=0.1)
    for task in digits.tasks[:2]:
        method.before_task(task)
        x, targets, task_ids = method.training_data(task)
        with torch.no_grad():
            method.model.eval()
            start = method.classification_loss(method.model(x), targets, task_ids).item()
        train_task(method, task, digits, full_batch_sgd(), torch.Generator().manual_seed(0))
        with torch.no_grad():
            method.model.eval()
            end = method.classification_loss(method.model(x), targets, task_ids).item()
        path = sum(w.sum().item() for w in method._path.values())
        assert start - end > 0.3
        assert path == pytest.approx(start - end, rel=0.05)
        method.after_task(task)
    assert all((omega >= 0).float().mean() > 0.5 for omega in method.importance.values())


def test_new_head_parts_are_free_and_old_ones_frozen_in_the_task_setting(digits):
    method = fresh("mas", digits, "task")
    run(method, make_sub(digits, 2), TrainConfig(**{**FAST, "epochs": 1}))
    penalised = {n for n, p in method.model.named_parameters() if any(p is q for q, _, _ in method._terms)}
    # part 0 was frozen when task 1 began (the base class): it cannot drift, so it carries no penalty term
    assert penalised == {"backbone.blocks.0.0.weight", "backbone.blocks.0.0.bias",
                         "head.parts.1.weight", "head.parts.1.bias"}
    method.before_task(digits.tasks[2])  # head part 2 is born: no importance; parts 0 and 1 frozen
    penalised = {n for n, p in method.model.named_parameters() if any(p is q for q, _, _ in method._terms)}
    assert penalised == {"backbone.blocks.0.0.weight", "backbone.blocks.0.0.bias"}
    # each head part got its importance from its own task (MAS reads a task through its own part)
    assert method.importance["head.parts.0.weight"].abs().sum() > 0
    assert method.importance["head.parts.1.weight"].abs().sum() > 0


def make_sub(scenario, n_tasks):
    from dataclasses import replace
    return replace(scenario, tasks=scenario.tasks[:n_tasks])


def test_memory_stays_constant_as_tasks_accumulate(digits):
    for name in METHODS:
        method = fresh(name, digits, "domain")
        sizes = []
        config = TrainConfig(**{**FAST, "epochs": 1})
        for task in digits.tasks:
            method.before_task(task)
            from lifelong.training import train_task
            train_task(method, task, digits, config, torch.Generator().manual_seed(0))
            method.after_task(task)
            state = method.state_dict()
            sizes.append(sum(v.numel() for key in ("importance", "anchor") for v in state[key].values()))
        assert len(set(sizes)) == 1, (name, sizes)


class Interrupted:
    def before_task(self, task):
        if task.id == 2:
            raise KeyboardInterrupt
        super().before_task(task)


@pytest.mark.exact
@pytest.mark.parametrize("name", ["mas", "ewc", "si"])
def test_resume_after_an_interruption_gives_the_same_numbers(digits, tmp_path, name):
    config = TrainConfig(seed=5, **FAST)
    reference = run(fresh(name, digits, "class", seed=5), digits, config)
    cls = type("Interrupted", (Interrupted, METHODS_BY_NAME[name]), {})
    torch.manual_seed(5)
    with pytest.raises(KeyboardInterrupt):
        run(cls(build_model(digits, hidden=(32,)), "class"), digits, config, out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["accuracy_matrix"][:2] == json_safe(reference["accuracy_matrix"][:2])
    resumed = run(fresh(name, digits, "class", seed=5), digits, config, out_dir=tmp_path, resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]


def test_a_pretrained_model_is_protected_from_its_first_task(digits):
    """Importance of given weights (no task learned yet) from unlabelled inputs: the first task is then penalised."""
    method = fresh("mas", digits, "domain")
    method.model.head.add(2)
    method.update_importance(digits.tasks[0].x_test)
    method.consolidate()
    method.before_task(digits.tasks[0])
    assert method.penalty().item() == 0 and len(method._terms) == 4
    with torch.no_grad():
        method.model.backbone.blocks[0][0].weight.add_(0.1)
    assert method.penalty().item() > 0


def test_bad_input_gets_clear_errors(digits):
    with pytest.raises(ConfigError, match="strength .* >= 0"):
        fresh("mas", digits, "class", strength=-1)
    with pytest.raises(ConfigError, match="strength"):
        fresh("ewc", digits, "class", strength=float("nan"))
    with pytest.raises(ConfigError, match="unknown importance estimate"):
        fresh("mas", digits, "class", estimate="exact")
    with pytest.raises(ConfigError, match="has no option estimate"):
        fresh("l-mas", digits, "class", estimate="batch")
    method = fresh("mas", digits, "class")
    with pytest.raises(TrainingError, match="no importance yet"):
        method.importance
    with pytest.raises(TrainingError, match="no inputs"):
        method.consolidate()
    # a model whose parameters do not match the stored snapshot: swapped layer, or another model's checkpoint
    run(method, make_sub(digits, 1), TrainConfig(**{**FAST, "epochs": 1}))
    state = method.state_dict()
    method.model.backbone.blocks[0][0] = nn.Linear(64, 16)
    with pytest.raises(ConfigError, match="shape \\(16, 64\\) but the stored snapshot has \\(32, 64\\)"):
        method.before_task(digits.tasks[1])
    with pytest.raises(ConfigError, match="do not match"):
        fresh("mas", digits, "class", hidden=(16,)).load_state_dict(state, digits.tasks[:1])


@pytest.mark.slow
def test_split_mnist_domain_il_mas_and_l_mas_keep_the_first_task(shared_data):
    """Two split-MNIST tasks ({0,1} then {2,3}) on one shared head, 2,000 training images each, 1 epoch: without a
    penalty the second task overwrites the first; MAS and l-MAS (Hsu et al.'s domain-IL strength) keep it."""
    from dataclasses import replace

    full = make_scenario("split-mnist", data_dir=shared_data, download=False)
    tasks = [replace(t, x_train=t.x_train[:2000], y_train=t.y_train[:2000]) for t in full.tasks[:2]]
    scenario = replace(full, tasks=tasks)
    config = TrainConfig(epochs=1, batch_size=128, lr=0.001, optimizer="adam", progress=False)
    old_task = {}
    for name, options in (("finetune", {}), ("mas", {"strength": 10000}), ("l-mas", {"strength": 10000})):
        torch.manual_seed(0)
        method = build_method(name, build_model(scenario), "domain", options)
        old_task[name] = run(method, scenario, config)["accuracy_matrix"][1][0]
    assert old_task["mas"] > old_task["finetune"] + 0.1 and old_task["l-mas"] > old_task["finetune"] + 0.1, old_task


def test_ewc_batch_fisher_is_the_per_sample_one_for_batches_of_one(digits):
    """Hsu et al.'s estimate, B * (gradient of the batch's mean loss)^2 averaged over batches, is the exact
    per-sample Fisher when every batch holds one sample; with larger batches it differs."""
    task = replace_train(digits.tasks[0], 24)
    fishers = {}
    for fisher, batch_size in (("per-sample", 128), ("batch", 1), ("batch", 8)):
        method = fresh("ewc", digits, "task", fisher="predicted", estimate=fisher)
        method.importance_batch_size = batch_size
        method.before_task(task)
        fishers[fisher, batch_size] = method.task_importance(task)
    for name, value in fishers["per-sample", 128].items():
        torch.testing.assert_close(fishers["batch", 1][name], value, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(fishers["batch", 8]["backbone.blocks.0.0.weight"],
                              fishers["per-sample", 128]["backbone.blocks.0.0.weight"])


def replace_train(task, n):
    from dataclasses import replace
    return replace(task, x_train=task.x_train[:n], y_train=task.y_train[:n])


def two_part_head_model(seed=0):
    """A backbone and an `IncrementalHead` of two parts: the head runs its parts as one product."""
    torch.manual_seed(seed)
    model = ContinualModel(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), out_features=5)
    model.head.add(3)
    model.head.add(2)
    return model


def test_importance_of_each_head_part_when_the_head_runs_as_one_product():
    model, x = two_part_head_model(), torch.randn(13, 6)
    # l-MAS: the head is a linear layer fed by the ReLU features, each part its own rows
    features = model.backbone(x).detach()
    out = model.head(features).detach()
    got = hebbian_importance(model, x)
    for i, columns in enumerate((slice(0, 3), slice(3, 5))):
        torch.testing.assert_close(got[f"head.parts.{i}.weight"], 2 * out[:, columns].abs().T @ features)
        torch.testing.assert_close(got[f"head.parts.{i}.bias"], 2 * out[:, columns].abs().sum(0))
    # exact MAS: the closed form over the head's parts agrees with one autograd call per sample
    objective = lambda out: out.square().sum(1)  # noqa: E731
    expected = loop_statistic(model, objective, x, transform="abs")
    got = per_sample_statistic(model, objective, x)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    assert got["head.parts.1.weight"].abs().sum() > 0


@pytest.mark.parametrize("name", ["mas", "l-mas"])
def test_importance_reads_the_head_where_the_task_is_read(digits, name):
    """MAS and l-MAS measure a task through the outputs it is read by: in the task setting its own head part (an
    old part's importance is its own task's), in a head built with every class, the classes seen so far."""
    config = TrainConfig(**{**FAST, "epochs": 1})

    def learn(method, task):
        method.before_task(task)
        train_task(method, task, digits, config, torch.Generator().manual_seed(0))
        method.after_task(task)

    method = fresh(name, digits, "task")
    learn(method, digits.tasks[0])
    part_0 = method.importance["head.parts.0.weight"].clone()
    assert part_0.sum() > 0
    learn(method, digits.tasks[1])
    torch.testing.assert_close(method.importance["head.parts.0.weight"], part_0)  # task 1 left it alone
    assert method.importance["head.parts.1.weight"].sum() > 0

    torch.manual_seed(0)
    method = build_method(name, build_model(digits, hidden=(32,)), "class", {})
    method.model.head.add(10)  # every class's output from the start
    learn(method, digits.tasks[0])
    rows = method.importance["head.parts.0.weight"].sum(1)
    assert (rows[:2] > 0).all() and (rows[2:] == 0).all()
    assert (method.importance["head.parts.0.bias"][2:] == 0).all()


@pytest.mark.exact
def test_average_accumulation_counts_each_parameter_from_its_birth_and_survives_a_resume(digits):
    """accumulate="average": a head part added at task 1 is the mean of its own tasks' Omega, the backbone the mean
    of all three; a checkpoint taken between update_importance and consolidate loses nothing."""
    method = fresh("mas", digits, "class", accumulate="average")
    measured = []
    for t in range(3):
        method.before_task(digits.tasks[t])
        method.update_importance(digits.tasks[t].x_train[:40])
        measured.append({n: v / 40 for n, v in method._running.items()})
        if t == 2:  # interrupted before consolidating: a fresh learner resumes from the checkpoint
            state = method.state_dict()
            method = fresh("mas", digits, "class", accumulate="average")
            method.load_state_dict(state, digits.tasks[:3])
        method.consolidate()
    importance = method.importance
    for name in ("backbone.blocks.0.0.weight", "head.parts.0.weight"):
        torch.testing.assert_close(importance[name], sum(m[name] for m in measured) / 3)
    torch.testing.assert_close(importance["head.parts.1.weight"],
                               (measured[1]["head.parts.1.weight"] + measured[2]["head.parts.1.weight"]) / 2)


def test_mas_reduction_mean_divides_by_the_outputs_read(digits):
    """reduction="mean" (Hsu et al.'s code): Omega / the number of outputs read, 2 per task seen in the class
    setting; and importance can be measured inside torch.no_grad() (unlabelled data at test time)."""
    omegas = {}
    for reduction in ("sum", "mean"):
        method = fresh("mas", digits, "class", reduction=reduction)
        for t in range(2):
            method.before_task(digits.tasks[t])
        with torch.no_grad():
            method.update_importance(digits.tasks[1].x_train[:30])
        omegas[reduction] = method._take_running()
    for name, value in omegas["sum"].items():
        torch.testing.assert_close(omegas["mean"][name], value / 4)


def test_new_head_parts_and_the_penalty_follow_the_model_to_another_device_and_dtype(digits):
    """A head grown after the model was moved is created where the model is (the same numbers for a seed), and
    importance restored from a checkpoint follows the model when it moves afterwards (the engine moves the model
    after resuming). The meta device stands in for a GPU."""
    heads = {}
    for where in ("cpu", torch.float64):
        model = build_model(digits, hidden=(8,)).to(where)
        torch.manual_seed(1)
        model.head.add(2)
        heads[where] = model.head.parts[0].weight
    assert heads[torch.float64].dtype == torch.float64
    torch.testing.assert_close(heads[torch.float64], heads["cpu"].double())
    meta = build_model(digits, hidden=(8,)).to("meta")
    meta.head.add(2)
    assert meta.head.parts[0].weight.device.type == "meta"

    method = fresh("l2", digits, "domain")
    run(method, make_sub(digits, 1), TrainConfig(**{**FAST, "epochs": 1}))
    resumed = fresh("l2", digits, "domain")
    resumed.load_state_dict(method.state_dict(), digits.tasks[:1])
    resumed.model.to("meta")
    resumed.before_task(digits.tasks[1])
    assert resumed.penalty().device.type == "meta"


def test_si_refuses_a_damping_of_zero(digits):
    """xi = 0 would give 0 / 0 = NaN for every parameter that never moves (a dead unit's weights)."""
    with pytest.raises(ConfigError, match="damping must be a number in \\(0"):
        fresh("si", digits, "class", damping=0.0)


def test_si_path_and_distance_start_after_a_warm_up_of_the_head(digits):
    """With the engine's head warm-up, SI's w (sum of -g * step over the task's training) and the distance it is
    divided by must start at the same point: after the warm-up, which w does not see."""
    from dataclasses import replace as replaced

    from lifelong.training import train_task, warm_up_head

    method = fresh("si", digits, "class", strength=0.1)
    config = full_batch_sgd()
    for task in digits.tasks[:2]:
        method.before_task(task)
        data = list(method.training_data(task))
        warm_up_head(method, task, data, digits, replaced(config, warmup_epochs=3), torch.Generator().manual_seed(0))
        after_warm_up = method.snapshot()
        train_task(method, task, digits, config, torch.Generator().manual_seed(0))
        omega, theta = method.task_importance(task), method.snapshot()
        for name in ("head.parts.%d.weight" % task.id, "backbone.blocks.0.0.weight"):
            expected = method._path[name] / ((theta[name] - after_warm_up[name]).square() + method.damping)
            torch.testing.assert_close(omega[name], expected)
        method.after_task(task)


@pytest.mark.parametrize("setting", ["task", "class"])
@pytest.mark.parametrize("fisher", ["true", "empirical", "weighted-empirical", "predicted"])
def test_ewc_fisher_is_the_papers_the_empirical_or_hsus_written_as_a_loop(digits, setting, fisher):
    """F = (1/N) sum_k E_y g_y^2 with y ~ p(y | x_k) (Kirkpatrick et al.), at the true label (empirical; weighted
    by its probability: Mammoth's), or at the argmax (Hsu et al.), each against a loop over samples (and, for the
    true Fisher, over every output)."""
    first, second = digits.tasks[0], replace_train(digits.tasks[1], 12)
    method = fresh("ewc", digits, setting, fisher=fisher)
    method.before_task(first)
    method.before_task(second)  # two tasks seen: in the class setting 4 outputs are read, 2 in the task setting
    ours = method.task_importance(second)
    model = method.model.eval()
    params = dict(model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    columns = method.read_columns(second.id)
    for x, y in zip(second.x_train, second.y_train):
        logits = model(x[None])[:, columns]
        p = torch.softmax(logits, 1)[0].detach()
        true_label = int(y) if setting == "task" else int(y) + method.offsets[second.id]
        labels = {"true": range(logits.shape[1]), "empirical": [true_label], "weighted-empirical": [true_label],
                  "predicted": [int(logits.argmax())]}[fisher]
        for label in labels:
            weight = float(p[label]) if fisher in ("true", "weighted-empirical") else 1.0
            log_p = torch.log_softmax(model(x[None])[:, columns], 1)[0, label]
            free = {n: q for n, q in params.items() if q.requires_grad}  # old heads frozen in the task setting
            for name, g in zip(free, torch.autograd.grad(log_p, list(free.values()), allow_unused=True)):
                if g is not None:
                    expected[name] += weight * g**2 / len(second.x_train)
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-4, atol=1e-8, msg=name)


def test_the_sampled_fisher_is_the_true_one_in_expectation(digits):
    """fisher=sampled draws one label per sample from p(y | x): averaged over many draws it is the true Fisher
    (within the Monte Carlo error of 300 draws), and one draw is not (it is an estimate, not the expectation)."""
    first, second = digits.tasks[0], replace_train(digits.tasks[1], 12)
    true_method, sampled = (fresh("ewc", digits, "class", fisher=f) for f in ("true", "sampled"))
    for method in (true_method, sampled):
        torch.manual_seed(1)  # the same new head parts in both
        method.before_task(first)
        method.before_task(second)
    true = true_method.task_importance(second)
    draws = []
    for seed in range(300):
        torch.manual_seed(seed)
        draws.append(sampled.task_importance(second))
    for name in true:
        mean = torch.stack([d[name] for d in draws]).mean(0)
        relative = float((mean - true[name]).norm() / true[name].norm())
        assert relative < 0.1, (name, relative)
    name = "backbone.blocks.0.0.weight"
    assert float((draws[0][name] - true[name]).norm() / true[name].norm()) > 0.1


def test_the_true_fisher_has_no_batch_estimate(digits):
    with pytest.raises(ConfigError, match="estimate=batch"):
        fresh("ewc", digits, "class", fisher="true", estimate="batch")


def penalty_value(terms, model):
    params = dict(model.named_parameters())
    return float(sum((omega * (params[n] - anchor).square()).sum() for n, (omega, anchor) in terms.items()).detach())


@pytest.mark.parametrize("name", METHODS)
def test_the_penalty_in_closed_form_takes_the_step_of_the_penalty_in_the_loss(digits, name):
    """The penalty's gradient 2 lambda Omega (theta - theta*) is added by `before_step`, not through the loss's graph:
    one SGD step lands where a step on task loss + lambda * penalty, differentiated by autograd, lands."""
    from torch.func import functional_call

    method = fresh(name, digits, "class", strength=50.0)
    first, second = digits.tasks[:2]
    method.before_task(first)
    train_task(method, first, digits, TrainConfig(**FAST), torch.Generator().manual_seed(0))
    method.after_task(first)
    method.before_task(second)
    x, targets, task_ids = (t[:32] for t in method.training_data(second)[:3])
    model = method.model
    with torch.no_grad():  # away from theta*, where the penalty's gradient is zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    free = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters() if p.requires_grad}
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    terms = {n: (omega, anchor) for n, p in model.named_parameters() for q, omega, anchor in method._terms if q is p}
    assert terms and method.strength * penalty_value(terms, model) > 1e-3  # the old parameters are penalised
    out = functional_call(model, ({**free, **fixed}, dict(model.named_buffers())), (x,))
    penalty = sum((omega * (free[n] - anchor).square()).sum() for n, (omega, anchor) in terms.items())
    reference = method.classification_loss(out, targets, task_ids) + method.strength * penalty
    expected = {n: p - 0.1 * g for (n, p), g in zip(free.items(), torch.autograd.grad(reference, list(free.values())))}

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    optimizer.zero_grad()
    method.loss(x, targets, task_ids).backward()
    method.before_step()  # as the engine calls it: the penalty's gradient, in closed form
    optimizer.step()
    for n, p in model.named_parameters():
        if n in expected:
            torch.testing.assert_close(p.detach(), expected[n].detach(), rtol=1e-5, atol=1e-6, msg=n)
