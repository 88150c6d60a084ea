import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from lifelong.data import load_digits
from lifelong.engine import TrainConfig, run
from lifelong.training import train_task
from lifelong.errors import ConfigError, DataError, TrainingError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.learner import Learner
from lifelong.methods import Finetune, Joint
from lifelong.results import json_safe
from lifelong.benchmarks import make_scenario
from lifelong.scenarios import split_by_classes
from lifelong.storage import load_checkpoint

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)


@pytest.fixture(scope="module")
def digits_scenario():
    return make_scenario("split-digits")


def fresh(method_name, scenario, setting, seed=0, **options):
    torch.manual_seed(seed)
    return build_method(method_name, build_model(scenario, hidden=(32,)), setting, options)


@pytest.mark.exact
def test_same_seed_same_result_and_another_seed_differs(digits_scenario):
    a = run_experiment("finetune", digits_scenario, "class", hidden=(32,), seed=3, **FAST)
    b = run_experiment("finetune", digits_scenario, "class", hidden=(32,), seed=3, **FAST)
    c = run_experiment("finetune", digits_scenario, "class", hidden=(32,), seed=4, **FAST)
    assert a["accuracy_matrix"] == b["accuracy_matrix"]
    assert a["task_agnostic_accuracy_matrix"] != c["task_agnostic_accuracy_matrix"] or \
        a["task_aware_accuracy_matrix"] != c["task_aware_accuracy_matrix"]


class Interrupted:
    """Mixed into a method: interrupted (as by Ctrl-C) when task 2 (the third) is about to start."""

    def before_task(self, task):
        if task.id == 2:
            raise KeyboardInterrupt
        super().before_task(task)


class InterruptedFinetune(Interrupted, Finetune):
    pass


class InterruptedJoint(Interrupted, Joint):
    pass


