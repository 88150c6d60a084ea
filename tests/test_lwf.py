import pytest
import torch

from lifelong.distillation import distillation_loss
from lifelong.engine import TrainConfig, run
from lifelong.training import train_task
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model
from lifelong.benchmarks import make_scenario

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)


@pytest.fixture(scope="module")
def scenario():
    return make_scenario("split-digits")


def lwf(scenario, setting="task", **options):
    torch.manual_seed(0)
    return build_method("lwf", build_model(scenario, hidden=(32,)), setting, options)


def learn(method, task, scenario, **config):
    method.before_task(task)
    train_task(method, task, scenario, TrainConfig(**{**FAST, **config}), torch.Generator().manual_seed(0))
    method.after_task(task)


def test_old_responses_are_recorded_once_before_training_and_the_old_model_dropped(scenario):
    method = lwf(scenario)
    first, second = scenario.tasks[:2]
    learn(method, first, scenario)
    expected = method.model.eval()(second.x_train).detach()  # theta_s, theta_o before the new task
    method.before_task(second)
    x, targets, task_ids, head_targets = method.training_data(second)
    assert torch.allclose(method.recorded, expected, atol=1e-6) and method.recorded.shape == (len(x), 2)
    old_targets = method.old_targets
    torch.testing.assert_close(old_targets, torch.softmax(expected / 2, 1))  # soft targets at T = 2, made once
    assert method.old_model is None  # Y_o replaces the old model: no second network in memory
    method.training_data(second)
    assert method.old_targets is old_targets  # recorded once, not again per call
    # task setting, heads of one size: per (sample, head) row, the old head's soft targets, then the new label
    assert head_targets.shape == (len(x), 2, 2)
    torch.testing.assert_close(head_targets[:, 0], old_targets)
    torch.testing.assert_close(head_targets[:, 1], torch.nn.functional.one_hot(targets - 2, 2).float())


@pytest.mark.parametrize("weighting", ["li-hoiem", "van-de-ven"])
def test_per_head_loss_is_the_two_terms_computed_apart(scenario, weighting):
    method = lwf(scenario, **({"lamb": 0.7} if weighting == "li-hoiem" else {}), weighting=weighting)
    for task in scenario.tasks[:2]:
        learn(method, task, scenario, epochs=1)
    method.before_task(scenario.tasks[2])  # t = 3, two old heads
    assert method.per_head
    x, targets, task_ids, head_targets = (t[:8] for t in method.training_data(scenario.tasks[2]))
    logits = method.model(x)
    new = torch.nn.functional.cross_entropy(logits[:, 4:6], targets - 4)  # the new head's own outputs
    old = sum(distillation_loss(logits[:, a:a + 2], method.recorded[:8, a:a + 2], 2.0, t2_scaling=False)
              for a in (0, 2))  # summed over the old heads, at T = 2
    expected = new + 0.7 * old if weighting == "li-hoiem" else new / 3 + (2 / 3) * 4 * old / 2
    got = method.loss(x, targets, task_ids, head_targets)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # and the same gradient for every parameter
    grads = torch.autograd.grad(got, list(method.model.parameters()))
    for g, e in zip(grads, torch.autograd.grad(expected, list(method.model.parameters()))):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_task_incremental_old_loss_sums_each_old_heads_distillation(scenario):
    method = lwf(scenario)
    for task in scenario.tasks[:2]:
        learn(method, task, scenario, epochs=1)
    method.before_task(scenario.tasks[2])
    logits, recorded = torch.randn(5, 6), torch.randn(5, 4)
    expected = (distillation_loss(logits[:, 0:2], recorded[:, 0:2], 2.0, t2_scaling=False)
                + distillation_loss(logits[:, 2:4], recorded[:, 2:4], 2.0, t2_scaling=False))
    old_targets = method.soft_targets(recorded)  # one softmax per old head
    torch.testing.assert_close(old_targets[:, 2:4], torch.softmax(recorded[:, 2:4] / 2, 1))
    assert method.old_task_loss(logits, old_targets).item() == pytest.approx(expected.item())
    # by hand for one sample: -sum_i p_i log q_i with p = softmax(v/2), q = softmax(z/2)
    p = torch.softmax(recorded[:1, :2] / 2, 1)
    q = torch.softmax(logits[:1, :2] / 2, 1)
    assert distillation_loss(logits[:1, :2], recorded[:1, :2], 2.0, t2_scaling=False).item() == \
        pytest.approx(-(p * q.log()).sum().item(), rel=1e-5)


