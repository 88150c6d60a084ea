"""LUCIR (Hou et al. 2019): the cosine head, the less-forget and margin ranking losses by hand, imprinting, the last
ReLU removed, and the method end to end."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong import Learner
from lifelong.benchmarks import make_scenario
from lifelong.cli import main
from lifelong.engine import TrainConfig, run
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.methods.lucir import lambda_weight, less_forget_loss, margin_ranking_loss
from lifelong.models import MLP, ContinualModel, CosineHead, resnet20

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def fresh(scenario, seed=0, **options):
    torch.manual_seed(seed)
    return build_method("lucir", build_model(scenario, hidden=(32,)), "class", {"memory": 100, **options})


# ---------------------------------------------------------------------- the cosine head
def test_cosine_similarities_and_their_gradients_are_those_of_the_normalised_product():
    from lifelong.models.cosine import cosine_similarities

    generator = torch.Generator().manual_seed(0)
    f = torch.randn(5, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    w = torch.randn(11, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, 11, generator=generator, dtype=torch.float64)
    ours = torch.autograd.grad(cosine_similarities(f, w), (f, w), upstream)
    reference = torch.autograd.grad(F.normalize(f, dim=1) @ F.normalize(w, dim=1).T, (f, w), upstream)
    assert torch.allclose(cosine_similarities(f, w), F.normalize(f, dim=1) @ F.normalize(w, dim=1).T)
    for a, b in zip(ours, reference):
        assert torch.allclose(a, b, atol=1e-12)


def test_cosine_head_logits_are_sigma_times_the_cosines_computed_by_hand():
    head = CosineHead(2, sigma=3.0)
    head.add(1)
    head.add(2)
    with torch.no_grad():
        head.parts[0].weight.copy_(torch.tensor([[3.0, 4.0]]))
        head.parts[1].weight.copy_(torch.tensor([[0.0, -2.0], [1.0, 1.0]]))
    f = torch.tensor([[1.0, 0.0], [2.0, 2.0]])
    # cos(f, w) = f.w / (|f| |w|): row 1: f = (1, 0): 3/5, 0, 1/sqrt2; row 2: f = (2, 2): 14/(sqrt8*5), -1/sqrt2, 1
    expected = 3.0 * torch.tensor([[3 / 5, 0.0, 1 / math.sqrt(2)], [14 / (math.sqrt(8) * 5), -1 / math.sqrt(2), 1.0]])
    assert torch.allclose(head(f), expected, atol=1e-6)
    assert torch.allclose(head.cosines(f), expected / 3, atol=1e-6)
    assert head.sizes == [1, 2] and head.out_features == 3 and head.add(4) == 3
    assert [p.requires_grad for p in head.parameters()] == [True] * 4  # sigma and three parts: sigma learned


def test_imprinted_rows_are_normalised_class_means_scaled_to_the_old_rows_mean_norm():
    head = CosineHead(2)
    head.add(2)
    with torch.no_grad():
        head.parts[0].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 4.0]]))  # norms 2 and 4: mean 3
    head.add(3)
    untouched = head.parts[1].weight[2].clone()
    features = torch.tensor([[1.0, 0.0], [0.0, 5.0], [3.0, 4.0]])  # normalised: (1,0), (0,1), (.6,.8)
    head.imprint(features, torch.tensor([0, 0, 1]))  # class 2 of the part: no sample
    # class 0: mean of (1,0) and (0,1) = (.5,.5) -> (1,1)/sqrt2 * 3; class 1: (.6,.8) * 3
    assert torch.allclose(head.parts[1].weight[0], torch.tensor([3, 3]) / math.sqrt(2), atol=1e-6)
    assert torch.allclose(head.parts[1].weight[1], torch.tensor([1.8, 2.4]), atol=1e-6)
    assert torch.equal(head.parts[1].weight[2], untouched)


# ---------------------------------------------------------------------- the losses by hand
def test_less_forget_loss_is_one_minus_the_cosine_of_new_and_old_features_averaged():
    new = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    old = torch.tensor([[1.0, 1.0], [0.0, 7.0], [-3.0, -4.0]])
    # cosines: 1/sqrt2, 1, -1
    expected = ((1 - 1 / math.sqrt(2)) + 0 + 2) / 3
    assert less_forget_loss(new, old).item() == pytest.approx(expected, abs=1e-6)
    # the official code's form: CosineEmbeddingLoss with target 1
    official = nn.CosineEmbeddingLoss()(new, old, torch.ones(3))
    assert less_forget_loss(new, old).item() == pytest.approx(official.item(), abs=1e-6)


def test_margin_ranking_loss_ranks_old_samples_against_the_k_hardest_new_classes():
    # 2 old classes (0, 1), 3 new (2, 3, 4); cosines before the scale. Per pair: max(m - own + hardest, 0), m = .5
    cosines = torch.tensor([[0.9, 0.1, 0.5, 0.2, 0.6],    # old class 0: hardest new .6, .5 -> .2, .1
                            [0.0, 0.3, -0.5, 0.4, 0.1],   # old class 1: hardest .4, .1 -> .6, .3
                            [0.2, 0.2, 0.9, 0.8, 0.7],    # new class 2: not ranked
                            [0.1, 0.9, 0.0, -0.2, -0.3]])  # old class 1: hardest 0, -.2 -> 0, 0 (-.4, -.6 clipped)
    targets = torch.tensor([0, 1, 2, 1])
    expected = (0.2 + 0.1 + 0.6 + 0.3 + 0 + 0) / 6  # the mean over the 3 old samples x K = 2 pairs (the code's)
    assert margin_ranking_loss(cosines, targets, n_old=2, k=2, margin=0.5).item() == pytest.approx(expected, abs=1e-6)
    # the official code's form: MarginRankingLoss between the repeated ground-truth cosine and the top-K new ones
    hard = targets < 2
    gt = cosines[hard].gather(1, targets[hard, None]).repeat(1, 2).view(-1, 1)
    top = cosines[hard, 2:].topk(2, dim=1)[0].view(-1, 1)
    official = nn.MarginRankingLoss(margin=0.5)(gt, top, torch.ones(6, 1))
    assert margin_ranking_loss(cosines, targets, 2, 2, 0.5).item() == pytest.approx(official.item(), abs=1e-6)
    # K = 1: the hardest only (.2, .6, 0)
    assert margin_ranking_loss(cosines, targets, 2, 1, 0.5).item() == pytest.approx(0.8 / 3, abs=1e-6)
    assert margin_ranking_loss(cosines, torch.tensor([2, 3, 4, 2]), 2, 2, 0.5).item() == 0.0  # no old sample


def test_lambda_is_lambda_base_times_the_root_of_old_over_new_in_the_code_new_over_old_in_the_paper():
    assert lambda_weight(5.0, "code", 6, 2) == pytest.approx(5 * math.sqrt(3))
    assert lambda_weight(5.0, "paper", 6, 2) == pytest.approx(5 / math.sqrt(3))
    assert lambda_weight(5.0, "none", 6, 2) == 5.0


def test_the_methods_loss_is_ce_of_sigma_cosines_plus_lambda_less_forget_plus_margin_ranking(digits):
    method = fresh(digits, lambda_base=2.0, k=1, margin=0.3, mr_weight=0.5)
    method.before_task(digits.tasks[0])
    method.after_task(digits.tasks[0])
    method.before_task(digits.tasks[1])  # 2 old classes, 2 new: lambda = 2 * sqrt(2 / 2) = 2
    assert method.lamb == pytest.approx(2.0) and method.n_old_outputs == 2
    method.old_model = None  # as training_data leaves it once it has recorded the old features
    x = torch.cat([digits.tasks[0].x_train[:3], digits.tasks[1].x_train[:3]])
    targets = torch.tensor([0, 1, 0, 2, 3, 3])
    old = torch.randn(6, 32)
    f = method.model.features(x)
    cos = F.normalize(f, dim=1) @ F.normalize(method.model.head.weight, dim=1).T
    sigma = method.model.head.sigma
    ce = F.cross_entropy(sigma * cos, targets)
    lf = (1 - F.cosine_similarity(f, old)).mean()
    mr = torch.stack([F.relu(0.3 - cos[i, targets[i]] + cos[i, 2:].max()) for i in range(3)]).mean()
    assert method.loss(x, targets, None, old).item() == pytest.approx((ce + 2.0 * lf + 0.5 * mr).item(), abs=1e-5)


# ---------------------------------------------------------------------- the last ReLU
def test_the_library_backbones_drop_their_last_relu_and_lucir_asks_them_to():
    torch.manual_seed(0)
    mlp = MLP(6, (5, 4))
    x = torch.randn(20, 6)
    before = mlp(x)
    assert before.min() >= 0
    mlp.remove_final_activation()
    after = mlp(x)
    assert torch.equal(after, mlp.blocks[-1][0](mlp.blocks[0](x)))  # the last Linear's output, negatives kept
    assert after.min() < 0 and torch.equal(F.relu(after), before)
    net = resnet20(1)
    images = torch.randn(4, 1, 32, 32)
    assert net.eval()(images).min() >= 0
    net.remove_final_activation()
    assert net(images).min() < 0  # averaged pre-activation sums: some negative
    method = fresh(make_scenario("split-digits"))
    assert isinstance(method.model.head, CosineHead)
    assert isinstance(method.model.backbone.blocks[-1][1], nn.Identity)
    resnet = build_method("lucir", ContinualModel(resnet20(1)), "class", {"memory": 100}).model.backbone
    blocks = [m for m in resnet.modules() if hasattr(m, "final_relu")]
    assert [b.final_relu for b in blocks] == [True] * (len(blocks) - 1) + [False]  # the last block's only


def test_a_backbone_without_the_contract_is_refused_unless_told_to_keep_its_relu():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
    with pytest.raises(ConfigError, match="no remove_final_activation.*remove_last_relu=False"):
        build_method("lucir", ContinualModel(backbone, 16), "class", {"memory": 100})
    method = build_method("lucir", ContinualModel(backbone, 16), "class", {"memory": 100, "remove_last_relu": False})
    assert isinstance(backbone[2], nn.ReLU) and method.describe()["last_relu_removed"] is False


# ---------------------------------------------------------------------- before each step; end to end
def test_new_rows_are_imprinted_old_rows_frozen_and_left_unchanged_by_training(digits):
    method = fresh(digits)
    method.before_task(digits.tasks[0])
    method.after_task(digits.tasks[0])
    old_rows = method.model.head.parts[0].weight.detach().clone()
    task = digits.tasks[1]
    f = F.normalize(method.features(task.x_train), dim=1)
    method.before_task(task)
    head = method.model.head
    assert not head.parts[0].weight.requires_grad and head.parts[1].weight.requires_grad and head.sigma.requires_grad
    passes = []
    method.features = lambda x: passes.append(len(x))  # the recorded features serve: no pass of its own
    x, *_, recorded = method.training_data(task)  # imprinted here, before any step
    assert passes == [] and len(x) == len(task.x_train) + 100
    assert torch.allclose(F.normalize(recorded[:len(task.x_train)], dim=1), f, atol=1e-6)
    for c in range(2):
        mean = F.normalize(f[task.y_train == c].mean(0), dim=0)
        assert torch.allclose(head.parts[1].weight[c], mean * old_rows.norm(dim=1).mean(), atol=1e-5)
    assert method.lamb == pytest.approx(5.0)  # sqrt(2 old / 2 new) = 1


def test_lucir_runs_end_to_end_keeps_old_rows_and_beats_finetuning(digits):
    results, learner = run_experiment("lucir", digits, "class", hidden=(32,), method_options={"memory": 100},
                                      return_learner=True, **FAST)
    finetune = run_experiment("finetune", digits, "class", hidden=(32,), **FAST)
    assert results["final_average_accuracy"] > finetune["final_average_accuracy"] + 0.2
    details = results["method_details"]
    assert details["classifier"] == "cnn" and details["lambda_ratio"] == "code" and details["k"] == 2
    assert details["lambda_last_step"] == pytest.approx(5 * math.sqrt(8 / 2)) and details["last_relu_removed"]
    assert details["memory"]["selection"] == "herding" and details["balanced_finetune"] is None
    assert learner.method.model.head.sizes == [2, 2, 2, 2, 2]


def test_nme_classifies_by_the_nearest_exemplar_mean_and_the_balanced_finetuning_moves_only_the_rows(digits):
    method = fresh(digits, classifier="nme", finetune_epochs=2, finetune_lr=0.05)
    config = TrainConfig(seed=0, **FAST)
    seen = []

    class Spy(type(method)):
        def balanced_finetune(self, n_old):
            backbone = {k: v.clone() for k, v in self.model.backbone.state_dict().items()}
            rows, sigma = self.model.head.weight.detach().clone(), self.model.head.sigma.item()
            super().balanced_finetune(n_old)
            assert all(torch.equal(v, self.model.backbone.state_dict()[k]) for k, v in backbone.items())
            assert self.model.head.sigma.item() == sigma and not torch.equal(rows, self.model.head.weight)
            seen.append(n_old)

    torch.manual_seed(0)
    spy = Spy(build_model(digits, hidden=(32,)), "class", memory=100, classifier="nme", finetune_epochs=2,
              finetune_lr=0.05)
    results = run(spy, digits, config)
    assert seen == [2, 4, 6, 8]  # after every step but the first, with the old classes of that step
    x = digits.tasks[0].x_test
    f = F.normalize(spy.model.eval().features(x), dim=1)
    assert torch.equal(spy.predict(x).argmax(1), torch.cdist(f, spy.class_means).argmin(1))
    assert results["method_details"]["classifier"] == "nme"
    assert results["method_details"]["balanced_finetune"] == {"epochs": 2, "lr": 0.05}


def test_a_saved_learner_loads_and_predicts_the_same(digits, tmp_path):
    learner = Learner("lucir", hidden=(32,), memory=60, **FAST)
    for task in digits.tasks[:2]:
        learner.learn(task.x_train, np.asarray(task.classes)[task.y_train.numpy()])
    learner.save(tmp_path / "lucir.pt")
    again = Learner.load(tmp_path / "lucir.pt")
    x = torch.cat([t.x_test for t in digits.tasks[:2]])
    assert isinstance(again.method.model.head, CosineHead)
    sigma = learner.method.model.head.sigma.item()
    assert sigma != pytest.approx(10.0, abs=1e-3) and again.method.model.head.sigma.item() == sigma  # learned, kept
    assert torch.allclose(again.decision_function(x), learner.decision_function(x), atol=1e-6)
    assert again.method.describe() == learner.method.describe()  # lambda and sigma included
    assert np.array_equal(again.predict(x), learner.predict(x))
    task = digits.tasks[2]  # and it goes on learning
    again.learn(task.x_train, np.asarray(task.classes)[task.y_train.numpy()])
    assert again.method.model.head.sizes == [2, 2, 2]


@pytest.mark.exact
def test_a_run_interrupted_after_task_2_resumes_to_the_same_numbers(digits, tmp_path):
    config = TrainConfig(seed=3, **FAST)
    reference = run(fresh(digits, seed=3), digits, config, out_dir=tmp_path / "whole")

    class Interrupted(type(fresh(digits))):
        def before_task(self, task):
            if task.id == 2:
                raise KeyboardInterrupt
            super().before_task(task)

    torch.manual_seed(3)
    interrupted = Interrupted(build_model(digits, hidden=(32,)), "class", memory=100)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, digits, config, out_dir=tmp_path / "cut")
    resumed = run(fresh(digits, seed=3), digits, config, out_dir=tmp_path / "cut", resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]


# ---------------------------------------------------------------------- bad options
@pytest.mark.parametrize("options, message", [
    ({"classifier": "softmax"}, "unknown lucir classifier 'softmax'; choose one of: cnn, nme"),
    ({"lambda_ratio": "old"}, "unknown lucir lambda_ratio 'old'; choose one of: code, paper, none"),
    ({"k": 0}, "lucir k must be an integer >= 1"),
    ({"margin": -0.5}, "lucir margin must be a finite number >= 0"),
    ({"lambda_base": float("nan")}, "lucir lambda_base must be a finite number >= 0"),
    ({"remove_last_relu": "yes"}, "remove_last_relu must be true or false"),
    ({"finetune_epochs": -1}, "lucir finetune_epochs must be an integer >= 0"),
    ({"sigma": 0}, "lucir sigma must be a number in (0.0, inf]"),
])
def test_bad_options_are_refused_in_one_line(digits, options, message):
    with pytest.raises(ConfigError) as error:
        fresh(digits, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_task_setting_a_preallocated_head_and_too_few_new_classes_are_refused(digits, capsys, tmp_path):
    with pytest.raises(ConfigError, match="lucir is a class-incremental method"):
        build_method("lucir", build_model(digits, hidden=(32,)), "task", {"memory": 100})
    with pytest.raises(ConfigError, match="preallocate_head"):
        run_experiment("lucir", digits, "class", hidden=(32,), method_options={"memory": 100},
                       preallocate_head=True, **FAST)
    assert main(["run", "--method", "lucir", "--memory", "100", "--param", "k=3", "--epochs", "1",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "k=3 hardest new classes, but task 2 brings 2: lower k" in err[0], err
