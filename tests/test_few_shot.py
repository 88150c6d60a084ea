"""Few-shot class-incremental learning: the protocols' index lists, the sessions built from them, the cosine-prototype
baseline and TOPIC, each against a hand computation or a loop."""

import hashlib
import re
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_data import official_members, tiny_cifar, write_cifar_archive

from lifelong import few_shot
from lifelong.data import Dataset
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model
from lifelong.few_shot import from_index_lists, omniglot_protocol, read_index_lists

# MD5 of the official CIFAR-100 lists (TOPIC's and CEC's repositories), as ../shared/data/MD5SUMS lists them
CIFAR_LIST_MD5 = {1: "3723f5b5d8fbaf2077998c9a13f086f2", 2: "6a80d6ab233b0bcaac2d230d6a9c91f5",
                  3: "dc192e866c7abbf45fd8d5bcd7a2a6c1"}


def test_the_shipped_cifar100_lists_are_the_official_ones():
    from importlib import resources
    folder = resources.files("lifelong.data") / "fscil_index_list" / "cifar100"
    for session, md5 in CIFAR_LIST_MD5.items():
        assert hashlib.md5((folder / f"session_{session}.txt").read_bytes()).hexdigest() == md5
    lists = read_index_lists("cifar100")
    assert [len(s) for s in lists] == [30000] + [25] * 8  # 60 classes x 500, then 5-way 5-shot
    indices = [int(i) for s in lists for i in s]
    assert len(set(indices)) == len(indices) and 0 <= min(indices) and max(indices) < 50000
    assert [len(s) for s in read_index_lists("mini_imagenet")] == [30000] + [25] * 8
    assert [len(s) for s in read_index_lists("cub200")][1:] == [50] * 10  # 10-way 5-shot


