import pytest
import torch
import torch.nn.functional as F

from lifelong.distillation import distillation_loss, knowledge_distillation_loss, softmax_with_temperature
from lifelong.errors import ConfigError


@pytest.mark.parametrize("temperature, expected", [(1, [0.0911, 99.9089]), (5, [19.78, 80.22]), (10, [33.18, 66.82])])
def test_temperature_softmax_known_values(temperature, expected):
    # the values quoted for logits z = [3, 10]
    q = softmax_with_temperature(torch.tensor([3.0, 10.0]), temperature) * 100
    assert q.tolist() == pytest.approx(expected, abs=0.005)


def test_soft_gradient_is_hintons_equation_2():
    torch.manual_seed(0)
    z = torch.randn(4, 6, requires_grad=True)
    v = torch.randn(4, 6)
    T = 3.0
    distillation_loss(z, v, T, t2_scaling=False).backward()
    expected = (F.softmax(z / T, 1) - F.softmax(v / T, 1)) / T / len(z)  # batch mean
    assert torch.allclose(z.grad, expected.detach(), atol=1e-6)


def test_t2_scaling_keeps_the_gradient_size_at_high_temperature():
    # high-temperature limit: dC/dz_i ~ (z_i - v_i) / (N T^2) for zero-mean logits, so T^2 * C keeps it fixed
    torch.manual_seed(1)
    z = torch.randn(1, 10)
    z -= z.mean()
    v = torch.randn(1, 10)
    v -= v.mean()
    grads = []
    for T in (50.0, 100.0):
        zz = z.clone().requires_grad_(True)
        distillation_loss(zz, v, T, t2_scaling=True).backward()
        grads.append(zz.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-2, atol=1e-3)
    assert torch.allclose(grads[1], (z - v) / 10, rtol=1e-2, atol=1e-3)


def test_combined_loss_and_teacher_gets_no_gradient():
    torch.manual_seed(2)
    z = torch.randn(5, 3, requires_grad=True)
    v = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    loss = knowledge_distillation_loss(z, v, y, temperature=4.0, soft_weight=0.7, hard_weight=0.3)
    soft = -(F.softmax(v / 4, 1) * F.log_softmax(z / 4, 1)).sum(1).mean() * 16
    assert loss.item() == pytest.approx((0.7 * soft + 0.3 * F.cross_entropy(z, y)).item(), rel=1e-6)
    loss.backward()
    assert v.grad is None


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(temperature=-1.0), dict(soft_weight=-0.1),
                                    dict(hard_weight=-2), dict(temperature=float("nan"))])
def test_bad_values_are_clear_errors(kwargs):
    with pytest.raises(ConfigError, match="temperature|weight"):
        knowledge_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), None, **kwargs)


def test_soft_targets_made_once_give_the_same_loss_and_gradient_as_teacher_logits():
    from lifelong.distillation import soft_cross_entropy, soft_targets

    torch.manual_seed(0)
    student, teacher = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4)
    targets = soft_targets(teacher, 3.0)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    loss = soft_cross_entropy(student, targets, 3.0)
    reference = distillation_loss(student, teacher, 3.0)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, student)
    # Hinton's equation 2 with the T^2 factor: dC/dz_i = T (q_i - p_i) / batch
    torch.testing.assert_close(grad, 3.0 * (torch.softmax(student.detach() / 3, 1) - targets) / 6)
    with pytest.raises(ConfigError, match="differ in shape"):
        soft_cross_entropy(student, targets[:, :3], 3.0)
