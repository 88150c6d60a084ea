"""Per-sample importance (MAS's sum |g_k|, EWC's sum g_k^2) is exact on any network, not only the library's:
checked against a loop over the samples, one autograd call each, on a zoo of small models."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong.errors import ConfigError
from lifelong.methods.regularization import per_sample_statistic
from lifelong.models import ContinualModel


class VGGLike(nn.Module):
    """Convolutions and Linear layers each followed by an in-place ReLU (VGG, AlexNet)."""

    out_features = 8

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                        nn.Linear(16, 8), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.classifier(self.features(x))


class ResidualWithBatchNorm(nn.Module):
    out_features = 4

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))

    def forward(self, x):
        h = self.stem(x)
        return F.relu(h + self.block(h)).mean((2, 3))


class Transformer(nn.Module):
    """A transformer encoder block on 8 tokens of 8 features (its Linear layers see (batch, tokens, features)),
    then a Linear applied to the (batch x tokens, features) reshape, then mean pooling."""

    out_features = 8

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.token_map = nn.Linear(8, 8)

    def forward(self, x):
        tokens = self.encoder(x.reshape(len(x), 8, 8))
        mapped = self.token_map(tokens.reshape(-1, 8)).reshape(len(x), 8, 8)
        return torch.tanh(mapped).mean(1)


class Recurrent(nn.Module):
    out_features = 8

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x):
        return self.lstm(x.reshape(len(x), 8, 8))[0][:, -1]


ZOO = [VGGLike, ResidualWithBatchNorm, Transformer, Recurrent]


def model_of(backbone_cls):
    torch.manual_seed(0)
    model = ContinualModel(backbone_cls())
    model.head.add(3)
    for module in model.modules():  # batch-norm statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def mas_objective(out):
    return (out**2).sum(1)


def ewc_objective(out, labels):
    return F.cross_entropy(out, labels, reduction="none")


def loop(model, objective, x, *args, transform):
    """sum_k transform(d objective_k / d theta), one sample at a time, in evaluation mode."""
    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for k in range(len(x)):
        value = objective(model(x[k:k + 1]), *(a[k:k + 1] for a in args)).sum()
        grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
        for n, g in zip(params, grads):
            if g is not None:
                total[n] += g.abs() if transform == "abs" else g**2
    return total


@pytest.mark.parametrize("backbone", ZOO, ids=[cls.__name__ for cls in ZOO])
@pytest.mark.parametrize("transform", ["abs", "square"])
def test_per_sample_importance_equals_a_loop_over_samples(backbone, transform):
    model = model_of(backbone)
    x = torch.randn(6, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    objective, args = (mas_objective, ()) if transform == "abs" else (ewc_objective, (labels,))
    expected = loop(model, objective, x, *args, transform=transform)
    model.train()  # the statistic switches to evaluation mode itself
    ours = per_sample_statistic(model, objective, x, *args, transform=transform)
    assert set(ours) == set(expected)
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    assert model.training  # and gives the mode back
    assert sum(int((v != 0).any()) for v in ours.values()) == sum(int((v != 0).any()) for v in expected.values())


def test_mas_on_a_vgg_like_network_is_exact_end_to_end():
    """The same through MAS's own statistic (F's squared l2 norm over the outputs read)."""
    from lifelong.experiment import build_method

    model = model_of(VGGLike)
    method = build_method("mas", model, "class", {})
    method.before_task(type("T", (), {"id": 0, "n_classes": 3, "classes": [0, 1, 2]})())
    x = torch.randn(10, 1, 8, 8)
    ours = method.statistic(x, None)
    expected = loop(model, lambda out: method.function_norm(out, None), x, transform="abs")
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_model_torch_func_cannot_take_is_refused_clearly(monkeypatch):
    import lifelong.methods.regularization as regularization

    def unsupported(*args, **kwargs):
        raise RuntimeError("vmap: this operation is not supported\nmore")

    monkeypatch.setattr(regularization, "vmap", lambda *a, **k: unsupported)
    with pytest.raises(ConfigError, match="use estimate=batch"):
        per_sample_statistic(model_of(ResidualWithBatchNorm), mas_objective, torch.randn(2, 1, 8, 8))


def test_l_mas_refuses_a_network_it_cannot_protect():
    """l-MAS's importance is the co-activation of a Linear weight's two units; convolutions and batch norm have
    none, so it refuses them rather than leaving them unprotected."""
    from lifelong.experiment import build_method

    with pytest.raises(ConfigError, match="protects Linear layers only"):
        build_method("l-mas", model_of(ResidualWithBatchNorm), "class", {})
    build_method("l-mas", ContinualModel(MLPLike()), "class", {})  # Linear layers only: accepted


class MLPLike(nn.Module):
    out_features = 8

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU())

    def forward(self, x):
        return self.layers(x)
