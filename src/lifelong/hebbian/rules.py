"""The learning rules themselves, as plain tensor functions (no scikit-learn): what the continual-learning methods
(`competitive`, `neural-gas`, l-MAS) call, without importing the estimators built on them."""

import numpy as np
import torch


def coactivation(pre, post=None):
    """The Hebbian co-activation statistic: the averaged outer product over N samples,

        C_ij = (1/N) sum_k pre_i^k post_j^k,   i.e.  C = pre^T post / N,

    of `pre` (N, n_pre) and `post` (N, n_post), numpy arrays or torch tensors (the result has the same type);
    `post` defaults to `pre` (Hebb's w_ij = (1/p) sum_k x_i^k x_j^k). `HebbianMemory` stores patterns with it;
    the local MAS variant reads synapse importance from it.
    """
    post = pre if post is None else post
    if pre.ndim != 2 or post.ndim != 2 or pre.shape[0] != post.shape[0] or pre.shape[0] == 0:
        raise ValueError(f"coactivation needs two 2-D arrays with the same number (> 0) of rows (samples), got "
                         f"shapes {tuple(pre.shape)} and {tuple(post.shape)}")
    return pre.T @ post / pre.shape[0]


def accumulate_coactivation(total, pre, post, weight: float = 1.0):
    """total += weight * sum_k pre_k^T post_k, in place (torch tensors): the running, unnormalised form of
    `coactivation` for statistics gathered batch by batch (the local MAS importance); returns `total`."""
    return total.addmm_(pre.T, post, alpha=weight)


def squared_distances(x: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """|x_k - w_j|^2 for every input row k and unit j, (B, K), through one matrix product."""
    d = (x * x).sum(1, keepdim=True) - 2 * x @ units.T + (units * units).sum(1)
    return d.clamp_min_(0)


def winner_update(units: torch.Tensor, x: torch.Tensor, winners: torch.Tensor, learning_rate: float) -> torch.Tensor:
    """In place: each unit moves toward the inputs it won, w_c += (1 - (1 - eta)^n_c) (mean_c - w_c); returns
    the number of inputs each unit won."""
    counts = torch.bincount(winners, minlength=len(units)).to(units.dtype)
    sums = torch.zeros_like(units).index_add_(0, winners, x.to(units.dtype))
    won = counts > 0
    step = 1 - (1 - learning_rate) ** counts[won]
    units[won] += step[:, None] * (sums[won] / counts[won, None] - units[won])
    return counts


def annealed(initial: float, final: float, t: int, t_max: int) -> float:
    """p_i (p_f / p_i)^(t / t_max), held at p_f after t_max."""
    return initial * (final / initial) ** min(t / t_max, 1.0)


def neural_gas_step(units, ages, x, eps: float, lam: float, max_age: float) -> None:
    """One neural-gas step on input x (1-D), in place. `units` (K, D) and `ages` (K, K) are numpy arrays or
    torch tensors; ages[i, j] is the age of the edge i-j, inf where there is none."""
    xp = torch if isinstance(units, torch.Tensor) else np
    diff = x - units
    order = (diff * diff).sum(1).argsort()
    rank = xp.empty_like(order)
    rank[order] = xp.arange(len(order)) if xp is np else torch.arange(len(order), device=order.device)
    units += eps * xp.exp(-rank / lam)[:, None] * diff
    if len(order) < 2:
        return
    winner, runner_up = order[0], order[1]
    ages[winner] += 1  # only the winner's edges age (inf + 1 = inf: no edge stays no edge)
    ages[:, winner] += 1
    ages[winner, runner_up] = ages[runner_up, winner] = 0
    old = ages[winner] > max_age
    ages[winner, old] = ages[old, winner] = float("inf")
