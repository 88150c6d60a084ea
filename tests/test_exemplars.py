"""The exemplar memory and the methods that keep one: replay, iCaRL, BiC."""

import json

import pytest
import torch
import torch.nn.functional as F

from lifelong.cli import main
from lifelong.engine import TrainConfig, run
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.memory import ExemplarMemory, herding
from lifelong.methods import BiC, ICaRL
from lifelong.methods.bic import BiasLayer
from lifelong.benchmarks import make_scenario

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def fresh(name, scenario, seed=0, **options):
    torch.manual_seed(seed)
    return build_method(name, build_model(scenario, hidden=(32,)), "class", options)


# ---------------------------------------------------------------------- herding and the memory
def herding_loop(features, m):
    """Rebuffi et al. 2017, Algorithm 4, written as the paper states it, one candidate at a time."""
    mu = features.double().mean(0)
    chosen, total = [], torch.zeros_like(mu)
    for k in range(1, m + 1):
        best, best_distance = None, float("inf")
        for i, f in enumerate(features.double()):
            if i in chosen:
                continue
            distance = torch.linalg.norm(mu - (total + f) / k).item()
            if distance < best_distance:
                best, best_distance = i, distance
        chosen.append(best)
        total += features[best].double()
    return chosen


def test_herding_picks_what_the_papers_loop_picks_and_its_mean_beats_random():
    features = torch.randn(60, 5, generator=torch.Generator().manual_seed(0))
    chosen = herding(features, 12)
    assert chosen.tolist() == herding_loop(features, 12)
    assert herding(features, 3).tolist() == herding_loop(features, 3)
    assert len(set(chosen.tolist())) == 12
    mu = features.mean(0)
    for k in (1, 4, 12):  # every prefix: the running mean tracks the class mean better than random draws
        herd = torch.linalg.norm(features[chosen[:k]].mean(0) - mu)
        randoms = [torch.linalg.norm(features[torch.randperm(60)[:k]].mean(0) - mu) for _ in range(50)]
        assert herd < sorted(randoms)[5]


def test_the_budget_is_shared_by_the_classes_seen_and_shrinks_by_truncation():
    memory = ExemplarMemory(budget=20, selection="random", seed=1)
    x = torch.arange(100, dtype=torch.uint8).view(100, 1)
    y = torch.arange(100) % 2
    memory.update(x, y, task_id=0)
    assert len(memory) == 20 and [len(v) for v in memory.x.values()] == [10, 10]
    first = {k: v.clone() for k, v in memory.x.items()}
    memory.update(x, y + 2, task_id=1)  # two more classes: 5 per class, the first 5 of each kept
    assert len(memory) == 20 and all(len(v) == 5 for v in memory.x.values())
    for key, kept in first.items():
        assert torch.equal(memory.x[key], kept[:5])
    assert memory.x[(0, 0)].dtype == torch.uint8  # stored as given
    x_all, targets, task_ids = memory.data()
    assert targets.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 and task_ids.tolist() == [0] * 10 + [1] * 10
    fixed = ExemplarMemory(per_class=3, selection="random")
    fixed.update(x, y, 0)
    fixed.update(x, y + 2, 1)
    assert len(fixed) == 12
    copy = ExemplarMemory(budget=20, selection="random")
    copy.load_state_dict(memory.state_dict())
    assert all(torch.equal(copy.x[k], memory.x[k]) for k in memory.x)


def test_memory_sizes_are_checked():
    with pytest.raises(ConfigError, match="either a total budget"):
        ExemplarMemory()
    with pytest.raises(ConfigError, match="positive number"):
        ExemplarMemory(budget=0)
    with pytest.raises(ConfigError, match="cannot hold one exemplar for each of 10 classes"):
        ExemplarMemory(budget=5).check_room(10)


# ---------------------------------------------------------------------- replay
def test_replay_trains_on_the_new_task_plus_the_memory_repeated_as_hsu(digits):
    method = fresh("replay", digits, memory=40, mix="repeat")
    first, second = digits.tasks[:2]
    method.before_task(first)
    assert len(method.training_data(first)[0]) == len(first.x_train)  # nothing stored yet
    method.after_task(first)
    method.before_task(second)
    x, targets, task_ids = method.training_data(second)
    repeats = len(second.x_train) // 40  # Hsu et al.: old and new about 1:1
    assert repeats >= 2 and len(x) == len(second.x_train) + 40 * repeats
    assert sorted(targets[len(second.x_train):].unique().tolist()) == [0, 1]
    union = fresh("replay", digits, memory=40)
    union.before_task(first)
    union.after_task(first)
    union.before_task(second)
    assert len(union.training_data(second)[0]) == len(second.x_train) + 40


def test_nearest_mean_of_exemplars_is_the_nearest_normalised_class_mean(digits):
    method = fresh("replay", digits, memory=40, selection="herding", classifier="ncm")
    for task in digits.tasks[:2]:
        method.before_task(task)
        method.after_task(task)
    x = digits.tasks[1].x_test[:20]
    scores = method.predict(x)
    stored_x, stored_targets, _ = method.memory.data()
    with torch.no_grad():
        feats = F.normalize(method.model.features(stored_x), dim=1)
        f = F.normalize(method.model.features(x), dim=1)
    means = torch.stack([F.normalize(feats[stored_targets == c].mean(0), dim=0) for c in range(4)])
    expected = torch.tensor([min(range(4), key=lambda c: torch.linalg.norm(fi - means[c]).item()) for fi in f])
    assert torch.equal(scores.argmax(1), expected)


