"""Knowledge distillation (Hinton, Vinyals & Dean 2015), shared by every method that distils (KD, LwF, BiC).

Softmax with temperature T:           q_i = exp(z_i / T) / sum_j exp(z_j / T)
Soft targets of a teacher:            p_i = softmax(v / T)_i, v the teacher's logits
Soft (distillation) term:             C_soft = - sum_i p_i log q_i      (cross-entropy, averaged over the batch)
                                      dC_soft/dz_i = (q_i - p_i) / T    (Hinton's equation 2)
Hard term:                            C_hard = cross-entropy of softmax(z) (T = 1) with the true labels
Combined (Hinton's recipe):           loss = soft_weight * T^2 * C_soft + hard_weight * C_hard

The soft gradients scale as 1/T^2, so Hinton multiplies the soft term by T^2 to keep its share of the gradient
when T changes (`t2_scaling=True`); dividing the hard term by T^2 instead differs only by a constant factor.
LwF (Li & Hoiem) uses the soft term alone, at T = 2, without the T^2 factor.
"""

import math

import torch
import torch.nn.functional as F

from .checks import check_weight
from .errors import ConfigError


def check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"the distillation temperature must be a positive number, got {temperature!r}")


def softmax_with_temperature(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """q_i = exp(z_i / T) / sum_j exp(z_j / T) over the last dimension. T > 1 gives softer distributions."""
    check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def soft_targets(teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """p = softmax(v / T): the teacher's soft targets, constants for the student (no gradient flows to them).
    A method that distils towards fixed responses (LwF's recorded Y_o) makes them once, not at every step."""
    return softmax_with_temperature(teacher_logits.detach(), temperature)


def soft_cross_entropy(student_logits: torch.Tensor, targets: torch.Tensor, temperature: float = 2.0,
                       t2_scaling: bool = True) -> torch.Tensor:
    """C_soft = - sum_i p_i log q_i, batch mean, q = softmax(student / T), for soft targets p (rows summing to 1;
    a 0 gives its class no weight); times T^2 when `t2_scaling`."""
    check_temperature(temperature)
    if student_logits.shape != targets.shape:
        raise ConfigError(f"the student's logits and the teacher's (soft targets) differ in shape: "
                          f"{tuple(student_logits.shape)} vs {tuple(targets.shape)}")
    if temperature != 1:  # (at T = 1, skip a division and its backward)
        student_logits = student_logits / temperature
    loss = -(targets * F.log_softmax(student_logits, dim=-1)).sum(dim=-1).mean()
    return loss * temperature**2 if t2_scaling else loss


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
    t2_scaling: bool = True,
) -> torch.Tensor:
    """C_soft = - sum_i p_i log q_i, batch mean, with p = softmax(teacher / T), q = softmax(student / T);
    times T^2 when `t2_scaling`. The teacher's logits are treated as constants (no gradient flows to them)."""
    return soft_cross_entropy(student_logits, soft_targets(teacher_logits, temperature), temperature, t2_scaling)


def knowledge_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None,
    temperature: float = 20.0,
    soft_weight: float = 1.0,
    hard_weight: float = 1.0,
    t2_scaling: bool = True,
) -> torch.Tensor:
    """Hinton's objective: soft_weight * [T^2] * C_soft + hard_weight * C_hard (C_hard skipped without targets)."""
    check_weight("soft_weight", soft_weight)
    check_weight("hard_weight", hard_weight)
    loss = soft_weight * distillation_loss(student_logits, teacher_logits, temperature, t2_scaling)
    if targets is not None and hard_weight > 0:
        loss = loss + hard_weight * F.cross_entropy(student_logits, targets)
    return loss
