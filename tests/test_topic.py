"""TOPIC faithful to its topology (lifelong.methods.topic): the anchor loss against the anchors' features at the
session's start, its bounded inverse-variance weights, the min-max loss along the competitive Hebbian edges with the
new nodes learned, the ablation switches, and a save/load round trip; each against a hand computation or a loop."""

import pytest
import torch
import torch.nn.functional as F
from test_few_shot import few_shot_scenario, learner_over

from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model


def base_learned(**options):
    scenario = few_shot_scenario()
    learner = learner_over("topic", scenario, nodes=40, **options)
    learner.learn_task(scenario.tasks[0], scenario)
    return scenario, learner, learner.method


def session_started(**options):
    """The base session learned and the first few-shot session begun (its nodes inserted, its anchors recorded)."""
    scenario, learner, method = base_learned(**options)
    method.before_task(scenario.tasks[1])
    method.train_mode()
    return scenario, learner, method


def test_the_anchor_loss_is_zero_at_the_sessions_start_and_grows_as_the_features_move():
    scenario, learner, method = session_started()
    assert float(method.anchor_term().detach()) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():  # move the network
        first = next(p for p in method.model.parameters() if p.ndim == 2)
        first.add_(0.05 * torch.randn(first.shape, generator=torch.Generator().manual_seed(0)))
    moved = float(method.anchor_term().detach())
    assert moved > 1e-3
    # the same as a loop over nodes and dimensions: (f_d(z_j) - a_jd)^2 / max(Lambda_jd, floor), averaged
    method.model.eval()
    with torch.no_grad():
        total, count = 0.0, 0
        for j in range(method.n_old):
            fz = F.normalize(method.model.features(method.anchors[j:j + 1]), dim=1)[0]
            for d in range(len(fz)):
                total += float((fz[d] - method.anchor_start[j, d]) ** 2 / max(float(method.variances[j, d]),
                                                                                method.floor))
                count += 1
    assert moved == pytest.approx(total / count, rel=1e-4)


def test_the_centroid_target_is_the_literal_equation_and_not_zero_at_the_start():
    scenario, learner, method = session_started(anchor_target="centroid")
    with torch.no_grad():
        f = method.embed_all(method.anchors[:method.n_old])
        expected = ((f - method.centroids[:method.n_old]) ** 2 * method.weights()[:method.n_old]).mean()
    assert float(method.anchor_term().detach()) == pytest.approx(float(expected), rel=1e-5) and float(expected) > 0


@pytest.mark.parametrize("floor", ["mean", "median"])
def test_the_variance_floor_comes_from_the_nodes_and_bounds_every_weight(floor):
    scenario, learner, method = base_learned(variance_floor=floor)
    base = scenario.tasks[0]
    f = method.embed_all(base.x_train)
    nearest = torch.cdist(f, method.centroids).argmin(1)
    known, single = [], []
    for j in range(method.n_old):  # the nodes of the gas, each with its members of its label
        members = (nearest == j) & (base.y_train == method.labels[j])
        if members.sum() > 1:
            known.append(f[members].var(0, unbiased=False))
        elif members.sum() == 1:
            single.append(j)
    known = torch.stack(known)
    expected = known.mean() if floor == "mean" else known.median()
    assert method.floor == pytest.approx(float(expected), rel=1e-4) and method.floor > 1e-5
    assert float(method.weights().max()) <= 1 / method.floor * (1 + 1e-6)
    for j in single:  # a node of one member has no variance of its own: the floor's
        assert torch.allclose(method.variances[j], torch.full_like(method.variances[j], method.floor))


def hand_made_graph(**options):
    """Two old nodes A (0, 0) label 0 and B (0.3, 0.2) label 1, a new node N (0.3, 0) label 2, one edge N-A."""
    scenario = few_shot_scenario()
    method = build_method("topic", build_model(scenario, hidden=(8,)), "class", {"margin": 0.5, **options})
    method.centroids = torch.tensor([[0.0, 0.0], [0.3, 0.2], [0.3, 0.0]])
    method.labels = torch.tensor([0, 1, 2])
    method.ages = torch.full((3, 3), float("inf"))
    method.ages[0, 2] = method.ages[2, 0] = 0
    method.n_old = 2
    method.node_params = method.centroids[2:].clone().requires_grad_(True)
    shots = torch.tensor([[0.3, 0.1], [0.3, -0.1]])  # each 0.1 from N: the min term (0.01 + 0.01) / 2
    return method, shots, torch.tensor([2, 2])