# ---------------------------------------------------------------------- iCaRL
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_icarl_loss_is_the_papers_binary_cross_entropy(digits, temperature):
    """T = 1 is the paper's loss; T = 2 softens only the targets, as van de Ven et al.'s code does."""
    method = fresh("icarl", digits, memory=40, temperature=temperature)
    method.before_task(digits.tasks[0])
    method.after_task(digits.tasks[0])
    method.before_task(digits.tasks[1])
    logits = torch.randn(3, 4)
    old_logits = torch.randn(3, 2)
    targets = torch.tensor([0, 2, 3])
    loss = method.distillation_loss(logits, targets, None, old_logits)
    total = 0.0
    for i in range(3):  # sum over classes: old ones towards q = sigmoid(old), new ones towards the label
        g = torch.sigmoid(logits[i])
        for y in range(4):
            target = torch.sigmoid(old_logits[i, y] / temperature) if y < 2 else float(targets[i] == y)
            total += -(target * torch.log(g[y]) + (1 - target) * torch.log(1 - g[y]))
    assert loss.item() == pytest.approx(total.item() / 12, rel=1e-5)  # averaged over samples and outputs


# ---------------------------------------------------------------------- BiC
def test_bic_stage_1_weights_distillation_by_n_over_n_plus_m_with_one_softmax(digits):
    """Pins three mistakes seen in other libraries: lambda inverted, a double softmax, a T^2 the official code
    does not have."""
    method = fresh("bic", digits, memory_per_class=10)
    method.offsets, method.sizes = [0, 2], [2, 3]
    method.output_mask = torch.ones(2, 5, dtype=torch.bool)
    logits, old_logits = torch.randn(4, 5), torch.randn(4, 2)
    targets = torch.tensor([0, 2, 3, 4])
    T, lam = 2.0, 2 / 5  # n = 2 old classes, m = 3 new
    p = torch.exp(old_logits / T) / torch.exp(old_logits / T).sum(1, keepdim=True)
    log_q = logits[:, :2] / T - torch.log(torch.exp(logits[:, :2] / T).sum(1, keepdim=True))
    distillation = -(p * log_q).sum(1).mean()
    ce = -torch.log(torch.exp(logits[torch.arange(4), targets]) / torch.exp(logits).sum(1)).mean()
    expected = lam * distillation + (1 - lam) * ce
    assert method.distillation_loss(logits, targets, None, old_logits).item() == pytest.approx(expected.item(), rel=1e-5)


def test_bic_has_one_bias_pair_on_the_newest_classes_and_distils_from_the_corrected_old_model(digits):
    method = fresh("bic", digits, memory_per_class=20)
    three = digits.tasks[:3]
    for task in three[:2]:
        method.before_task(task)
        method.training_data(task)
        method.after_task(task)
    assert method.bias.start == 2 and (method.bias.alpha.item(), method.bias.beta.item()) != (1.0, 0.0)
    x = three[0].x_test[:8]
    with torch.no_grad():
        raw = method.model(x)
    predicted = method.predict(x)
    assert torch.equal(predicted[:, :2], raw[:, :2])  # old classes untouched
    assert torch.allclose(predicted[:, 2:], method.bias.alpha * raw[:, 2:] + method.bias.beta)
    alpha, beta = method.bias.alpha.item(), method.bias.beta.item()
    method.before_task(three[2])
    old = method.old_logits(x)
    assert torch.allclose(old, torch.cat([raw[:, :2], alpha * raw[:, 2:] + beta], 1), atol=1e-6)
    x_train, targets, _, recorded = method.training_data(three[2])
    method.after_task(three[2])
    assert method.bias.start == 4  # the new pair covers only this step's classes
    assert len([p for p in method.bias.parameters()]) == 2  # one (alpha, beta), never one per step


def test_bic_stage_2_runs_the_network_once_on_a_balanced_validation_set_and_changes_nothing_else(digits):
    method = fresh("bic", digits, memory_per_class=20)
    for task in digits.tasks[:1]:
        method.before_task(task)
        method.after_task(task)
    task = digits.tasks[1]
    method.before_task(task)
    x_train, *_ = method.training_data(task)
    val_x, val_targets = method.validation_set()
    counts = torch.bincount(val_targets)
    assert counts.tolist() == [2, 2, 2, 2]  # v = floor(0.1 * 20) for old and new classes alike
    assert len(x_train) == len(task.x_train) - 4 + 2 * 18  # new data minus held out, exemplars minus validation
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    calls = []
    handle = method.model.backbone.register_forward_hook(lambda *args: calls.append(1))
    method.correct_bias(task)
    handle.remove()
    assert len(calls) == 1  # cached logits: stage 2 never runs the backbone again
    assert all(torch.equal(before[k], v) for k, v in method.model.state_dict().items())