@pytest.mark.exact
@pytest.mark.parametrize("method", ["finetune", "joint"])
def test_resume_after_an_interruption_gives_the_same_numbers(digits_scenario, tmp_path, method):
    config = TrainConfig(seed=5, **FAST)
    reference = run(fresh(method, digits_scenario, "task", seed=5), digits_scenario, config)

    torch.manual_seed(5)
    interrupted_class = InterruptedJoint if method == "joint" else InterruptedFinetune
    interrupted = interrupted_class(build_model(digits_scenario, hidden=(32,)), "task")
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, digits_scenario, config, out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"].startswith("running: 2 of 5") and saved["accuracy_matrix"][2][0] is None
    assert saved["accuracy_matrix"][:2] == json_safe(reference["accuracy_matrix"][:2])

    resumed = run(fresh(method, digits_scenario, "task", seed=5), digits_scenario, config, out_dir=tmp_path,
                  resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert resumed["status"] == "complete"


def test_resume_refuses_other_options(digits_scenario, tmp_path):
    run(fresh("finetune", digits_scenario, "class"), digits_scenario, TrainConfig(**FAST), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="other options"):
        run(fresh("finetune", digits_scenario, "class"), digits_scenario, TrainConfig(**{**FAST, "lr": 0.1}),
            out_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        run(fresh("finetune", digits_scenario, "class"), digits_scenario, TrainConfig(**FAST),
            out_dir=tmp_path / "empty", resume=True)


class ExplodingFinetune(Finetune):
    def loss(self, x, targets, task_ids):
        loss = super().loss(x, targets, task_ids)
        return loss * math.nan if task_ids[0] == 1 else loss


def test_nan_loss_stops_with_a_clear_error_and_keeps_finished_tasks(digits_scenario, tmp_path):
    torch.manual_seed(0)
    method = ExplodingFinetune(build_model(digits_scenario, hidden=(32,)), "class")
    with pytest.raises(TrainingError, match="loss became nan in task 2.*learning rate"):
        run(method, digits_scenario, TrainConfig(**FAST), out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["accuracy_matrix"][0][0] > 0.9 and (tmp_path / "checkpoint.pt").exists()


def test_settings_shape_the_head_and_the_targets(digits_scenario):
    sizes = {}
    for setting in ("task", "domain", "class"):
        method = fresh("finetune", digits_scenario, setting)
        run(method, digits_scenario, TrainConfig(**{**FAST, "epochs": 1}))
        sizes[setting] = method.model.head.out_features
        last = digits_scenario.tasks[-1]
        targets = method.training_data(last)[1]
        assert targets.tolist() == (last.y_train + (0 if setting == "domain" else 8)).tolist()
    assert sizes == {"task": 10, "domain": 2, "class": 10}


def test_task_incremental_loss_is_cross_entropy_within_the_tasks_head(digits_scenario):
    method = fresh("finetune", digits_scenario, "task")
    for task in digits_scenario.tasks[:3]:
        method.before_task(task)
        method.after_task(task)
    logits = torch.randn(4, 6)
    targets = torch.tensor([0, 3, 5, 2])
    task_ids = torch.tensor([0, 1, 2, 1])
    expected = torch.stack([F.cross_entropy(logits[i:i + 1, 2 * t:2 * t + 2], targets[i:i + 1] - 2 * t)
                            for i, t in enumerate(task_ids.tolist())]).mean()
    assert torch.allclose(method.classification_loss(logits, targets, task_ids), expected)


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def test_each_baseline_trains_exactly_what_li_and_hoiem_say(digits_scenario):
    config = TrainConfig(**{**FAST, "epochs": 1})
    first, second = digits_scenario.tasks[:2]
    changed = {}
    for name in ("finetune", "finetune-fc", "feature-extraction", "joint"):
        method = fresh(name, digits_scenario, "task")
        method.model.backbone.blocks.append(torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU()))
        method.before_task(first)
        train_task(method, first, digits_scenario, config, torch.Generator().manual_seed(0))
        method.after_task(first)
        method.before_task(second)
        before = _snapshot(method.model)
        train_task(method, second, digits_scenario, config, torch.Generator().manual_seed(0))
        changed[name] = {k.rsplit(".", 1)[0] for k in _changed(before, method.model)}
    assert changed["finetune"] == {"backbone.blocks.0.0", "backbone.blocks.1.0", "head.parts.1"}
    assert changed["finetune-fc"] == {"backbone.blocks.1.0", "head.parts.1"}
    assert changed["feature-extraction"] == {"head.parts.1"}
    assert changed["joint"] == {"backbone.blocks.0.0", "backbone.blocks.1.0", "head.parts.0", "head.parts.1"}


def test_joint_trains_on_the_union_of_seen_tasks(digits_scenario):
    method = fresh("joint", digits_scenario, "class")
    for task in digits_scenario.tasks[:3]:
        method.before_task(task)
        x, targets, task_ids = method.training_data(task)
        method.after_task(task)
    assert len(x) == sum(len(t.x_train) for t in digits_scenario.tasks[:3])
    assert sorted(set(targets.tolist())) == list(range(6)) and sorted(set(task_ids.tolist())) == [0, 1, 2]


def test_joint_from_scratch_trains_the_initial_model_on_the_union_at_every_task(digits_scenario):
    """Mammoth's JOINT: after task 2 the model is its initial state trained on tasks 1-2 only, the same model as
    one that never trained on task 1 alone; the default joint goes on from the model trained on task 1."""
    config = TrainConfig(**{**FAST, "epochs": 1})
    first, second = digits_scenario.tasks[:2]
    models = {}
    for name, options, train_first in (("scratch", {"from_scratch": True}, True), ("default", {}, True),
                                       ("never-trained", {}, False)):
        method = fresh("joint", digits_scenario, "class", **options)
        method.before_task(first)
        if train_first:
            train_task(method, first, digits_scenario, config, torch.Generator().manual_seed(1))
        method.after_task(first)
        torch.manual_seed(5)  # the new head part drawn alike
        method.before_task(second)
        train_task(method, second, digits_scenario, config, torch.Generator().manual_seed(0))
        models[name] = method.model.state_dict()
    assert all(torch.equal(models["scratch"][k], models["never-trained"][k]) for k in models["scratch"])
    assert not all(torch.equal(models["scratch"][k], models["default"][k]) for k in models["scratch"])
    with pytest.raises(ConfigError, match="from_scratch must be true or false"):
        fresh("joint", digits_scenario, "class", from_scratch="yes")


def test_bad_configuration_is_rejected():
    with pytest.raises(ConfigError, match="learning rate"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    digits = load_digits()
    scenario = split_by_classes(digits, 5)
    with pytest.raises(ConfigError, match="unknown method 'ewc2'"):
        build_method("ewc2", build_model(scenario), "class")
    with pytest.raises(ConfigError, match="has no option lamda"):
        build_method("finetune-fc", build_model(scenario), "class", {"lamda": 1})
    with pytest.raises(ConfigError, match="unknown setting"):
        build_method("finetune", build_model(scenario), "classes")


@pytest.mark.slow
def test_split_mnist_class_incremental_finetune_forgets_and_joint_does_not(shared_data):
    scenario = make_scenario("split-mnist", data_dir=shared_data, download=False)
    options = dict(epochs=1, progress=False)
    finetune = run_experiment("finetune", scenario, "class", **options)
    joint = run_experiment("joint", scenario, "class", **options)
    # every paper: fine-tuning ends near 20% (it only knows the last two classes); Hsu et al.: 19.71 +- 0.08
    assert 0.18 < finetune["final_average_accuracy"] < 0.23
    assert finetune["accuracy_matrix"][-1][-1] > 0.95 and max(finetune["accuracy_matrix"][-1][:4]) < 0.05
    assert joint["final_average_accuracy"] > 0.95


def test_before_epoch_is_called_once_per_training_epoch_in_training_mode(digits_scenario):
    class Recording(Finetune):
        def before_epoch(self, epoch, n_epochs):
            calls.append((epoch, n_epochs, self.model.training))

    calls = []
    torch.manual_seed(0)
    method = Recording(build_model(digits_scenario, hidden=(32,)), "task")
    for task in digits_scenario.tasks[:2]:
        method.before_task(task)
        train_task(method, task, digits_scenario, TrainConfig(**{**FAST, "epochs": 3, "warmup_epochs": 2}),
                   torch.Generator().manual_seed(0))
    assert calls == [(0, 3, True), (1, 3, True), (2, 3, True)] * 2  # not for the warm-up epochs


def test_optimizers_are_fused_and_match_the_plain_ones():
    from lifelong.training import make_optimizer

    config = dict(lr=0.01, weight_decay=1e-3)
    plain = {"adam": lambda p: torch.optim.Adam(p, **config),
             "sgd": lambda p: torch.optim.SGD(p, momentum=0.9, **config)}
    for name, make_plain in plain.items():
        results = []
        for make in (lambda p: make_optimizer(p, TrainConfig(optimizer=name, momentum=0.9, **config)), make_plain):
            torch.manual_seed(0)
            layer = torch.nn.Linear(5, 3)
            optimizer = make(layer.parameters())
            for _ in range(5):
                optimizer.zero_grad()
                layer(torch.ones(2, 5)).square().sum().backward()
                optimizer.step()
            results.append((optimizer.defaults["fused"], layer.weight.detach().clone()))
        (fused, ours), (plain_fused, theirs) = results
        assert fused is True and not plain_fused
        torch.testing.assert_close(ours, theirs)


@pytest.mark.exact
def test_one_optimizer_for_the_whole_sequence_carries_its_moments_and_resumes(digits_scenario, tmp_path):
    config = TrainConfig(seed=5, reset_optimizer=False, **FAST)
    method = fresh("finetune", digits_scenario, "task", seed=5)
    reference = run(method, digits_scenario, config)
    # one Adam for all tasks: the backbone's step count is every batch of every task; each new head part joined
    # as a group of its own, and the frozen old parts were left alone (their steps stop with their task)
    steps_per_task = [2 * math.ceil(len(task.x_train) / 32) for task in digits_scenario.tasks]
    state = method.optimizer.state
    first_layer = method.model.backbone.blocks[0][0].weight
    assert float(state[first_layer]["step"]) == sum(steps_per_task)
    assert len(method.optimizer.param_groups) == len(digits_scenario.tasks)
    assert float(state[method.model.head.parts[0].weight]["step"]) == steps_per_task[0]
    # a fresh optimizer per task (the default) gives other numbers
    fresh_each_task = run(fresh("finetune", digits_scenario, "task", seed=5), digits_scenario,
                          TrainConfig(seed=5, **FAST))
    assert fresh_each_task["accuracy_matrix"] != reference["accuracy_matrix"]
    # interrupted after task 2 and resumed: the kept optimizer is restored from the checkpoint
    torch.manual_seed(5)
    with pytest.raises(KeyboardInterrupt):
        run(InterruptedFinetune(build_model(digits_scenario, hidden=(32,)), "task"), digits_scenario, config,
            out_dir=tmp_path)
    resumed = run(fresh("finetune", digits_scenario, "task", seed=5), digits_scenario, config, out_dir=tmp_path,
                  resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(reset_optimizer=False, schedule="cosine")


@pytest.mark.exact
def test_a_checkpoint_from_before_a_new_training_option_still_resumes(digits_scenario, tmp_path):
    config = TrainConfig(**FAST)
    reference = run(fresh("finetune", digits_scenario, "class"), digits_scenario, config, out_dir=tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    del checkpoint["fingerprint"]["train"]["reset_optimizer"]  # written before the option existed...
    torch.save(checkpoint, tmp_path / "checkpoint.pt")  # ...and before digests: loaded unchecked, as then
    resumed = run(fresh("finetune", digits_scenario, "class"), digits_scenario, config, out_dir=tmp_path,
                  resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    with pytest.raises(ConfigError, match="reset_optimizer|train"):  # but not as if it had run with another value
        run(fresh("finetune", digits_scenario, "class"), digits_scenario,
            TrainConfig(**FAST, reset_optimizer=False), out_dir=tmp_path, resume=True)


def test_a_preallocated_head_leaves_unseen_classes_out_until_their_task(digits_scenario):
    config = TrainConfig(**{**FAST, "epochs": 1})
    two_tasks = make_scenario("split-digits", n_tasks=5)
    two_tasks.tasks = two_tasks.tasks[:2]
    results = run_experiment("l2", two_tasks, "class", hidden=(32,), config=config, preallocate_head=True,
                             method_options={"strength": 100.0})
    assert results["config"]["extra"]["preallocate_head"] is True
    torch.manual_seed(0)
    method = build_method("l2", build_model(digits_scenario, hidden=(32,)), "class", {"strength": 100.0})
    method.model.head.add(10)  # every class's output from the start
    first = digits_scenario.tasks[0]
    method.before_task(first)
    assert method.model.head.out_features == 10  # not grown again
    x, targets, task_ids = (t[:16] for t in method.training_data(first))
    logits = method.model(x)
    loss = method.classification_loss(logits, targets, task_ids)
    # the unseen classes' outputs are not in the loss, nor in the prediction
    shifted = logits.clone()
    shifted[:, 2:] += 100.0
    assert method.classification_loss(shifted, targets, task_ids).item() == pytest.approx(loss.item())
    assert loss.item() == pytest.approx(F.cross_entropy(logits[:, :2], targets).item(), rel=1e-6)
    assert method.predict(x).shape == (16, 2)
    method.after_task(first)
    # the snapshot holds the unseen classes' rows too: L2 (Omega = 1) pins them where they started
    head = method.model.head.parts[0].weight
    with torch.no_grad():
        head[9] += 0.5
    assert method.penalty().item() == pytest.approx(0.25 * head.shape[1], rel=1e-5)
    with pytest.raises(ConfigError, match="class-incremental"):
        run_experiment("l2", two_tasks, "task", hidden=(32,), config=config, preallocate_head=True)


def test_mammoths_head_puts_every_output_in_the_loss_and_the_prediction_from_the_first_task(tmp_path):
    """preallocate_head="all": the loss is the cross-entropy over every output from the first task (the classes to
    come pushed down), the prediction over all of them; a saved learner keeps it; a bad value is refused."""
    config = TrainConfig(**{**FAST, "epochs": 1})
    two_tasks = make_scenario("split-digits", n_tasks=5)
    two_tasks.tasks = two_tasks.tasks[:2]
    results, learner = run_experiment("finetune", two_tasks, "class", hidden=(32,), config=config,
                                      preallocate_head="all", return_learner=True)
    assert results["config"]["extra"]["preallocate_head"] == "all"
    method = learner.method
    assert method.every_output and method.model.head.out_features == 4  # two tasks of two digits
    first = two_tasks.tasks[0]
    method._restore_tasks([first])  # as during the first task: two classes seen, four outputs
    x, targets, task_ids = (t[:16] for t in method.training_data(first))
    logits = method.model(x)
    assert method.classification_loss(logits, targets, task_ids).item() == pytest.approx(
        F.cross_entropy(logits, targets).item(), rel=1e-6)  # every output, not the two seen first
    shifted = logits.clone()
    shifted[:, 2:] += 100.0  # the classes to come: in the loss
    assert method.classification_loss(shifted, targets, task_ids).item() > 50
    assert method.predict(x).shape == (16, 4)
    learner.save(tmp_path / "learner.pt")
    assert Learner.load(tmp_path / "learner.pt").method.every_output
    with pytest.raises(ConfigError, match="preallocate_head is False, True .* or 'all'"):
        run_experiment("finetune", two_tasks, "class", hidden=(32,), config=config, preallocate_head="every")


def test_what_cannot_train_is_refused_before_any_training(digits_scenario):
    """A task with no training samples, and a head warm-up or feature extraction with a head that holds every
    class in one part (there is no new part to train alone), are clear errors before the first task starts."""
    config = TrainConfig(**{**FAST, "epochs": 1})
    two_tasks = make_scenario("split-digits", n_tasks=5)
    two_tasks.tasks = two_tasks.tasks[:2]
    second = two_tasks.tasks[1]
    second.x_train, second.y_train = second.x_train[:0], second.y_train[:0]
    with pytest.raises(ConfigError, match="task\\(s\\) 2 of split-digits have no training samples"):
        run_experiment("lwf", two_tasks, "class", hidden=(16,), config=config)
    with pytest.raises(ConfigError, match="no new part to train alone"):
        run_experiment("feature-extraction", digits_scenario, "class", hidden=(16,), config=config,
                       preallocate_head=True)
    with pytest.raises(ConfigError, match="no new part to train alone"):
        run_experiment("lwf", digits_scenario, "class", hidden=(16,), config=replace(config, warmup_epochs=1),
                       preallocate_head=True)


def test_a_damaged_checkpoint_a_changed_option_and_bad_schedules_are_clear_errors(digits_scenario, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 1})
    two_tasks = make_scenario("split-digits", n_tasks=5)
    two_tasks.tasks = two_tasks.tasks[:2]
    run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path)
    assert (tmp_path / "results.json").stat().st_mode & 0o044  # readable by others, as an ordinary file
    with pytest.raises(ConfigError, match="lr 0.005 then, 0.0123 now"):  # which option, and both values
        run_experiment("finetune", two_tasks, "class", hidden=(16,), config=replace(config, lr=0.0123),
                       out_dir=tmp_path, resume=True)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(DataError, match="checkpoint.pt cannot be read .* it is damaged"):
        run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="gamma must be > 0"):
        TrainConfig(schedule="step", gamma=-1.0)
    with pytest.raises(ConfigError, match="milestones are fractions"):
        TrainConfig(schedule="step", milestones=(0.5, 2.0))
    with pytest.raises(ConfigError, match="bad training option"):
        run_experiment("finetune", two_tasks, "class", config=config, epoch=1)


class _CreatesAFile:
    """Unpickling this calls pathlib.Path.touch: what a crafted checkpoint can do with plain pickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def test_a_crafted_checkpoint_is_refused_without_running_its_code(digits_scenario, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 1})
    two_tasks = make_scenario("split-digits", n_tasks=5)
    two_tasks.tasks = two_tasks.tasks[:2]
    run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")  # what lifelong writes loads safely
    witness = tmp_path / "code-ran"
    checkpoint["history"]["payload"] = _CreatesAFile(witness)
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(DataError, match="could run code, so it was not loaded"):
        run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path, resume=True)
    assert not witness.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)  # the same file unpickled the old way runs it
    assert witness.exists()