def test_the_max_term_acts_along_the_edges_of_a_hand_made_graph():
    method, shots, targets = hand_made_graph()
    # N-A is an edge, 0.3 apart: (0.5 - 0.3)^2 = 0.04; N-B is 0.2 apart but no edge: nothing
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01 + 0.04, abs=1e-6)
    method.ages[0, 2] = method.ages[2, 0] = float("inf")  # no edge at all: the min term alone
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01, abs=1e-6)
    method.ages[1, 2] = method.ages[2, 1] = 3  # the edge N-B: (0.5 - 0.2)^2 = 0.09
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01 + 0.09, abs=1e-6)


def test_the_max_term_without_edges_pushes_from_the_nearest_other_label_nodes():
    method, shots, targets = hand_made_graph(use_edges=False, neighbours=1)
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01 + 0.09, abs=1e-6)  # B, the nearest
    method.neighbours = 2
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01 + 0.09 + 0.04, abs=1e-6)


def test_the_max_term_on_the_shots_pushes_each_from_its_class_nodes_neighbours():
    method, shots, targets = hand_made_graph(push="shots")
    hinge = (0.5 - (0.3 ** 2 + 0.1 ** 2) ** 0.5) ** 2  # each shot is sqrt(0.1) from A, N's neighbour
    assert float(method.minmax_term(shots, targets).detach()) == pytest.approx(0.01 + hinge, abs=1e-6)


def test_a_step_moves_a_new_node_toward_its_shots_by_sgd_at_node_lr():
    method, shots, targets = hand_made_graph(margin=1e-6, node_lr=0.5)  # the max term off: the min term alone
    with torch.no_grad():
        method.node_params += torch.tensor([[0.2, 0.0]])  # N at (0.5, 0), 0.2 from its shots' mean (0.3, 0)
    before = float((method.node_params[0] - shots.mean(0)).norm().detach())
    method.minmax_term(shots, targets).backward()
    grad = method.node_params.grad.clone()
    start = method.node_params.detach().clone()
    method.before_step()
    # d/dm mean_x |x - m|^2 = 2 (m - mean x) = (0.4, 0): the step 0.5 * (0.4, 0) brings N onto the shots' mean
    assert torch.allclose(grad, torch.tensor([[0.4, 0.0]]), atol=1e-6)
    assert torch.allclose(method.node_params.detach(), start - 0.5 * grad)
    assert torch.equal(method.centroids[2], method.node_params.detach()[0])  # the gas sees the learned node
    assert float((method.node_params[0] - shots.mean(0)).norm().detach()) < before and method.node_params.grad is None


def test_new_nodes_are_inserted_with_competitive_hebbian_edges_and_learned_through_the_session():
    scenario, learner, method = base_learned()
    session = scenario.tasks[1]
    base_edges = torch.isfinite(method.ages).clone()
    learner.method.before_task(session)
    n_old = method.n_old
    f = method.embed_all(session.x_train)
    start = method.centroids[n_old:].clone()
    for v in f:  # competitive Hebbian learning: every shot's two nearest nodes are joined
        first, second = torch.cdist(v[None], method.centroids)[0].argsort()[:2]
        assert torch.isfinite(method.ages[first, second])
    for j in range(n_old, len(method.centroids)):  # and each new node has a neighbour of another label
        neighbours = torch.isfinite(method.ages[j])
        assert (neighbours & (method.labels != method.labels[j])).any()
    # learning the session (learn_task redoes before_task from the base learner's state): the nodes move
    scenario, learner, method = base_learned()
    learner.learn_task(session, scenario)
    assert not torch.allclose(method.centroids[n_old:], start, atol=1e-4)
    assert (torch.isfinite(method.ages[:n_old, :n_old]) >= base_edges[:n_old, :n_old]).all()


def test_the_mean_variant_keeps_new_nodes_at_their_shots_mean():
    scenario, learner, method = base_learned(new_nodes="mean", push="shots")
    session = scenario.tasks[1]
    learner.learn_task(session, scenario)
    f = method.embed_all(session.x_train)
    targets = method.targets(session, session.y_train)
    for j in range(method.n_old - session.n_classes, method.n_old):
        assert torch.allclose(method.centroids[j], f[targets == method.labels[j]].mean(0), atol=1e-5)


