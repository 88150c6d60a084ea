"""FACT (Zhou et al., CVPR 2022): each base-session loss against a hand computation or a per-sample loop, the
virtual-class mask, the prediction mixed with the virtual prototypes against a loop, the sessions that train
nothing, a save/load round trip, and end-to-end runs (a tiny few-shot scenario, the reproduction on tiny archives
in the official formats)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_few_shot import few_shot_scenario

from lifelong import few_shot
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.learner import Learner
from lifelong.methods.fact import split_backbone
from lifelong.models import MLP, ContinualModel, resnet20


def fact_on(scenario, hidden=(16, 8), **options):
    """FACT on a small MLP, shown `scenario` and ready for its base session."""
    torch.manual_seed(0)
    method = build_method("fact", build_model(scenario, hidden=hidden), "class", options)
    method.check(scenario)
    method.before_task(scenario.tasks[0])
    return method


def learned(scenario, epochs=6, **options):
    learner = Learner("fact", "mlp", "class", hidden=(32,), seed=0, epochs=epochs, batch_size=32, lr=0.01,
                      incremental_epochs=3, progress=False, **options)
    learner.build(scenario.tasks[0].x_train)
    learner.method.check(scenario)
    for task in scenario.tasks:
        learner.learn_task(task, scenario)
    return learner


def test_the_head_has_a_virtual_row_for_each_class_to_come_and_each_is_allowed_for_three_base_classes():
    scenario = few_shot_scenario()  # 6 base classes, then 2 sessions of 2: 4 virtual classes
    method = fact_on(scenario)
    assert method.model.head.sizes == [6, 4] and method.n_base == 6
    assert method.mask.shape == (6, 4) and method.mask.dtype == torch.bool
    assert method.mask.sum(0).tolist() == [3, 3, 3, 3]  # each virtual class: 3 base classes (masknum)
    w = method.head_weight()
    assert torch.allclose(w.T @ w, torch.eye(w.shape[1]), atol=1e-5)  # orthogonal (10 rows, 8 features: columns)
    assert fact_on(scenario, mask_classes=5).mask.sum(0).tolist() == [5, 5, 5, 5]


def test_l2_targets_the_best_allowed_virtual_class_even_where_every_allowed_cosine_is_negative():
    """3 base classes, 3 virtual; class 0 may go to virtual classes 0 and 2. Logits (base | virtual) =
    (2, 1, 0 | -1, -0.5, -2), label 0: the allowed virtual logits are -1 and -2, so v* = virtual 0 = output 3. (The
    official 0/1 product makes the forbidden virtual 1 a 0, which beats -1: output 4.) L2 = CE of
    (-inf, 1, 0, -1, -0.5, -2) towards output 3 = 1 + log(e^1 + e^0 + e^-1 + e^-0.5 + e^-2)."""
    method = fact_on(few_shot_scenario())
    method.sizes, method.offsets = [3], [0]
    method.mask = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -0.5, -2.0]])
    target = torch.tensor([0])
    assert method.virtual_target(logits, target).tolist() == [3]
    masked = method.masked(logits, target)
    assert masked[0, 0] == float("-inf") and torch.equal(masked[0, 1:], logits[0, 1:])
    expected = 1 + math.log(math.exp(1) + math.exp(0) + math.exp(-1) + math.exp(-0.5) + math.exp(-2))
    assert F.cross_entropy(masked, method.virtual_target(logits, target)).item() == pytest.approx(expected, rel=1e-6)
    # label 1: only virtual 1 is allowed, whatever the others
    assert method.virtual_target(logits, torch.tensor([1])).tolist() == [4]


def test_the_mixup_losses_target_the_best_virtual_then_the_best_base_class():
    """Mixed logits (base | virtual) = (0.5, 3, 1 | 2, -1, 4): L3 = CE towards output 5 (virtual 2) =
    -4 + log(sum e^z); L4 masks output 5 and targets the best base class, output 1: -3 + log(sum e^z without e^4)."""
    method = fact_on(few_shot_scenario())
    method.sizes, method.offsets = [3], [0]
    z = torch.tensor([[0.5, 3.0, 1.0, 2.0, -1.0, 4.0]])
    l3, l4 = method.mixup_losses(z)
    total = sum(math.exp(v) for v in z[0].tolist())
    assert l3.item() == pytest.approx(-4 + math.log(total), rel=1e-6)
    assert l4.item() == pytest.approx(-3 + math.log(total - math.exp(4)), rel=1e-6)
    empty = method.mixup_losses(z[:0])  # no pair of different classes in the batch: no mixed instance, no loss
    assert empty[0].item() == 0 and empty[1].item() == 0


def test_the_base_loss_is_the_papers_four_terms_computed_sample_by_sample():
    """`losses` for a fixed lambda and pairing against each term written as a loop over the samples, and the
    gradient of L1 + L2 reaches no virtual row (the official frozen view) while L3 + L4 reach them."""
    scenario = few_shot_scenario()
    method = fact_on(scenario)
    task = scenario.tasks[0]
    pick = torch.cat([torch.nonzero(task.y_train == c).flatten()[:2] for c in range(6)])  # 2 of each class
    x, y = task.x_train[pick], task.y_train[pick]
    order = torch.arange(1, 13) % 12  # sample i mixed with i + 1: half the pairs of one class, left out
    lam = 0.3
    method.model.train()
    terms = method.losses(x, y, lam, order)
    method.model.eval()  # the MLP has no batch norm: the same features in either mode
    g1, g2 = method.lower, method.upper
    w = method.head_weight().detach()
    B, s = 6, method.scale

    def cos_logits(f):
        return [s * float(F.cosine_similarity(f, w[c], dim=0)) for c in range(len(w))]

    def ce(logits, target):
        finite = [v for v in logits if v != float("-inf")]
        return -logits[target] + math.log(sum(math.exp(v) for v in finite))

    l1, l2, l3, l4, n_mixed = 0.0, 0.0, 0.0, 0.0, 0
    with torch.no_grad():
        for i in range(len(y)):
            z = cos_logits(g2(g1(x[i:i + 1]))[0])
            label = int(y[i])
            l1 += ce(z[:B], label) / len(y)
            allowed = [v for v in range(len(w) - B) if method.mask[label, v]]
            best = B + max(allowed, key=lambda v: z[B + v])
            l2 += ce([float("-inf") if c == label else z[c] for c in range(len(z))], best) / len(y)
            j = int(order[i])
            if int(y[j]) != label:
                n_mixed += 1
                m = cos_logits(g2(lam * g1(x[i:i + 1]) + (1 - lam) * g1(x[j:j + 1]))[0])
                v = B + max(range(len(w) - B), key=lambda k: m[B + k])
                b = max(range(B), key=lambda k: m[k])
                l3 += ce(m, v)
                l4 += ce([float("-inf") if c == v else m[c] for c in range(len(m))], b)
    assert n_mixed == 6
    for name, value in (("L1", l1), ("L2", l2), ("L3", l3 / n_mixed), ("L4", l4 / n_mixed)):
        assert terms[name].item() == pytest.approx(value, rel=1e-4), name
    virtual = method.model.head.parts[1].weight
    (terms["L1"] + terms["L2"]).backward(retain_graph=True)
    assert virtual.grad is None or not virtual.grad.any()
    (terms["L3"] + terms["L4"]).backward()
    assert virtual.grad.abs().sum() > 0


def test_the_loss_is_l1_plus_balance_times_the_rest_and_l1_alone_before_loss_iter():
    scenario = few_shot_scenario()
    method = fact_on(scenario, balance=0.5, loss_iter=2)
    x, y = scenario.tasks[0].x_train[::20][:16], scenario.tasks[0].y_train[::20][:16]
    assert len(set(y.tolist())) > 1
    method.model.eval()
    torch.manual_seed(3)
    method.before_epoch(2, 5)
    total = method.loss(x, y, None)
    torch.manual_seed(3)
    lam = torch.distributions.Beta(0.5, 0.5).sample().item()
    terms = method.losses(x, y, lam, torch.randperm(16))
    assert total.item() == pytest.approx((terms["L1"] + 0.5 * (terms["L2"] + terms["L3"] + terms["L4"])).item(),
                                         rel=1e-5)
    method.before_epoch(1, 5)
    assert method.loss(x, y, None).item() == pytest.approx(terms["L1"].item(), rel=1e-5)


@pytest.mark.parametrize("backbone, mix_at, where", [
    (lambda: MLP(64, (16, 8, 4)), None, 1), (lambda: MLP(64, (16, 8)), 2, 2), (lambda: resnet20(1), None, 3),
    (lambda: resnet20(1), 0, 0)])
def test_the_backbone_splits_where_asked_and_its_halves_compose_to_it(backbone, mix_at, where):
    torch.manual_seed(0)
    net = backbone().eval()
    g1, g2, at = split_backbone(net, mix_at)
    x = torch.randn(3, 1, 8, 8)
    assert at == where
    torch.testing.assert_close(g2(g1(x)), net(x))
    if isinstance(net, MLP) and at:
        assert g1(x).shape[1] == net.blocks[at - 1][0].out_features


def test_sessions_train_nothing_their_rows_are_the_shot_means_and_base_rows_the_class_means():
    scenario = few_shot_scenario()
    learner = Learner("fact", "mlp", "class", hidden=(32,), seed=0, epochs=4, batch_size=32, lr=0.01,
                      incremental_epochs=3, progress=False)
    learner.build(scenario.tasks[0].x_train)
    method = learner.method
    method.check(scenario)
    learner.learn_task(scenario.tasks[0], scenario)
    frozen = {k: v.clone() for k, v in method.model.state_dict().items()}
    virtual = method.virtual.clone()
    torch.testing.assert_close(virtual, F.normalize(frozen["head.parts.1.weight"], dim=1))
    for task in scenario.tasks[1:]:
        learner.learn_task(task, scenario)
        assert learner.epoch_losses == []  # no step at all
    state = method.model.state_dict()
    for k, v in state.items():
        if k != "head.parts.1.weight":
            assert torch.equal(v, frozen[k]), k
    assert torch.equal(method.virtual, virtual)
    with torch.no_grad():
        w = method.head_weight()
        for task in scenario.tasks:
            f = method.model.eval().features(task.x_train)
            for k in range(task.n_classes):
                torch.testing.assert_close(w[method.offsets[task.id] + k], f[task.y_train == k].mean(0))
    # the rows of no class yet (none here: 6 + 2 + 2 = 10) would stay virtual
    assert w.shape[0] == sum(t.n_classes for t in scenario.tasks)


def test_the_prediction_mixes_the_virtual_prototypes_projection_as_a_loop_computes_it():
    """p(c | x) = eta softmax(sum over the top-k virtual v of cos(x, P_v) M[v, c]) + (1 - eta) softmax(s cos(x, w_c)),
    M[v, c] = sum_d P_v[d] w_c[d] / ||w_.[d]|| (each feature dimension normalised over the classes), written as
    loops; with projection="class", M[v, c] = cos(P_v, w_c)."""
    scenario = few_shot_scenario()
    learner = learned(scenario, top_k=3, eta=0.3)
    method = learner.method
    x = scenario.tasks[2].x_test[:5]
    with torch.no_grad():
        f = method.model.eval().features(x).double()
        w, P = method.head_weight().double(), method.virtual.double()
        C, V, D = len(w), len(P), w.shape[1]
        # F.normalize's floor 1e-12: a feature dimension dead in every class's row divides 0 by it
        column_norm = [max(math.sqrt(sum(float(w[c, d]) ** 2 for c in range(C))), 1e-12) for d in range(D)]
        for projection in ("official", "class"):
            method.projection = projection
            got = method.predict(x).exp()
            if projection == "official":
                M = [[sum(float(P[v, d] * w[c, d]) / column_norm[d] for d in range(D)) for c in range(C)]
                     for v in range(V)]
            else:
                M = [[float(F.cosine_similarity(P[v], w[c], dim=0)) for c in range(C)] for v in range(V)]
            for i in range(len(x)):
                sims = [float(F.cosine_similarity(f[i], P[v], dim=0)) for v in range(V)]
                top = sorted(range(V), key=lambda v: -sims[v])[:3]
                virtual = torch.tensor([sum(sims[v] * M[v][c] for v in top) for c in range(C)])
                cosine = torch.tensor([16 * float(F.cosine_similarity(f[i], w[c], dim=0)) for c in range(C)])
                expected = 0.3 * F.softmax(virtual, 0) + 0.7 * F.softmax(cosine, 0)
                torch.testing.assert_close(got[i].double(), expected.double(), rtol=1e-4, atol=1e-6)
    # the base session alone: the cosine classifier (the official code tests it so)
    base = Learner("fact", "mlp", "class", hidden=(32,), seed=0, epochs=2, batch_size=32, lr=0.01, progress=False)
    base.build(scenario.tasks[0].x_train)
    base.method.check(scenario)
    base.learn_task(scenario.tasks[0], scenario)
    with torch.no_grad():
        m = base.method
        expected = 16 * F.normalize(m.model.eval().features(x), dim=1) @ F.normalize(m.head_weight()[:6], dim=1).T
        torch.testing.assert_close(m.predict(x), expected)


def test_a_saved_learner_loads_and_predicts_the_same(tmp_path):
    scenario = few_shot_scenario()
    learner = learned(scenario)
    x = scenario.tasks[2].x_test
    before = learner.method.predict(x)
    learner.save(tmp_path / "fact.pt")
    loaded = Learner.load(tmp_path / "fact.pt")
    torch.testing.assert_close(loaded.method.predict(x), before)
    assert torch.equal(loaded.method.mask, learner.method.mask)
    assert not any(p.requires_grad for p in loaded.method.model.parameters())


@pytest.mark.exact
def test_a_run_stopped_after_the_base_session_resumes_to_the_uninterrupted_runs_numbers(tmp_path, monkeypatch):
    from lifelong.methods.fact import FACT
    scenario = few_shot_scenario()
    options = dict(seed=0, epochs=3, batch_size=32, lr=0.01, incremental_epochs=1, progress=False, hidden=(32,))
    whole = run_experiment("fact", scenario, "class", **options)
    before_task = FACT.before_task

    def stop_at_session_2(self, task):
        if task.id == 1:
            raise KeyboardInterrupt
        before_task(self, task)

    monkeypatch.setattr(FACT, "before_task", stop_at_session_2)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("fact", scenario, "class", out_dir=tmp_path / "cut", **options)
    monkeypatch.setattr(FACT, "before_task", before_task)
    resumed = run_experiment("fact", scenario, "class", out_dir=tmp_path / "cut", resume=True, **options)
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["method_details"] == whole["method_details"]


def test_a_learner_fed_task_by_task_needs_total_classes():
    scenario = few_shot_scenario()
    learner = Learner("fact", "mlp", "class", hidden=(16,), seed=0, epochs=1, progress=False)
    with pytest.raises(ConfigError, match="needs the total class count up front"):
        learner.learn(scenario.tasks[0])
    from lifelong.scenarios import Scenario
    base_alone = Scenario(name="base", tasks=scenario.tasks[:1], class_order=scenario.class_order[:6],
                          class_names=scenario.class_names, input_shape=scenario.input_shape,
                          input_preparation=scenario.input_preparation, config=scenario.config)
    with pytest.raises(ConfigError, match="needs the total class count up front"):  # no class to reserve for
        run_experiment("fact", base_alone, "class", epochs=1, progress=False, hidden=(16,))
    given = Learner("fact", "mlp", "class", hidden=(16,), seed=0, epochs=1, progress=False, total_classes=10)
    for task in scenario.tasks:
        given.learn(task)
    assert given.method.model.head.out_features == 10 and len(given.method.virtual) == 4


@pytest.mark.parametrize("options, message", [
    ({"balance": -1}, "balance"), ({"alpha": 0}, "alpha"), ({"eta": 1.5}, "eta"), ({"top_k": 0}, "top_k"),
    ({"projection": "rows"}, "unknown FACT projection 'rows'"), ({"mix_at": 5}, "mix_at must be 0"),
    ({"loss_iter": -1}, "loss_iter"), ({"mask_classes": 0}, "mask_classes"), ({"total_classes": 1}, "total_classes"),
    ({"scale": 0}, "scale")])
def test_bad_options_are_refused_in_one_line(options, message):
    scenario = few_shot_scenario()
    with pytest.raises(ConfigError, match=message):
        build_method("fact", build_model(scenario, hidden=(16, 8)), "class", options)


def test_what_the_scenario_cannot_give_is_refused_before_training():
    scenario = few_shot_scenario()
    with pytest.raises(ConfigError, match="mask_classes=7, but the base session has 6 classes"):
        build_method("fact", build_model(scenario, hidden=(16,)), "class", {"mask_classes": 7}).check(scenario)
    with pytest.raises(ConfigError, match="total_classes=8, but the scenario has 10 classes"):
        build_method("fact", build_model(scenario, hidden=(16,)), "class", {"total_classes": 8}).check(scenario)
    custom = ContinualModel(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8)), 8)
    with pytest.raises(ConfigError, match="cannot split a Sequential.*mix_at=0"):
        build_method("fact", custom, "class", {})
    assert build_method("fact", custom, "class", {"mix_at": 0}).mix_at == 0  # input mixup: any backbone
    with pytest.raises(ConfigError, match="leave preallocate_head off"):
        run_experiment("fact", scenario, "class", epochs=1, preallocate_head=True, progress=False, hidden=(16,))


def test_fact_runs_end_to_end_from_the_command_line(shared_data, tmp_path):
    """`lifelong run --method fact` on fscil-omniglot (60 base characters, 8 sessions of 5-way 5-shot), 1 epoch."""
    import json
    from lifelong.cli import main
    out = tmp_path / "run"
    assert main(["run", "--method", "fact", "--scenario", "fscil-omniglot", "--data-dir", str(shared_data),
                 "--epochs", "1", "--param", "top_k=20", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["accuracy_seen_classes"]) == 9 and results["accuracy_seen_classes"][-1] > 0.2
    assert results["method_details"]["virtual_classes"] == 40 and results["method_details"]["top_k"] == 20
    assert all(loss == [] for loss in results["epoch_loss"][1:])  # the sessions train nothing


@pytest.mark.parametrize("name, key", [("fscil-mini-imagenet", "mini-imagenet"), ("fscil-cub200", "cub200")])
def test_facts_reproductions_run_end_to_end_on_tiny_archives_in_the_official_layouts(name, key, tmp_path, monkeypatch,
                                                                                     capsys):
    """`lifelong reproduce fscil-mini-imagenet` / `fscil-cub200` on tiny copies in the official layouts (the real
    lists cut to 2 base classes of 2 images, then 2 classes, then 1: `test_fscil_data.short_lists`), FACT's row
    beside the paper's."""
    from test_fscil_data import PROTOCOLS, expected_sessions, short_lists
    from lifelong.cli import main
    from lifelong.reproduce_steps import FSCIL_FACT_ROWS
    protocol = PROTOCOLS[name]
    lists = short_lists(protocol)
    expected_sessions(name, tmp_path / "data", lists, np.random.default_rng(1))
    monkeypatch.setattr(few_shot, "read_index_lists", lambda p: lists if p == protocol else None)
    # 2 base classes: each virtual class allowed for both; the virtual losses from the first epoch
    monkeypatch.setitem(FSCIL_FACT_ROWS[key]["fact"][2], "mask_classes", 2)
    monkeypatch.setitem(FSCIL_FACT_ROWS[key]["fact"][2], "loss_iter", 0)
    out = tmp_path / "out"
    assert main(["reproduce", name, "--data-dir", str(tmp_path / "data"), "--no-download", "--epochs", "1",
                 "--seeds", "1", "--methods", "prototype,fact", "--out", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    last = {"fscil-mini-imagenet": "50.49", "fscil-cub200": "56.94"}[name]
    assert "(paper) |" in table and f"| {last} |" in table and "(ours, n=1)" in table
    import json
    run = json.loads((out / f"{name.replace('-', '_')}_runs" / "fact_0.json").read_text())
    assert run["classes_seen"] == [2, 4, 5] and run["train"]["extra"]["backbone"] == "resnet20"
    assert run["method_details"]["virtual_classes"] == 3 and run["method_options"]["balance"] == 0.01
