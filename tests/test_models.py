import torch
import torch.nn.functional as F

from lifelong.models import MLP, ContinualModel, IncrementalHead, resnet20, resnet32
from lifelong.transforms import crop_and_flip, random_crop, random_horizontal_flip


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_cifar_resnets_have_the_papers_parameter_counts():
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-32 0.46M parameters (with the 10-way classifier)
    assert round((n_params(resnet20()) + 64 * 10 + 10) / 1e6, 2) == 0.27
    assert round((n_params(resnet32()) + 64 * 10 + 10) / 1e6, 2) == 0.46


def test_resnet_features_and_option_a_shortcut():
    net = resnet20()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    block = net.blocks[2][0]  # first block of stage 2: 16 -> 32 channels, stride 2
    x = torch.randn(1, 16, 8, 8)
    shortcut = block.shortcut(x)
    assert shortcut.shape == (1, 32, 4, 4)
    assert torch.equal(shortcut[:, :16], x[:, :, ::2, ::2]) and not shortcut[:, 16:].any()


def test_mlp_blocks_and_flattening():
    mlp = MLP(1024, (400, 400))
    assert len(mlp.blocks) == 2 and mlp.out_features == 400
    assert mlp(torch.randn(5, 1, 32, 32)).shape == (5, 400)


def test_head_grows_without_touching_learned_outputs():
    head = IncrementalHead(8)
    assert head.add(2) == 0
    features = torch.randn(4, 8)
    before = head(features).detach()
    learned = [p.detach().clone() for p in head.parts[0].parameters()]
    assert head.add(3) == 2
    after = head(features)
    assert after.shape == (4, 5) and head.sizes == [2, 3]
    # the learned weights are untouched bit for bit; their outputs agree up to rounding (a product of 5 columns
    # is blocked differently from one of 2 by some BLAS kernels, which moves the last bit on some CPUs)
    assert all(torch.equal(a, b) for a, b in zip(learned, head.parts[0].parameters()))
    assert torch.allclose(after[:, :2], before, rtol=1e-6, atol=1e-6)


def test_concatenated_head_is_one_linear_layer():
    head = IncrementalHead(6)
    head.add(2)
    head.add(3)
    weight = torch.cat([p.weight for p in head.parts])
    bias = torch.cat([p.bias for p in head.parts])
    x = torch.randn(7, 6)
    assert torch.allclose(head(x), F.linear(x, weight, bias))


def test_continual_model_is_backbone_then_head():
    model = ContinualModel(MLP(4, (3,)))
    model.head.add(2)
    x = torch.randn(5, 4)
    assert torch.equal(model(x), model.head(model.features(x)))


def test_crop_with_known_offsets_and_flip_twice_is_identity():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    g = torch.Generator().manual_seed(0)
    crops = torch.stack([random_crop(x, 2, g) for _ in range(200)])
    assert crops.shape == (200, 2, 3, 5, 5)
    # padding 0 leaves the images alone; a crop is always a window of the zero-padded image
    assert torch.equal(random_crop(x, 0, g), x)
    padded = F.pad(x, (2, 2, 2, 2))
    windows = {(i, j) for i in range(5) for j in range(5)}
    for crop in crops[:20]:
        for n in range(2):
            assert any(torch.equal(crop[n], padded[n, :, i:i + 5, j:j + 5]) for i, j in windows)
    assert torch.equal(random_horizontal_flip(x, p=1.0), x.flip(3))
    assert torch.equal(random_horizontal_flip(x, p=0.0), x)


def test_crop_and_flip_is_seeded():
    x = torch.randn(16, 3, 32, 32)
    a = crop_and_flip(x, torch.Generator().manual_seed(3))
    b = crop_and_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