@pytest.mark.parametrize("switches, terms", [
    ({}, ("anchor", "minmax")),
    ({"minmax_loss": False}, ("anchor",)),
    ({"anchor_loss": False}, ("minmax",)),
    ({"anchor_loss": False, "minmax_loss": False}, ()),
])
def test_the_ablation_switches_turn_the_terms_off(switches, terms):
    scenario, learner, method = session_started(**switches)
    session = scenario.tasks[1]
    x, targets = session.x_train, method.targets(session, session.y_train)
    with torch.no_grad():
        first = next(p for p in method.model.parameters() if p.ndim == 2)
        first.add_(0.05 * torch.randn(first.shape, generator=torch.Generator().manual_seed(1)))  # AL > 0
        method.node_params += 0.05  # the min term > 0
    loss = float(method.loss(x, targets, torch.full_like(targets, 1)).detach())
    with torch.no_grad():
        expected = float(F.cross_entropy(method.model(x), targets))
        f = F.normalize(method.model.features(x), dim=1)
        parts = {"anchor": float(method.anchor_term().detach()), "minmax": float(method.minmax_term(f, targets))}
    assert parts["anchor"] > 1e-4 and parts["minmax"] > 1e-4
    assert loss == pytest.approx(expected + sum(parts[t] for t in terms), rel=1e-5)


def test_the_head_classifier_is_the_networks_softmax():
    scenario, learner, method = base_learned(classifier="head")
    x = scenario.tasks[0].x_test[:20]
    with torch.no_grad():
        assert torch.equal(method.predict(x), method.model.eval()(x))


def test_a_saved_learner_predicts_the_same_after_loading(tmp_path):
    from lifelong.learner import Learner
    scenario = few_shot_scenario()
    learner = learner_over("topic", scenario, nodes=40, variance_floor="median")
    for task in scenario.tasks[:2]:
        learner.learn_task(task, scenario)
    learner.save(tmp_path / "topic.pt")
    again = Learner.load(tmp_path / "topic.pt")
    x = torch.cat([task.x_test for task in scenario.tasks[:2]])
    assert torch.allclose(learner.method.predict(x), again.method.predict(x))
    assert again.method.floor == learner.method.floor and again.method.variance_floor == "median"
    assert torch.equal(again.method.ages, learner.method.ages)
    # and both go on alike: the next session from the loaded one gives the same nodes
    learner.learn_task(scenario.tasks[2], scenario)
    again.learn_task(scenario.tasks[2], scenario)
    assert torch.allclose(learner.method.centroids, again.method.centroids, atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"anchor_loss": "yes"}, "anchor_loss must be true or false"),
    ({"use_edges": 1}, "use_edges must be true or false"),
    ({"anchor_target": "anchor"}, "unknown anchor_target 'anchor'"),
    ({"variance_floor": 1e-8}, "unknown variance_floor 1e-08"),
    ({"push": "edges"}, "unknown push 'edges'"),
    ({"new_nodes": "fixed"}, "unknown new_nodes 'fixed'"),
    ({"node_lr": 0}, "node_lr must be a number in"),
    ({"classifier": "ncm"}, "unknown classifier 'ncm'"),
    ({"neighbours": 0}, "neighbours must be an integer >= 1"),
])
def test_bad_options_are_refused(options, message):
    scenario = few_shot_scenario()
    with pytest.raises(ConfigError, match=message):
        build_method("topic", build_model(scenario, hidden=(8,)), "class", options)


def test_the_ablation_rows_run_end_to_end_through_the_command_line(tmp_path, monkeypatch, capsys):
    """`lifelong reproduce` with TOPIC's ablation rows on a tiny few-shot protocol over the digits."""
    from lifelong import reproduce_steps
    from lifelong.cli import main
    scenario = few_shot_scenario()
    monkeypatch.setattr(reproduce_steps, "make_scenario", lambda *args, **kwargs: scenario)
    rows = ("topic-anchor-only", "topic-minmax-only", "topic-neither", "topic-no-edges")
    for row in rows:
        monkeypatch.setitem(reproduce_steps.FSCIL_ROWS[row][2], "nodes", 40)
    assert main(["reproduce", "fscil-omniglot", "--methods", ",".join(rows), "--epochs", "1", "--seeds", "1",
                 "--out", str(tmp_path), "--quiet"]) == 0
    table = capsys.readouterr().out
    for label in ("TOPIC, anchor loss only", "TOPIC, min-max loss only", "neither loss", "edges ignored"):
        assert label in table