def test_bias_layer_by_hand():
    layer = BiasLayer()
    with torch.no_grad():
        layer.alpha.fill_(0.5)
        layer.beta.fill_(-1.0)
    layer.start = 3
    o = torch.tensor([[1.0, 2.0, 3.0, 4.0, 6.0]])
    assert layer(o).tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0]]


@pytest.mark.exact
@pytest.mark.parametrize("name, options", [("replay", {"memory": 60}), ("icarl", {"memory": 60}),
                                           ("bic", {"memory": 100})])
def test_exemplar_methods_resume_with_the_same_exemplars_and_numbers(digits, tmp_path, name, options):
    config = TrainConfig(seed=3, **FAST)
    reference = run(fresh(name, digits, seed=3, **options), digits, config, out_dir=tmp_path / "whole")
    cls = type(fresh(name, digits, **options))

    class Interrupted(cls):
        def before_task(self, task):
            if task.id == 2:
                raise KeyboardInterrupt
            super().before_task(task)

    torch.manual_seed(3)
    interrupted = Interrupted(build_model(digits, hidden=(32,)), "class", **options)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, digits, config, out_dir=tmp_path / "cut")
    resumed = run(fresh(name, digits, seed=3, **options), digits, config, out_dir=tmp_path / "cut", resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    details = json.loads((tmp_path / "cut" / "results.json").read_text())["method_details"]["memory"]
    assert details["budget"] == options["memory"] and details["stored"] <= options["memory"]


def test_exemplar_methods_beat_finetuning_in_the_class_setting(digits):
    finetune = run_experiment("finetune", digits, "class", hidden=(32,), **FAST)["final_average_accuracy"]
    for name in ("replay", "icarl", "bic"):
        ours = run_experiment(name, digits, "class", hidden=(32,), method_options={"memory": 100},
                              **FAST)["final_average_accuracy"]
        assert ours > finetune + 0.4, name  # fine-tuning keeps only the last task: 20 %


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "bic"], "bic keeps exemplars and needs a memory size"),
    (["run", "--method", "icarl", "--setting", "class"], "icarl keeps exemplars and needs a memory size"),
    (["run", "--method", "finetune", "--memory", "100"], "--memory and --memory-per-class are for methods"),
    (["run", "--method", "replay", "--memory", "5", "--setting", "class"], "cannot hold one exemplar for each of 10"),
    (["run", "--method", "bic", "--memory", "50", "--setting", "class"], "needs at least one validation"),
    (["run", "--method", "bic", "--memory", "3000"], "holding out 150 for validation leaves none to train on"),
    (["run", "--method", "icarl", "--memory", "50", "--setting", "task"], "icarl runs in the class setting only"),
])
def test_bad_memory_options_are_one_line_before_any_training(capsys, argv, message):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifelong: error:") and message in lines[0], err


@pytest.mark.parametrize("n", [300, 200])  # two batches per epoch; one (which fit_bias does not shuffle)
def test_stage_2_in_closed_form_takes_the_steps_of_sgd_on_the_autograd_loss(digits, n):
    """fit_bias's hand-written gradients and momentum against torch.optim.SGD on the loss written out."""
    from lifelong.methods import bic as bic_module

    method = fresh("bic", digits, memory_per_class=20)
    logits, targets = torch.randn(n, 6) * 3, torch.randint(0, 6, (n,))
    method.bias = BiasLayer()
    method.bias.start = 4
    method.fit_bias(logits, targets, torch.Generator().manual_seed(0))
    reference = BiasLayer()
    reference.start = 4
    optimizer = torch.optim.SGD(reference.parameters(), lr=bic_module.BIAS_LR, momentum=0.9)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, bic_module.BIAS_MILESTONES, 0.1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(bic_module.BIAS_EPOCHS):
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, bic_module.BIAS_BATCH):
            idx = order[first:first + bic_module.BIAS_BATCH]
            loss = F.cross_entropy(reference(logits[idx]), targets[idx]) + 0.1 * reference.beta**2 / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    assert method.bias.alpha.item() == pytest.approx(reference.alpha.item(), abs=1e-4)
    assert method.bias.beta.item() == pytest.approx(reference.beta.item(), abs=1e-4)
    assert (reference.alpha.item(), reference.beta.item()) != (1.0, 0.0)


def test_replay_says_its_default_mix_is_not_the_fields_1_to_1():
    from lifelong import catalog
    from lifelong.methods import METHODS, describe_options
    from lifelong.models import MLP, ContinualModel

    method = build_method("replay", ContinualModel(MLP(4, (8,))), "class", {"memory": 10})
    details = method.describe()
    assert details["mix"] == "union" and "not the 1:1" in details["mix_means"] and "mix=repeat" in details["mix_means"]
    assert "1:1" in build_method("replay", ContinualModel(MLP(4, (8,))), "class",
                                 {"memory": 10, "mix": "repeat"}).describe()["mix_means"]
    assert "--param mix=repeat" in catalog.METHODS["replay"][0]  # lifelong list
    assert "--param mix=repeat" in describe_options(METHODS["replay"])  # lifelong list --method replay