def test_class_incremental_distils_all_old_logits_as_one_distribution(scenario):
    method = lwf(scenario, "class", lamb=0.5)
    learn(method, scenario.tasks[0], scenario, epochs=1)
    learn(method, scenario.tasks[1], scenario, epochs=1)
    method.before_task(scenario.tasks[2])
    x, targets, task_ids, old_targets = method.training_data(scenario.tasks[2])
    recorded = method.recorded
    assert recorded.shape[1] == 4
    logits = method.model(x[:8])
    loss = method.loss(x[:8], targets[:8], task_ids[:8], old_targets[:8])
    expected = (torch.nn.functional.cross_entropy(logits, targets[:8])
                + 0.5 * distillation_loss(logits[:, :4], recorded[:8], 2.0, t2_scaling=False))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_with_augmented_inputs_the_old_model_sees_each_batch(scenario):
    method = lwf(scenario, "class")
    learn(method, scenario.tasks[0], scenario, epochs=1)
    method.augmented_inputs = True
    method.before_task(scenario.tasks[1])
    data = method.training_data(scenario.tasks[1])
    assert len(data) == 3 and method.old_model is not None
    x = data[0][:4]
    with torch.no_grad():
        old = method.old_model(x)
    assert old.shape == (4, 2)
    expected = method.classification_loss(method.model(x), data[1][:4], data[2][:4]) + \
        distillation_loss(method.model(x)[:, :2], old, 2.0, t2_scaling=False)
    assert method.loss(x, data[1][:4], data[2][:4]).item() == pytest.approx(expected.item(), rel=1e-5)


def test_lwf_trains_old_heads_and_warm_up_trains_only_the_new_head(scenario):
    method = lwf(scenario)
    learn(method, scenario.tasks[0], scenario)
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    method.before_task(scenario.tasks[1])
    from lifelong.training import warm_up_head
    config = TrainConfig(**{**FAST, "warmup_epochs": 2})
    warm_up_head(method, scenario.tasks[1], method.training_data(scenario.tasks[1]), scenario, config,
                 torch.Generator().manual_seed(0))
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set() and any(not torch.equal(p, torch.zeros_like(p)) for p in method.new_head_parameters())
    new_part_before = [p.clone() for p in method.new_head_parameters()]
    # warm-up moved theta_n; then the main phase trains theta_s and theta_o too
    assert all(p.requires_grad for p in method.model.parameters())
    train_task(method, scenario.tasks[1], scenario, TrainConfig(**FAST), torch.Generator().manual_seed(1))
    after = method.model.state_dict()
    assert not torch.equal(before["head.parts.0.weight"], after["head.parts.0.weight"])
    assert not torch.equal(new_part_before[0], method.new_head_parameters()[0])


def test_lwf_forgets_less_than_finetuning_on_task_incremental_permuted_digits():
    from lifelong.data import load_digits
    from lifelong.scenarios import permuted
    scenario = permuted(load_digits(), 4, seed=0)
    config = TrainConfig(epochs=5, batch_size=32, lr=0.002, optimizer="adam", progress=False)
    results = {}
    for name in ("finetune", "lwf"):
        torch.manual_seed(0)
        method = build_method(name, build_model(scenario, hidden=(64,)), "domain")
        results[name] = run(method, scenario, config)
    assert results["lwf"]["final_forgetting"] < results["finetune"]["final_forgetting"]


@pytest.mark.parametrize("options, message", [(dict(temperature=0), "temperature"), (dict(lamb=-1), "lamb"),
                                              (dict(temperature=-2.0), "temperature"),
                                              (dict(lamb=2.0, weighting="van-de-ven"), "lamb=2.0 has no effect")])
def test_bad_values(scenario, options, message):
    with pytest.raises(ConfigError, match=message):
        lwf(scenario, **options)


def test_distilling_without_a_previous_task_is_a_clear_error(scenario):
    method = lwf(scenario)
    method.before_task(scenario.tasks[0])
    with pytest.raises(ConfigError, match="no previous task"):
        method.old_task_loss(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="no previous task"):
        method.soft_targets(torch.zeros(2, 2))


def test_old_loss_with_heads_of_different_sizes(scenario):
    method = lwf(scenario)
    method.sizes, method.offsets = [2, 3, 2], [0, 2, 5]  # two old heads of 2 and 3 outputs, a new one of 2
    logits, recorded = torch.randn(4, 7), torch.randn(4, 5)
    expected = (distillation_loss(logits[:, :2], recorded[:, :2], 2.0, t2_scaling=False)
                + distillation_loss(logits[:, 2:5], recorded[:, 2:5], 2.0, t2_scaling=False))
    assert method.old_task_loss(logits, method.soft_targets(recorded)).item() == pytest.approx(expected.item(), rel=1e-6)


