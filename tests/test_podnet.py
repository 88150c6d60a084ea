"""PODNet: each loss against a case computed by hand or by an independent loop, the local similarity classifier,
imprinting, the backbone's stages, checkpoints, and runs end to end on an MLP and on a convolutional backbone."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong import Learner
from lifelong.engine import run
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment, train_config
from lifelong.methods import PODNet
from lifelong.methods.podnet import nca_loss, pod_flat, pod_pooled, pod_spatial
from lifelong.models import MLP, ContinualModel, LocalSimilarityHead, StageOutputs, kmeans, resnet20
from lifelong.benchmarks import make_scenario
from lifelong.scenarios import from_data

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def fresh(scenario, seed=0, hidden=(32,), **options):
    torch.manual_seed(seed)
    options = {"memory": 100, "spatial_on_vectors": True, **options}  # an MLP: its stages give vectors
    return build_method("podnet", build_model(scenario, hidden=hidden), "class", options)


# ---------------------------------------------------------------------- POD-spatial and POD-flat by hand
def test_pod_spatial_on_a_one_by_two_by_two_by_two_map_pair_by_hand():
    # h[c, y, x]: channel 0 = [[1, 2], [3, 4]], channel 1 = [[0, 1], [1, 0]]
    old = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]]])
    new = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[2.0, 2.0], [0.0, 0.0]]]])
    # squared: old c0 [[1, 4], [9, 16]], c1 [[0, 1], [1, 0]]
    # summed over the width (each row):  c0 (5, 25), c1 (1, 1); over the height (each column): c0 (10, 20), c1 (1, 1)
    old_pooled = torch.tensor([5.0, 25, 1, 1, 10, 20, 1, 1])
    # new squared: c0 [[1, 0], [0, 1]], c1 [[4, 4], [0, 0]]; rows c0 (1, 1), c1 (8, 0); columns c0 (1, 1), c1 (4, 4)
    new_pooled = torch.tensor([1.0, 1, 8, 0, 1, 1, 4, 4])
    a = old_pooled / math.sqrt(25 + 625 + 1 + 1 + 100 + 400 + 1 + 1)  # ||.|| = sqrt(1154)
    b = new_pooled / math.sqrt(1 + 1 + 64 + 0 + 1 + 1 + 16 + 16)       # ||.|| = sqrt(100) = 10
    assert pod_pooled(old)[0] == pytest.approx(a, abs=1e-6)
    assert pod_pooled(new)[0] == pytest.approx(b, abs=1e-6)
    expected = torch.linalg.norm(a - b).item()
    assert pod_spatial([pod_pooled(old)], [pod_pooled(new)]).item() == pytest.approx(expected, abs=1e-6)
    # the mean over stages and samples: a stage at distance 0 halves it, and a second, identical sample keeps it
    same = pod_pooled(torch.cat([old, old]))
    assert pod_spatial([pod_pooled(torch.cat([old, old])), same], [pod_pooled(torch.cat([new, new])), same]).item() \
        == pytest.approx(expected / 2, abs=1e-6)


def test_pod_spatial_of_a_vector_is_the_distance_of_its_normalised_squares():
    """An MLP's stage output (B, C): both pooled sums are the squared activations themselves."""
    a, b = torch.tensor([[1.0, -2.0, 0.0]]), torch.tensor([[0.0, 1.0, 1.0]])
    expected = torch.linalg.norm(F.normalize(a**2, dim=1) - F.normalize(b**2, dim=1)).item()
    assert pod_spatial([pod_pooled(a)], [pod_pooled(b)]).item() == pytest.approx(expected, abs=1e-6)
    assert pod_spatial([pod_pooled(a)], [pod_pooled(3 * a)]).item() == pytest.approx(0, abs=1e-6)  # scale-free
    with pytest.raises(ConfigError, match="POD-spatial pools maps"):
        pod_pooled(torch.zeros(1, 2, 2, 2, 2))