def test_the_shipped_omniglot_lists_are_the_seeded_protocol():
    """Regenerated from the seed, the lists equal the shipped ones: 60 characters with their 15 drawings, then 8
    sessions of 5 new characters with 5 of theirs."""
    shipped = read_index_lists("omniglot")
    assert omniglot_protocol(964) == shipped
    characters = [{int(i) // 15 for i in session} for session in shipped]
    assert [len(c) for c in characters] == [60] + [5] * 8 and len(set().union(*characters)) == 100
    assert [len(s) for s in shipped] == [900] + [25] * 8


def small_dataset(n_classes=12, per_class=6, test_per_class=2, features=4):
    """Class c's training images are c * per_class ... (c + 1) * per_class - 1; every pixel is its label."""
    y_train = torch.arange(n_classes).repeat_interleave(per_class)
    y_test = torch.arange(n_classes).repeat_interleave(test_per_class)
    x = lambda y: (y[:, None, None, None].float() + torch.rand(len(y), 1, 1, features) * 0.1)  # noqa: E731
    return Dataset("small", x(y_train), y_train, x(y_test), y_test, [f"c{k}" for k in range(n_classes)])


def test_sessions_hold_the_listed_images_and_every_test_image_of_their_classes():
    dataset = small_dataset()
    lists = [[str(i) for c in (3, 0, 7) for i in range(6 * c, 6 * c + 6)],  # base: classes 3, 0, 7
             [str(6 * 5 + 1), str(6 * 5 + 4), str(6 * 9)]]  # session 2: two shots of class 5, one of 9
    scenario = from_index_lists(dataset, lists, "small", validation_fraction=0.5, seed=0)
    base, session = scenario.tasks
    assert base.classes == [3, 0, 7] and session.classes == [5, 9]
    assert sorted(torch.cat([base.y_train, base.y_val]).tolist()) == [0] * 6 + [1] * 6 + [2] * 6
    assert len(base.y_val) == 9 and session.x_val is None  # only the base session holds out validation data
    assert session.y_train.tolist() == [0, 0, 1] and len(session.y_test) == 4
    # the test images are exactly the test images of the session's classes, labelled within the session
    expected = torch.cat([dataset.x_test[dataset.y_test == c] for c in (5, 9)])
    mean, std = dataset.x_train.mean(), dataset.x_train.std()
    torch.testing.assert_close(session.x_test, (expected - mean) / std, rtol=1e-4, atol=1e-4)
    assert scenario.class_order == [3, 0, 7, 5, 9]


@pytest.mark.parametrize("lists, message", [
    ([["0", "1"], ["999"]], "names image 999, but the data set has 72 training images"),
    ([["0", "1"], ["a.jpg"]], "'a.jpg' is not an image index"),
    ([["0", "6"], ["1"]], "names classes of an earlier session"),
])
def test_an_index_list_the_data_cannot_give_is_one_clear_line(lists, message):
    with pytest.raises(ConfigError, match=message):
        from_index_lists(small_dataset(), lists, "small")


@pytest.mark.parametrize("arguments, message", [
    (dict(shots=16), r"16 shots per class, but class \d+ has only 15 training images"),
    (dict(base_classes=3, ways=5), "a base session of 3 classes is smaller than a 5-way session"),
    (dict(n_characters=80), "need 100 classes; the data set has 80"),
])
def test_a_protocol_the_data_cannot_give_is_one_clear_line(arguments, message):
    arguments = {"n_characters": 964, **arguments}
    with pytest.raises(ConfigError, match=message):
        omniglot_protocol(**arguments)


def few_shot_scenario(seed=0):
    """A tiny FSCIL scenario on 10-class digits: 6 base classes with all their data, then 2 sessions of 2-way
    3-shot."""
    from lifelong.data import load_digits
    digits = load_digits()
    rng = np.random.RandomState(seed)
    by_class = [torch.nonzero(digits.y_train == c).flatten().tolist() for c in range(10)]
    lists = [[str(i) for c in range(6) for i in by_class[c]]]
    for new in ((6, 7), (8, 9)):
        lists.append([str(i) for c in new for i in rng.choice(by_class[c], 3, replace=False)])
    return from_index_lists(digits, lists, "digits-fscil")


def learner_over(name, scenario, epochs=8, **options):
    from lifelong.learner import Learner
    learner = Learner(name, "mlp", "class", hidden=(32,), seed=0, epochs=epochs, batch_size=32, lr=0.01,
                      incremental_epochs=3, progress=False, **options)
    return learner


def test_prototypes_are_the_class_means_and_the_backbone_stays_frozen():
    scenario = few_shot_scenario()
    learner = learner_over("prototype", scenario)
    learner.learn_task(scenario.tasks[0], scenario)
    frozen = {k: v.clone() for k, v in learner.method.model.backbone.state_dict().items()}
    for task in scenario.tasks[1:]:
        learner.learn_task(task, scenario)
    for k, v in learner.method.model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    method = learner.method
    with torch.no_grad():
        for task in scenario.tasks:
            f = learner.method.model.eval().features(task.x_train)
            for k in range(task.n_classes):
                row = method.offsets[task.id] + k
                torch.testing.assert_close(method.prototypes[row], f[task.y_train == k].mean(0))
        x = scenario.tasks[0].x_test[:20]
        cos = F.cosine_similarity(learner.method.model.features(x)[:, None], method.prototypes[None], dim=2)
        assert torch.equal(method.predict(x).argmax(1), cos.argmax(1))


def test_topic_gas_nodes_carry_the_majority_label_their_anchor_and_its_variance():
    scenario = few_shot_scenario()
    learner = learner_over("topic", scenario, nodes=40)
    learner.learn_task(scenario.tasks[0], scenario)
    method, base = learner.method, scenario.tasks[0]
    f = method.embed_all(base.x_train)
    nearest = torch.cdist(f, method.centroids).argmin(1)
    for j in range(len(method.centroids)):
        members = nearest == j
        if not members.any():  # a node added for a class the gas left without one: at that class's mean
            continue
        labels = base.y_train[members]
        assert int(method.labels[j]) == int(torch.bincount(labels).argmax())
        assert any(torch.equal(method.anchors[j], x) for x in base.x_train[members & (base.y_train == method.labels[j])])
    assert set(method.labels.tolist()) == set(range(6))
    # a node's variance is its members' (0 where they agree, a dead ReLU); its weights divide by at least the floor
    assert (method.variances >= 0).all() and method.floor > 0 and torch.isfinite(method.weights()).all()
    # prediction: the label of the nearest node, as a loop over samples finds it
    x = base.x_test[:30]
    with torch.no_grad():
        fx = F.normalize(learner.method.model.eval().features(x), dim=1)
    expected = [int(method.labels[((method.centroids - v) ** 2).sum(1).argmin()]) for v in fx]
    assert method.predict(x).argmax(1).tolist() == expected


def test_topic_losses_are_the_papers_terms_written_as_loops():
    """At the session's start the anchor loss is zero (the paper penalises "the shift of NG nodes", and none has
    shifted yet: the anchors' features are recorded as the session starts, as the official script records them);
    the min term pulls each shot to its class's new node, the max term pushes each new node from the nodes of other
    labels its competitive Hebbian edges join it to (Fig. 3e: "pulling v~7 away from the neighbors v4, v5 and v6")."""
    scenario = few_shot_scenario()
    learner = learner_over("topic", scenario, nodes=40, margin=0.8)
    learner.learn_task(scenario.tasks[0], scenario)
    method, session = learner.method, scenario.tasks[1]
    method.before_task(session)
    n_old = method.n_old
    assert len(method.centroids) == n_old + 2  # a node per new class
    x, targets = session.x_train, method.targets(session, session.y_train)
    learner.method.model.eval()  # no batch-norm here; eval for a fixed forward pass
    loss = method.loss(x, targets, torch.full_like(targets, 1))
    with torch.no_grad():
        ce = F.cross_entropy(learner.method.model(x), targets)
        pull = 0.0
        for v, y in zip(F.normalize(learner.method.model.features(x), dim=1), targets):
            pull += float(((method.centroids[method.labels == y] - v) ** 2).sum(1).min()) / len(x)
        push = 0.0
        for j in range(n_old, len(method.centroids)):
            for k in range(len(method.centroids)):
                if torch.isfinite(method.ages[j, k]) and method.labels[k] != method.labels[j]:
                    push += float(F.relu(0.8 - (method.centroids[j] - method.centroids[k]).norm()) ** 2) / 2
    assert push > 0  # the new nodes start within the margin of a neighbour
    assert float(loss.detach()) == pytest.approx(float(ce) + pull + push, rel=1e-4)


@pytest.mark.exact
def test_topic_keeps_old_nodes_still_and_resumes_to_the_same_predictions(tmp_path):
    from lifelong.learner import Learner
    scenario = few_shot_scenario()
    learner = learner_over("topic", scenario, nodes=40)
    learner.learn_task(scenario.tasks[0], scenario)
    base_nodes = learner.method.centroids.clone()
    learner.learn_task(scenario.tasks[1], scenario)
    assert torch.equal(learner.method.centroids[:len(base_nodes)], base_nodes)
    learner.save(tmp_path / "topic.pt")
    learner.learn_task(scenario.tasks[2], scenario)
    again = Learner.load(tmp_path / "topic.pt")
    again.learn_task(scenario.tasks[2], scenario)
    x = scenario.tasks[0].x_test
    assert torch.equal(learner.method.predict(x), again.method.predict(x))


def test_incremental_epochs_train_the_sessions_after_the_base_one():
    from lifelong.methods import Finetune
    epochs = []
    scenario = few_shot_scenario()
    learner = learner_over("finetune", scenario, epochs=4)
    original = Finetune.before_epoch
    Finetune.before_epoch = lambda self, epoch, n: epochs.append(n)
    try:
        for task in scenario.tasks:
            learner.learn_task(task, scenario)
    finally:
        Finetune.before_epoch = original
    assert epochs == [4] * 4 + [3] * 3 + [3] * 3


def test_topic_refuses_more_nodes_than_base_samples():
    scenario = few_shot_scenario()
    method = build_method("topic", build_model(scenario, hidden=(8,)), "class", {"nodes": 5000})
    with pytest.raises(ConfigError, match="5000 nodes but the base session has"):
        method.check(scenario)


def test_the_fscil_reproduction_runs_end_to_end_on_an_official_format_archive(tmp_path, monkeypatch, capsys):
    """`lifelong reproduce tao2020-fscil-cifar100` on a tiny archive in CIFAR-100's official format, its index lists
    replaced by lists of the same shape over the tiny archive (the official ones index 50,000 images)."""
    from lifelong.cli import main
    from lifelong.data import cifar
    from lifelong.data.files import md5sum

    batches, meta = tiny_cifar(n_train=320, n_test=200)
    # 2 training images of each base class (0-59), 5 of each new class (60-99)
    batches["train"]["fine_labels"] = np.concatenate([np.arange(120) % 60, 60 + np.arange(200) % 40])
    batches["test"]["fine_labels"] = np.arange(200) % 100
    archive = write_cifar_archive(tmp_path / "data" / "cifar100" / "cifar-100-python.tar.gz",
                                  official_members(batches, meta))
    monkeypatch.setattr(cifar, "MD5", md5sum(archive))
    lists = [[str(i) for i in range(120)]]
    lists += [[str(120 + c + 40 * k) for c in range(5 * s, 5 * s + 5) for k in range(5)] for s in range(8)]
    monkeypatch.setattr(few_shot, "read_index_lists", lambda name: lists)
    from lifelong.reproduce_steps import FSCIL_ROWS
    monkeypatch.setitem(FSCIL_ROWS["topic"][2], "nodes", 30)  # the tiny base session has 120 images, not 30,000
    out = tmp_path / "fscil"
    argv = ["reproduce", "tao2020-fscil-cifar100", "--data-dir", str(tmp_path / "data"), "--no-download",
            "--epochs", "1", "--methods", "prototype,topic", "--seeds", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert ("| TOPIC: neural gas, anchor loss, min-max loss (paper) | 64.10 | 55.88 | 47.07 | 45.16 | 40.11 | 36.38 | "
            "33.96 | 31.55 | 29.37 | 42.62 | 34.73 |") in table
    assert ("| FACT: virtual prototypes reserved in the base session, eta-mixed prediction (paper) | 74.60 | 72.09 | "
            "67.56 | 63.52 | 61.38 | 58.36 | 56.28 | 54.24 | 52.10 | 62.24 | 22.50 |") in table
    run = json.loads((out / "tao2020_fscil_cifar100_runs" / "topic_0.json").read_text())
    assert run["classes_seen"] == [60, 65, 70, 75, 80, 85, 90, 95, 100]
    assert run["train"]["extra"]["backbone"] == "resnet20" and len(run["method_details_per_step"]) == 9
    assert [d["nodes"] for d in run["method_details_per_step"]][1:] == \
        [run["method_details_per_step"][0]["nodes"] + 5 * s for s in range(1, 9)]
    assert (out / "tao2020_fscil_cifar100.png").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--shots", "16"], r"16 shots per class, but class \d+ has only 15 training images"),
    (["--ways", "10", "--base-classes", "4"], "a base session of 4 classes is smaller than a 10-way session"),
    (["--n-tasks", "200"], "need 1055 classes; the data set has 964"),
])
def test_the_command_line_refuses_a_protocol_before_reading_any_data(argv, message, tmp_path, capsys):
    """No data directory exists here: the protocol is refused before any data is looked for."""
    from lifelong.cli import main
    code = main(["run", "--method", "topic", "--scenario", "fscil-omniglot", "--data-dir", str(tmp_path / "none"),
                 "--no-download", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and re.search(message, err[0]), err
