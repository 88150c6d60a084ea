"""CEC (Zhang et al. 2021): the attention graph against a loop written from its equations, the closed form against
the graph run set by set, the cosine classifier by hand, the pseudo-incremental episodes, the prototypes, the frozen
sessions, a save/load round trip, runs end to end (a tiny FSCIL scenario, and the FSCIL reproduction on a tiny
archive in CIFAR-100's official format), and refused options."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from test_data import official_members, tiny_cifar, write_cifar_archive
from test_few_shot import few_shot_scenario, learner_over

from lifelong import few_shot
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model
from lifelong.methods.cec import CEC, GraphAttention
from lifelong.models import ContinualModel

FAST = dict(meta_epochs=2, episodes=3, ways=4, pseudo_ways=3, queries=2)  # the digits' 6 base classes


def loop_attention(g: GraphAttention, x: list[list[float]]) -> list[list[float]]:
    """The graph's output on one set of vectors, from its equations with Python floats: Q, K, V, softmax of
    Q K^T / sqrt(d) by rows, A V W_fc^T + b_fc, the residual, then the LayerNorm (biased variance, eps)."""
    w = {name: getattr(g, name).weight.tolist() for name in ("w_q", "w_k", "w_v", "fc")}
    b_fc, gamma, beta = g.fc.bias.tolist(), g.norm.weight.tolist(), g.norm.bias.tolist()
    d = len(x[0])
    project = lambda m, v: [sum(m[i][j] * v[j] for j in range(d)) for i in range(d)]  # noqa: E731
    q, k, v = ([project(w[name], row) for row in x] for name in ("w_q", "w_k", "w_v"))
    out = []
    for i, row in enumerate(x):
        scores = [sum(a * b for a, b in zip(q[i], k[j])) / math.sqrt(d) for j in range(len(x))]
        e = [math.exp(s - max(scores)) for s in scores]
        a = [t / sum(e) for t in e]
        mixed = [sum(a[j] * v[j][c] for j in range(len(x))) for c in range(d)]
        r = [o + b + res for o, b, res in zip(project(w["fc"], mixed), b_fc, row)]
        mean = sum(r) / d
        var = sum((t - mean) ** 2 for t in r) / d
        out.append([gm * (t - mean) / math.sqrt(var + g.norm.eps) + bt for t, gm, bt in zip(r, gamma, beta)])
    return out


def trained_looking(g: GraphAttention) -> GraphAttention:
    """Non-trivial LayerNorm and output bias (at initialisation they are 1, 0 and small)."""
    with torch.no_grad():
        g.norm.weight.normal_()
        g.norm.bias.normal_()
        g.fc.bias.normal_()
    return g.eval()


def test_the_attention_graph_is_its_equations():
    torch.manual_seed(0)
    g = trained_looking(GraphAttention(3).double())
    x = torch.randn(4, 3, dtype=torch.double)
    torch.testing.assert_close(g(x[None])[0], torch.tensor(loop_attention(g, x.tolist()), dtype=torch.double))


def test_the_closed_form_is_each_query_appended_to_the_prototypes_and_run_through_the_graph():
    """`cosines` (closed form) and `adapt` (all sets at once) against the graph run on each set {p_1..p_C, q}
    alone, the official `test`: values and gradients (prototypes, queries and every parameter)."""
    torch.manual_seed(1)
    g = trained_looking(GraphAttention(6).double())
    p = torch.randn(5, 6, dtype=torch.double, requires_grad=True)
    q = torch.randn(4, 6, dtype=torch.double, requires_grad=True)
    sets = [g(torch.cat([p, q[b:b + 1]])[None])[0] for b in range(len(q))]
    one_by_one = torch.stack([F.cosine_similarity(s[-1:], s[:-1], dim=-1) for s in sets])
    adapted = g.adapt(p, q)
    torch.testing.assert_close(adapted, torch.stack(sets))
    closed = g.cosines(p, q)
    torch.testing.assert_close(closed, one_by_one)
    weights = torch.randn(4, 5, dtype=torch.double)
    inputs = [p, q, *g.parameters()]
    for a, b in zip(torch.autograd.grad((one_by_one * weights).sum(), inputs),
                    torch.autograd.grad((closed * weights).sum(), inputs)):
        torch.testing.assert_close(a, b)
    # where dropout acts (episode_mode="train") each set runs through the graph, masks and all
    g.train()
    torch.manual_seed(2)
    dropped = g.cosines(p, q)
    torch.manual_seed(2)
    again = g.adapt(p, q)
    torch.testing.assert_close(dropped, F.cosine_similarity(again[:, 5:], again[:, :5], dim=-1))
    assert not torch.allclose(dropped, closed)


class Identity(nn.Module):
    out_features = 2

    def forward(self, x):
        return x


def test_the_base_session_is_a_cosine_classifier_at_temperature_16():
    """f(x) = (3, 4), w_0 = (1, 0), w_1 = (0, 2): cos = 0.6 and 0.8, logits 9.6 and 12.8; the head's bias unused."""
    method = CEC(ContinualModel(Identity()))
    task = few_shot_scenario().tasks[0]
    method.before_task(task.__class__(0, [0, 1], task.x_train[:2], task.y_train[:2] % 2, task.x_test[:2],
                                      task.y_test[:2] % 2))
    with torch.no_grad():
        method.model.head.parts[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        method.model.head.parts[0].bias.fill_(100.0)
    x = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(method.predict(x), torch.tensor([[9.6, 12.8]]))
    expected = math.log(1 + math.exp(9.6 - 12.8))  # -log softmax_1
    torch.testing.assert_close(method.loss(x, torch.tensor([1]), torch.tensor([0])), torch.tensor(expected))


def episode_method(**options):
    scenario = few_shot_scenario()
    method = build_method("cec", build_model(scenario, hidden=(16,)), "class",
                          {**FAST, "shots": 2, **options})
    method.before_task(scenario.tasks[0])
    return method, scenario.tasks[0]


def test_episodes_turn_the_first_classes_into_new_labels():
    """ways classes, shots + queries images each, drawn without replacement; the first pseudo_ways classes turned by
    90, 180 or 270 degrees (torch.rot90) are labels ways.., their queries labelled so."""
    method, task = episode_method()
    torch.manual_seed(0)
    by_class = [torch.nonzero(task.y_train == c).flatten() for c in range(task.n_classes)]
    support, query, angles = method.draw_episode(by_class, 2)
    assert support.shape == (2, 4) and query.shape == (2, 4) and len(angles) == 3
    assert set(angles.tolist()) <= {90.0, 180.0, 270.0}
    picks = torch.cat([support, query])
    for j in range(4):  # one class per column, no image twice
        assert len(set(task.y_train[picks[:, j]].tolist())) == 1 and len(set(picks[:, j].tolist())) == 4
    assert len(set(task.y_train[picks[0]].tolist())) == 4
    inputs, labels = method.episode_inputs(task.x_train, support, query, angles)
    x = task.x_train
    turn = lambda i, j: torch.rot90(x[i], int(angles[j]) // 90, (1, 2))  # noqa: E731
    expected = torch.cat([x[support.flatten()],
                          torch.stack([turn(support[s, j], j) for s in range(2) for j in range(3)]),
                          x[query.flatten()],
                          torch.stack([turn(query[s, j], j) for s in range(2) for j in range(3)])])
    assert torch.equal(inputs, expected)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6] * 2  # 4 classes, then their 3 turned copies: new labels
    assert not torch.equal(inputs[8], inputs[0])  # a turned image is not its source


def test_episode_logits_use_the_mean_of_the_shots_and_each_query_with_them():
    method, task = episode_method()
    method.attention = trained_looking(GraphAttention(16))
    torch.manual_seed(3)
    features = torch.randn(2 * 4 + 2 * 3 + 2 * 4 + 2 * 3, 16)
    logits = method.episode_logits(features, 2, 2)
    shots, turned = features[:8].view(2, 4, 16), features[8:14].view(2, 3, 16)
    prototypes = torch.cat([shots.mean(0), turned.mean(0)])
    queries = torch.cat([features[14:22].view(2, 4, 16), features[22:].view(2, 3, 16)], dim=1).flatten(0, 1)
    sets = [method.attention(torch.cat([prototypes, q[None]])[None])[0] for q in queries]
    expected = 16 * torch.stack([F.cosine_similarity(s[-1:], s[:-1], dim=-1) for s in sets])
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_meta_training_moves_the_graph_and_the_encoder_then_sessions_move_nothing():
    scenario = few_shot_scenario()
    learner = learner_over("cec", scenario, epochs=2, **FAST)
    before = record_meta_training(learner, scenario)
    method = learner.method
    learner.learn_task(scenario.tasks[0], scenario)
    for name, module in (("backbone", method.model.backbone), ("attention", method.attention)):
        assert any(not torch.equal(v, before[name][k]) for k, v in module.state_dict().items()), name
    assert len(method.meta_losses) == 2 and all(math.isfinite(v) for v in method.meta_losses)
    frozen = {k: v.clone() for k, v in method.model.backbone.state_dict().items()}
    graph = {k: v.clone() for k, v in method.attention.state_dict().items()}
    base = method.prototypes.clone()
    for task in scenario.tasks[1:]:
        learner.learn_task(task, scenario)
        assert learner.epoch_losses == []  # no step: nothing left to train
    for k, v in method.model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    for k, v in method.attention.state_dict().items():
        assert torch.equal(v, graph[k]), k
    assert torch.equal(method.prototypes[:6], base) and len(method.prototypes) == 10
    with torch.no_grad():  # every prototype is its class's mean feature; prediction is the adapted cosine
        for task in scenario.tasks:
            f = method.model.eval().features(task.x_train)
            for k in range(task.n_classes):
                torch.testing.assert_close(method.prototypes[method.offsets[task.id] + k], f[task.y_train == k].mean(0))
        x = scenario.tasks[1].x_test[:7]
        sets = [method.attention(torch.cat([method.prototypes, q[None]])[None])[0] for q in method.model.features(x)]
        expected = 16 * torch.stack([F.cosine_similarity(s[-1:], s[:-1], dim=-1) for s in sets])
        torch.testing.assert_close(method.predict(x), expected, rtol=1e-4, atol=1e-4)


def record_meta_training(learner, scenario) -> dict:
    """The backbone's and the attention's states as the meta-training starts (filled when it runs)."""
    learner.build(scenario.tasks[0].x_train)
    method, seen = learner.method, {}
    original = method.meta_train

    def record(task):
        seen["backbone"] = {k: v.clone() for k, v in method.model.backbone.state_dict().items()}
        seen["attention"] = {k: v.clone() for k, v in method.attention.state_dict().items()}
        return original(task)

    method.meta_train = record
    return seen


def test_encoder_lr_0_keeps_the_base_backbone():
    scenario = few_shot_scenario()
    learner = learner_over("cec", scenario, epochs=2, encoder_lr=0, **FAST)
    seen = record_meta_training(learner, scenario)
    learner.learn_task(scenario.tasks[0], scenario)
    for k, v in learner.method.model.backbone.state_dict().items():
        assert torch.equal(v, seen["backbone"][k]), k
    assert any(not torch.equal(v, seen["attention"][k]) for k, v in learner.method.attention.state_dict().items())


def test_a_saved_learner_predicts_as_the_one_that_went_on(tmp_path):
    from lifelong.learner import Learner
    scenario = few_shot_scenario()
    learner = learner_over("cec", scenario, epochs=2, **FAST)
    learner.learn_task(scenario.tasks[0], scenario)
    learner.save(tmp_path / "cec.pt")
    x = scenario.tasks[0].x_test
    again = Learner.load(tmp_path / "cec.pt")
    assert torch.equal(learner.method.predict(x), again.method.predict(x))
    for task in scenario.tasks[1:]:
        learner.learn_task(task, scenario)
        again.learn_task(task, scenario)
    assert torch.equal(learner.method.predict(x), again.method.predict(x))


@pytest.mark.exact
def test_a_tiny_fscil_run_end_to_end_through_the_command_line(tmp_path, capsys):
    """`lifelong run --method cec` on digits cut as FSCIL, interrupted after the base session and resumed: the
    uninterrupted run's numbers; CEC's adapted prototypes end at least near the plain prototypes."""
    from lifelong import loggers
    from lifelong.experiment import run_experiment
    scenario = few_shot_scenario()
    common = dict(hidden=(32,), epochs=6, batch_size=32, lr=0.01, seed=0, progress=False)
    whole = run_experiment("cec", scenario, method_options=FAST, **common)
    assert len(whole["accuracy_seen_classes"]) == 3 and whole["method_details"]["prototypes"] == 10

    class Stop(Exception):
        pass

    def stop(results):
        if len(results["train_time_s"]) == 1:
            raise Stop

    with pytest.raises(Stop):
        run_experiment("cec", scenario, method_options=FAST, out_dir=tmp_path, loggers=[stop], **common)
    resumed = run_experiment("cec", scenario, method_options=FAST, out_dir=tmp_path, resume=True, **common)
    assert resumed["accuracy_seen_classes"] == whole["accuracy_seen_classes"]
    assert min(whole["accuracy_seen_classes"]) > 0.5
    assert loggers  # the run wrote through the same engine as the command line's


@pytest.mark.parametrize("options", [dict(pseudo_ways=0), dict(episode_mode="train"),
                                     dict(shots=3, queries=4, pseudo_ways=2)])
def test_other_episode_shapes_run(options):
    """No pseudo-new class (the episodes of base classes alone), dropout and batch norm in training mode, several
    shots: the meta-training runs, every class gets its prototype."""
    from lifelong.experiment import run_experiment
    results = run_experiment("cec", few_shot_scenario(), method_options={**FAST, **options}, hidden=(32,), epochs=2,
                             batch_size=32, lr=0.01, seed=0, progress=False)
    details = results["method_details"]
    assert details["prototypes"] == 10 and len(details["meta_losses"]) == 2
    assert all(math.isfinite(v) for v in details["meta_losses"])


def test_the_fscil_reproduction_runs_cec_on_an_official_format_archive(tmp_path, monkeypatch, capsys):
    """`lifelong reproduce tao2020-fscil-cifar100 --methods cec` on a tiny CIFAR-100 archive in its official format,
    lists of the protocol's shape over it; the table sets CEC's paper curve beside ours."""
    from lifelong.cli import main
    from lifelong.data import cifar
    from lifelong.data.files import md5sum
    from lifelong.reproduce_steps import PROTOCOLS

    batches, meta = tiny_cifar(n_train=320, n_test=200)
    batches["train"]["fine_labels"] = np.concatenate([np.arange(120) % 60, 60 + np.arange(200) % 40])
    batches["test"]["fine_labels"] = np.arange(200) % 100
    archive = write_cifar_archive(tmp_path / "data" / "cifar100" / "cifar-100-python.tar.gz",
                                  official_members(batches, meta))
    monkeypatch.setattr(cifar, "MD5", md5sum(archive))
    lists = [[str(i) for i in range(120)]]
    lists += [[str(120 + c + 40 * k) for c in range(5 * s, 5 * s + 5) for k in range(5)] for s in range(8)]
    monkeypatch.setattr(few_shot, "read_index_lists", lambda name: lists)
    rows = PROTOCOLS["tao2020-fscil-cifar100"]["rows"]
    assert rows["cec"][2] == {"meta_epochs": 100}  # the official length, on a GPU
    monkeypatch.setitem(rows["cec"][2], "meta_epochs", 1)
    monkeypatch.setitem(rows["cec"][2], "episodes", 2)
    out = tmp_path / "fscil"
    argv = ["reproduce", "tao2020-fscil-cifar100", "--data-dir", str(tmp_path / "data"), "--no-download",
            "--epochs", "1", "--methods", "cec", "--seeds", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert ("| CEC: prototypes adapted by an attention graph meta-trained on pseudo-incremental episodes (paper) | "
            "73.07 | 68.88 | 65.26 | 61.19 | 58.09 | 55.57 | 53.22 | 51.34 | 49.14 |") in table
    run = json.loads((out / "tao2020_fscil_cifar100_runs" / "cec_0.json").read_text())
    assert run["classes_seen"] == [60, 65, 70, 75, 80, 85, 90, 95, 100]
    assert [d["prototypes"] for d in run["method_details_per_step"]] == [60 + 5 * s for s in range(9)]
    assert run["method_details"]["queries"] is None and run["train"]["extra"]["backbone"] == "resnet20"


@pytest.mark.parametrize("name", ["fscil-mini-imagenet", "fscil-cub200"])
def test_cec_runs_on_tiny_mini_imagenet_and_cub200_copies_in_their_official_layouts(name, tmp_path, monkeypatch):
    """`lifelong run --method cec` on miniImageNet and CUB-200 (84x84 colour images, ResNet-20, crop + flip), tiny
    copies in the official layouts holding images the shipped lists name (test_fscil_data's), the lists cut short."""
    from test_fscil_data import PROTOCOLS as FSCIL_DATA, expected_sessions, short_lists
    from lifelong.cli import main

    lists = short_lists(FSCIL_DATA[name])
    expected_sessions(name, tmp_path / "data", lists, np.random.default_rng(0))
    monkeypatch.setattr(few_shot, "read_index_lists", lambda p: lists)
    out = tmp_path / "run"
    argv = ["run", "--method", "cec", "--scenario", name, "--setting", "class", "--data-dir", str(tmp_path / "data"),
            "--no-download", "--epochs", "1", "--incremental-epochs", "1", "--batch-size", "4", "--quiet",
            "--out", str(out)]
    for option in ("ways=2", "pseudo_ways=2", "meta_epochs=1", "episodes=2", "encoder_lr=0.0002"):
        argv += ["--param", option]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "cec" and results["status"] == "complete"
    assert results["method_details"]["prototypes"] == 5 and len(results["accuracy_seen_classes"]) == 3
    assert results["config"]["extra"]["backbone"] == "resnet20"


@pytest.mark.parametrize("options, message", [
    (dict(pseudo_ways=16), r"pseudo_ways \(16\) must be at most ways \(15\)"),
    (dict(queries=0), "queries must be an integer >= 1"),
    (dict(episode_mode="training"), "unknown episode_mode 'training'"),
    (dict(temperature=0), r"temperature must be a number in \(0.0, inf\]"),
    (dict(encoder_lr=-1), r"encoder_lr must be a number in \[0.0, inf\]"),
    (dict(lr_gamma=2), r"lr_gamma must be a number in \(0.0, 1.0\]"),
    (dict(dropout=1.5), r"dropout must be a number in \[0.0, 1.0\]"),
    (dict(meta_epochs=-1), "meta_epochs must be an integer >= 0"),
])
def test_bad_options_are_refused_in_one_line(options, message):
    scenario = few_shot_scenario()
    with pytest.raises(ConfigError, match=message):
        build_method("cec", build_model(scenario, hidden=(8,)), "class", options)


@pytest.mark.parametrize("options, message", [
    (dict(ways=7), "7-way episodes but the base session has 6 classes"),
    (dict(ways=4, shots=500), r"an episode takes 500 shot\(s\) \+ 1 queries of a class, but a base class has only"),
])
def test_episodes_the_base_session_cannot_give_are_refused_before_training(options, message):
    scenario = few_shot_scenario()
    method = build_method("cec", build_model(scenario, hidden=(8,)), "class", {"pseudo_ways": 4, **options})
    with pytest.raises(ConfigError, match=message):
        method.check(scenario)