def test_van_de_ven_weighting_balances_by_the_number_of_tasks(scenario):
    method = lwf(scenario, "class", weighting="van-de-ven")
    for task in scenario.tasks[:2]:
        learn(method, task, scenario, epochs=1)
    method.before_task(scenario.tasks[2])  # t = 3 tasks so far
    x, targets, task_ids, old_targets = method.training_data(scenario.tasks[2])
    logits = method.model(x[:8])
    new = torch.nn.functional.cross_entropy(logits, targets[:8])
    old = 4 * distillation_loss(logits[:, :4], method.recorded[:8], 2.0, t2_scaling=False)
    expected = new / 3 + (2 / 3) * old
    assert method.loss(x[:8], targets[:8], task_ids[:8], old_targets[:8]).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="weighting"):
        lwf(scenario, weighting="hinton")


def test_all_classes_distillation_gives_the_new_classes_target_zero(scenario):
    method = lwf(scenario, "class", class_distillation="all-classes")
    method.sizes, method.offsets = [2, 2, 2], [0, 2, 4]  # 4 old classes, 2 new
    logits, recorded = torch.randn(5, 6, requires_grad=True), torch.randn(5, 4)
    # by hand: p = softmax(recorded / T) over the 4 old classes and 0 for the 2 new; q = softmax(logits / T) over 6
    p = torch.softmax(recorded / 2, 1)
    log_q = torch.log_softmax(logits / 2, 1)
    expected = -(p * log_q[:, :4]).sum(1).mean()
    old_targets = method.soft_targets(recorded)
    assert old_targets.shape == (5, 6) and torch.all(old_targets[:, 4:] == 0)
    loss = method.old_task_loss(logits, old_targets)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # unlike the old-classes form, it pushes the new classes' logits down (their gradient is q_j / T / batch > 0)
    loss.backward()
    q = torch.softmax(logits.detach() / 2, 1)
    torch.testing.assert_close(logits.grad[:, 4:], q[:, 4:] / 2 / 5)
    old_only = lwf(scenario, "class")
    old_only.sizes, old_only.offsets = method.sizes, method.offsets
    logits.grad = None
    old_only.old_task_loss(logits, old_only.soft_targets(recorded)).backward()
    assert torch.all(logits.grad[:, 4:] == 0)


def test_all_classes_distillation_is_only_for_the_class_setting(scenario):
    for setting in ("task", "domain"):
        with pytest.raises(ConfigError, match="class-incremental"):
            lwf(scenario, setting, class_distillation="all-classes")
    with pytest.raises(ConfigError, match="class_distillation"):
        lwf(scenario, "class", class_distillation="new")


def snapshot(parameters):
    return [p.detach().clone() for p in parameters]


@pytest.mark.parametrize("warmup", [True, False])
def test_the_papers_warm_up_moves_the_new_head_alone_before_joint_training(scenario, warmup):
    """Li & Hoiem: theta_n is trained first with theta_s and theta_o frozen (on by default); `warmup=False` skips it.
    Seen from inside: at the first step of joint training the new head has moved and nothing else has."""
    method = lwf(scenario, warmup=warmup)
    learn(method, scenario.tasks[0], scenario)
    shared_before = snapshot(method.model.backbone.parameters())
    method.before_task(scenario.tasks[1])
    head_initial = snapshot(method.new_head_parameters())
    at_joint_start = {}
    loss = method.loss

    def spy(*batch):
        if not at_joint_start:
            at_joint_start["head"] = snapshot(method.new_head_parameters())
            at_joint_start["shared"] = snapshot(method.model.backbone.parameters())
        return loss(*batch)

    method.loss = spy
    train_task(method, scenario.tasks[1], scenario, TrainConfig(**FAST), torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(at_joint_start["shared"], shared_before))
    head_moved = any(not torch.equal(a, b) for a, b in zip(at_joint_start["head"], head_initial))
    assert head_moved == warmup


def test_old_responses_are_recorded_in_evaluation_mode_even_with_dropout(scenario):
    """Y_o is what the old network answers, not one random dropout mask of it."""
    torch.manual_seed(0)
    method = build_method("lwf", build_model(scenario, hidden=(64,), dropout=0.5), "task", {})
    learn(method, scenario.tasks[0], scenario)
    second = scenario.tasks[1]
    expected = method.model.eval()(second.x_train).detach()
    method.train_mode()  # as the engine leaves the model after training
    method.before_task(second)
    # equal up to rounding (recorded in batches of 1,024; a dropout mask would change them by far more)
    assert torch.allclose(method.recorded, expected, rtol=1e-5, atol=1e-6)