def test_pod_flat_is_one_minus_the_cosine_of_the_embeddings():
    old = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    new = torch.tensor([[1.0, 1.0], [3.0, 4.0]])
    # sample 1: cos = 1 / sqrt(2); sample 2: the same direction, 0
    assert pod_flat(old, new).item() == pytest.approx((1 - 1 / math.sqrt(2) + 0) / 2, abs=1e-6)


# ---------------------------------------------------------------------- the NCA loss against a per-sample loop
def nca_loop(y, targets, eta, margin, variant):
    losses = []
    for row, t in zip(y.tolist(), targets.tolist()):
        if variant == "paper":  # -log( exp(eta (y_t - d)) / sum_{c != t} exp(eta y_c) ), clamped at 0
            negatives = sum(math.exp(eta * v) for c, v in enumerate(row) if c != t)
            losses.append(max(0.0, -(eta * (row[t] - margin)) + math.log(negatives)))
        else:  # the official code: every similarity minus the margin, the target's term exp(0) in the denominator
            z = [eta * (v - margin) for v in row]
            top = max(z)
            z = [v - top for v in z]
            denominator = sum(math.exp(0.0 if c == t else v) for c, v in enumerate(z))
            losses.append(-(z[t] - math.log(denominator)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_nca_with_margin_matches_a_per_sample_loop(variant):
    generator = torch.Generator().manual_seed(3)
    y = -4 * torch.rand(7, 5, generator=generator, dtype=torch.float64)
    targets = torch.randint(5, (7,), generator=generator)
    for eta in (1.0, 3.5):
        got = nca_loss(y, targets, torch.tensor(eta, dtype=torch.float64), 0.6, variant).item()
        assert got == pytest.approx(nca_loop(y, targets, eta, 0.6, variant), rel=1e-9, abs=1e-12)


def test_the_official_nca_ignores_its_margin_and_the_papers_clamps_at_zero():
    y = torch.tensor([[0.0, -3.0, -3.5], [-2.0, -0.1, -1.0]])
    targets = torch.tensor([0, 0])
    one = torch.tensor(1.0)
    assert nca_loss(y, targets, one, 0.6, "official").item() == pytest.approx(
        nca_loss(y, targets, one, 0.0, "official").item(), abs=1e-6)
    assert nca_loss(y, targets, one, 0.6, "paper").item() > nca_loss(y, targets, one, 0.0, "paper").item()
    # sample 1 beats its negatives by more than the margin: its clamped loss is 0; the mean is sample 2's over 2
    second = -(-2.0 - 0.6) + math.log(math.exp(-0.1) + math.exp(-1.0))
    assert nca_loss(y, targets, one, 0.6, "paper").item() == pytest.approx(second / 2, abs=1e-6)


# ---------------------------------------------------------------------- the local similarity classifier
def test_lsc_logits_by_hand():
    head = LocalSimilarityHead(2, proxies=2)
    head.add(2)
    with torch.no_grad():  # class 0: proxies along x and y; class 1: along -x and (1, 1) (unnormalised on purpose)
        head.parts[0].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [3.0, 3.0]]))
    h = torch.tensor([[5.0, 0.0]])  # normalised: (1, 0)
    cosines = [[1.0, 0.0], [-1.0, 1 / math.sqrt(2)]]
    for similarity, transform in (("distance", lambda c: 2 * c - 2), ("cosine", lambda c: c)):
        head.similarity = similarity
        expected = []
        for row in cosines:
            s = [transform(c) for c in row]
            weights = [math.exp(v) for v in s]
            expected.append(sum(w * v for w, v in zip(weights, s)) / sum(weights))
        assert head(h)[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert head.sizes == [2] and head.out_features == 2


def test_the_lsc_head_grows_as_the_incremental_head_does():
    head = LocalSimilarityHead(4, proxies=3)
    assert head.add(2) == 0 and head.add(3) == 2
    assert head.sizes == [2, 3] and head.out_features == 5
    assert head.parts[1].weight.shape == (9, 4)
    assert head(torch.randn(6, 4)).shape == (6, 5)


# ---------------------------------------------------------------------- imprinting
def test_kmeans_finds_separable_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    x = torch.cat([c + 0.1 * torch.randn(20, 2, generator=generator) for c in centres])
    found = kmeans(x, 3, torch.Generator().manual_seed(1))
    for c in centres:  # each true centre has a found one within the noise
        assert torch.cdist(c[None], found).min() < 0.1
    fewer = kmeans(x[:2], 3, torch.Generator().manual_seed(1))  # fewer samples than proxies: the samples, in turn
    assert torch.equal(fewer, x[[0, 1, 0]])
    # Lloyd's fixed point: each centre is the mean of the rows nearest to it (by the true distance)
    x = torch.randn(300, 5, generator=generator)
    found = kmeans(x, 4, torch.Generator().manual_seed(2))
    nearest = torch.cdist(x, found).argmin(1)
    for j in range(4):
        assert torch.allclose(found[j], x[nearest == j].mean(0), atol=1e-6)


def test_new_proxies_are_imprinted_from_kmeans_of_the_new_classes_features(digits):
    method = fresh(digits, proxies=3)
    learner = Learner(method, config=train_config("split-digits", **FAST))
    learner.learn(digits.tasks[0])
    old = method.model.head.parts[0].weight.detach().clone()
    task = digits.tasks[1]
    method.memory.seed = 5
    features = F.normalize(method.features(task.x_train), dim=1)
    method.before_task(task)
    passes = []
    method.features = lambda x: passes.append(len(x))  # the recorded embedding serves: no pass of its own
    x, _, _, embedding, *maps = method.training_data(task)  # imprinted here, before any step
    assert passes == [] and len(x) == len(task.x_train) + len(method.memory.data()[0]) and maps
    assert torch.allclose(F.normalize(embedding[:len(task.x_train)], dim=1), features, atol=1e-6)
    head = method.model.head
    assert torch.equal(head.parts[0].weight, old)
    assert not head.parts[0].weight.requires_grad and head.parts[1].weight.requires_grad  # old proxies frozen
    norm = old.norm(dim=1).mean()
    for c in range(task.n_classes):  # each new proxy: a centre of its class's features, times the old mean norm
        mine = features[task.y_train == c]
        proxies = head.parts[1].weight[3 * c:3 * (c + 1)].detach() / norm
        assignment = torch.cdist(mine, proxies).argmin(1)
        for k in range(3):
            assert torch.allclose(proxies[k], mine[assignment == k].mean(0), atol=1e-4)


# ---------------------------------------------------------------------- the backbone's stages
def test_stage_hooks_collect_each_stage_of_the_library_backbones_in_one_forward():
    net = resnet20(in_channels=1)
    calls = []
    net.register_forward_hook(lambda *args: calls.append(1))
    with StageOutputs(net) as maps:
        features = net(torch.zeros(2, 1, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert torch.allclose(maps[-1].mean((2, 3)), features) and len(calls) == 1  # one forward
    net(torch.zeros(1, 1, 32, 32))
    assert len(maps) == 3  # the hooks are gone after the block
    with StageOutputs(MLP(10, (6, 4))) as maps:
        MLP(10, (6, 4))(torch.zeros(3, 10))  # another net: nothing recorded
    assert maps == []
    mlp = MLP(10, (6, 4))
    with StageOutputs(mlp) as maps:
        mlp(torch.zeros(3, 10))
    assert [tuple(m.shape) for m in maps] == [(3, 6), (3, 4)]


class NoStages(nn.Module):
    out_features = 8

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(64, 8)

    def forward(self, x):
        return self.layer(x.flatten(1))


def test_a_backbone_without_stages_is_refused_in_one_line_before_any_training(digits):
    with pytest.raises(ConfigError, match="declares no stages") as error:
        PODNet(ContinualModel(NoStages()), memory=100)
    assert "\n" not in str(error.value)
    bad = NoStages()
    bad.stages = ("nowhere",)
    with pytest.raises(ConfigError, match="'nowhere', which is not one of its submodules"):
        PODNet(ContinualModel(bad), memory=100)
    PODNet(ContinualModel(NoStages()), memory=100, lambda_spatial=0.0, remove_last_relu=False)  # POD-flat: no maps


def test_pod_spatial_on_a_backbone_whose_stages_give_vectors_is_refused_unless_asked_for(digits):
    """The MLP's hidden layers are vectors: no width or height to pool over."""
    for options in ({}, {"lambda_spatial": 0.0}, {"spatial_on_vectors": True}):
        torch.manual_seed(0)
        learner = Learner("podnet", hidden=(16,), memory=100, proxies=2, **options, **FAST)
        if options:
            learner.learn(digits.tasks[0])  # POD-flat alone, or the degenerate form asked for
            continue
        with pytest.raises(ConfigError, match=r"stages blocks.0 \(16,\) of MLP give vectors") as error:
            learner.learn(digits.tasks[0])
        assert "\n" not in str(error.value) and "lambda_spatial=0" in str(error.value)
        assert learner.method.model.head.out_features == 0  # refused before any training


def test_remove_last_relu_takes_the_pre_activation_features(digits):
    method = fresh(digits)  # the default, as the official code
    assert method.features(digits.tasks[0].x_train).min() < 0  # the last ReLU is gone: negative features
    assert fresh(digits, remove_last_relu=False).features(digits.tasks[0].x_train).min() >= 0
    assert method.describe()["remove_last_relu"] is True
    with pytest.raises(ConfigError, match="has no remove_final_activation"):
        PODNet(ContinualModel(NoStages()), memory=100, lambda_spatial=0.0, remove_last_relu=True)
    with pytest.raises(ConfigError, match="remove_last_relu must be true or false"):
        fresh(digits, remove_last_relu="yes")


def test_bad_options_are_refused(digits):
    for options, message in [({"proxies": 0}, "proxies must be an integer"), ({"nca": "mine"}, "unknown podnet nca"),
                             ({"similarity": "dot"}, "unknown podnet similarity"),
                             ({"classifier": "softmax"}, "unknown podnet classifier"),
                             ({"lambda_flat": -1.0}, "lambda_flat must be"), ({"finetune_lr": 0}, "finetune_lr"),
                             ({"margin": float("nan")}, "margin must be")]:
        with pytest.raises(ConfigError, match=message):
            fresh(digits, **options)
    grown = build_model(digits, hidden=(16,))
    grown.head.add(2)
    with pytest.raises(ConfigError, match="whose head has no outputs yet"):
        PODNet(grown, memory=100, spatial_on_vectors=True)
    with pytest.raises(ConfigError, match="class-incremental"):
        build_method("podnet", build_model(digits), "task", {"memory": 100})
    with pytest.raises(ConfigError, match="needs a memory size"):
        build_method("podnet", build_model(digits), "class", {})
    with pytest.raises(ConfigError, match="preallocate_head"):
        run_experiment("podnet", digits, "class", hidden=(16,), preallocate_head=True,
                       method_options={"memory": 100}, **FAST)


# ---------------------------------------------------------------------- the loss of a step
def test_the_step_loss_is_nca_plus_the_scaled_pod_terms(digits):
    method = fresh(digits, nca="paper")
    learner = Learner(method, config=train_config("split-digits", **FAST))
    learner.learn(digits.tasks[0])
    method.before_task(digits.tasks[1])
    x, targets, task_ids, *recorded = method.training_data(digits.tasks[1])
    assert len(recorded) == 1 + 1  # the old embedding and the one hidden layer's pooled map, recorded once
    method.train_mode()
    batch = torch.arange(0, len(x), 37)
    with torch.no_grad():  # perturb the model so that the distillation terms are not zero
        for p in method.model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    got = method.loss(x[batch], targets[batch], task_ids[batch], *(r[batch] for r in recorded)).item()
    features = method.model.backbone(x[batch])
    hidden = method.model.backbone.blocks[0](x[batch].flatten(1))
    nca = nca_loss(method.model.head(features), targets[batch], method.model.head.scale, 0.6, "paper")
    factor = math.sqrt(4 / 2)  # 4 classes seen, 2 new
    expected = nca + factor * (1.0 * pod_flat(recorded[0][batch], features)
                               + 3.0 * pod_spatial([recorded[1][batch]], [pod_pooled(hidden)]))
    assert got == pytest.approx(expected.item(), rel=1e-5)
    # the recorded old outputs are the old model's: the unperturbed model before the step gave them
    assert pod_flat(recorded[0][batch], features).item() > 1e-6


def test_gradients_are_clamped_before_the_step(digits):
    method = fresh(digits, grad_clamp=0.01)
    method.before_task(digits.tasks[0])
    x, targets, task_ids = method.training_data(digits.tasks[0])
    method.loss(x[:64], targets[:64], task_ids[:64]).mul(1000).backward()
    assert max(p.grad.abs().max().item() for p in method.model.parameters() if p.grad is not None) > 0.01
    method.before_step()
    assert max(p.grad.abs().max().item() for p in method.model.parameters() if p.grad is not None) <= 0.01


def test_finetuning_moves_only_the_proxies_on_the_memory(digits):
    method = fresh(digits, finetune_epochs=3)
    learner = Learner(method, config=train_config("split-digits", **FAST))
    learner.learn(digits.tasks[0])
    learner.learn(digits.tasks[1])
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    method.finetune_classifier(digits.tasks[1])
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.parts.0.weight", "head.parts.1.weight"}  # every proxy, old ones too; not the scale


# ---------------------------------------------------------------------- checkpoints and runs
def test_save_and_load_predict_the_same(digits, tmp_path):
    learner = Learner("podnet", hidden=(32,), memory=100, proxies=3, spatial_on_vectors=True, **FAST)
    for task in digits.tasks[:2]:
        learner.learn(task)
    learner.save(tmp_path / "podnet.pt")
    again = Learner.load(tmp_path / "podnet.pt")
    x = digits.tasks[1].x_test
    assert torch.equal(torch.as_tensor(again.predict(x)), torch.as_tensor(learner.predict(x)))
    assert again.method.model.head.scale.item() == learner.method.model.head.scale.item() != 1.0  # learned, kept
    again.learn(digits.tasks[2])  # and it goes on


@pytest.mark.exact
def test_a_run_resumed_after_task_two_gives_the_uninterrupted_numbers(digits, tmp_path):
    options = {"memory": 100, "proxies": 3, "finetune_epochs": 2, "spatial_on_vectors": True}
    whole = run_experiment("podnet", digits, "class", hidden=(32,), method_options=options, **FAST)
    two = make_scenario("split-digits")
    two.tasks = two.tasks[:2]
    run_experiment("podnet", two, "class", hidden=(32,), method_options=options, out_dir=tmp_path, **FAST)
    resumed = run_experiment("podnet", digits, "class", hidden=(32,), method_options=options, out_dir=tmp_path,
                             resume=True, **FAST)
    np.testing.assert_allclose(np.array(resumed["accuracy_matrix"], dtype=float),
                               np.array(whole["accuracy_matrix"], dtype=float), atol=1e-9)
    assert whole["method_details"]["stages"] == ["blocks.0"] and whole["method_details"]["proxies"] == 3


def test_runs_end_to_end_on_a_convolutional_backbone(digits):
    """resnet20 on the digits as 1x8x8 images, two tasks: POD-spatial over the three stages' maps."""
    tasks = digits.tasks[:2]
    x = torch.cat([t.x_train for t in tasks]).view(-1, 1, 8, 8)
    y = torch.cat([torch.as_tensor(t.classes)[t.y_train] for t in tasks])
    scenario = from_data(x[::3], y[::3], n_tasks=2, name="digits-images")
    torch.manual_seed(0)
    method = PODNet(ContinualModel(resnet20(in_channels=1)), memory=40, proxies=2, finetune_epochs=1)
    results = run(Learner(method, config=train_config("my-data", epochs=1, batch_size=32, progress=False)), scenario)
    assert method.describe()["stages"] == ["blocks.1", "blocks.2", "blocks.3"]
    assert results["accuracy_matrix"][1][0] is not None and results["final_average_accuracy"] > 0.3
