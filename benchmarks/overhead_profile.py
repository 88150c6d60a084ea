"""Where a batch-10 step's fixed cost went: each piece of per-step work the engine did beside the arithmetic,
timed alone (timeit, the best of 7 rounds, one thread), before and after the step loop was trimmed.

Removed from every step (training.py `_run_epochs`, `_descender`; inputs.py `input_batches`; Method.seen):
indexing's parsing (`x[idx]` against `x.index_select(0, idx)`, the same rows), the distributed share when alone
(a call and a view of each tensor), optimizer.zero_grad's profiler scope (the same `p.grad = None`), a slice of
every column of the logits (forward and backward), the call of a hook the method does not have, the list of an
epoch's batches made at its start (its memory grew with the steps). Left: what a bare loop pays as well (the
optimizer's step outside its kernel) and the model's own modules (ContinualModel > MLP > blocks).

    python benchmarks/overhead_profile.py
"""

import io
import os
import timeit

import torch
from _common import machine, pin_threads, save
from torch import nn
from tqdm import tqdm

from lifelong import distributed
from lifelong.methods import Finetune
from lifelong.models import MLP, ContinualModel


def best_us(fn, number: int = 2000) -> float:
    return min(timeit.Timer(fn).repeat(7, number)) / number * 1e6


def main():
    threads = pin_threads(1)
    torch.manual_seed(0)
    x = torch.randn(12665, 1, 32, 32)  # split-MNIST's first task
    y = torch.randint(0, 2, (12665,))
    idx = torch.randperm(12665)[:10]
    batch = x[idx]
    model = ContinualModel(MLP(1024, (400, 400)))
    model.head.add(2)
    method = Finetune(model, "class")
    method.before_task(type("T", (), {"id": 0, "n_classes": 2})())
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=0.0, fused=True)
    for p in params:
        p.grad = torch.zeros_like(p)
    logits = torch.randn(10, 2, requires_grad=True)
    epoch_loss, loss = torch.zeros(()), torch.tensor(1.0)
    bar = tqdm(total=10**9, file=io.StringIO(), mininterval=0.1)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(1024, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                         nn.Linear(400, 2))
    order = torch.randperm(60000)

    def share_alone():
        mine, _ = distributed.share(10)
        return batch[mine], y[:10][mine], y[:10][mine]

    def none_grad():
        for p in params:
            p.grad = None

    def sliced():
        logits[:, :2].sum().backward()

    def whole():
        logits.sum().backward()

    idx_128 = torch.randperm(12665)[:128]
    gather_128 = best_us(lambda: x[idx_128], 500), best_us(lambda: x.index_select(0, idx_128), 500)
    step_us = best_us(optimizer.step, 500)  # first: the parameters have gradients until a zero_grad
    rows = [  # (what, before, after): microseconds per step
        ("a batch of 10 images: x[idx] / x.index_select(0, idx)", best_us(lambda: x[idx]),
         best_us(lambda: x.index_select(0, idx))),
        ("targets and task ids: t[idx] / t.index_select(0, idx), two tensors",
         2 * best_us(lambda: y[idx]), 2 * best_us(lambda: y.index_select(0, idx))),
        ("the distributed share alone: share() and a view of each of 3 tensors / nothing", best_us(share_alone), 0.0),
        ("optimizer.zero_grad(set_to_none=True) / a loop over the parameters",
         best_us(lambda: optimizer.zero_grad(set_to_none=True)), best_us(none_grad)),
        ("the seen outputs: logits[:, :n] of every column, forward and backward / the logits",
         best_us(sliced) - best_us(whole), 0.0),
        ("a hook the method does not have (before_step) / not called", best_us(method.before_step), 0.0),
        ("the epoch's batches: order.split(10) made at its start, per step / a slice when reached",
         best_us(lambda: order.split(10), 20) / 6000, best_us(lambda: order[120:130])),
    ]
    kept = [  # (what, microseconds per step): the same before and after
        ("epoch loss summed as a tensor (epoch_loss += loss)", best_us(lambda: epoch_loss.add_(loss))),
        ("progress bar update, shown (to a file)", best_us(bar.update, 100000)),
        ("optimizer.step(), fused SGD, 6 tensors (a bare loop pays it too)", step_us),
        ("the library's model against a flat nn.Sequential, forward only (ContinualModel > MLP > blocks)",
         best_us(lambda: model(batch), 500) - best_us(lambda: flat(batch), 500)),
    ]
    before, after = sum(r[1] for r in rows), sum(r[2] for r in rows)
    load = os.getloadavg()
    lines = ["# Where a batch-10 step's fixed cost went (split-MNIST MLP 1024-400-400, one thread)\n",
             __doc__.strip().split("\n\n")[1] + "\n",
             "| per-step work | before (us) | after (us) |", "|---|---|---|"]
    lines += [f"| {what} | {b:.2f} | {a:.2f} |" for what, b, a in rows]
    lines += [f"| **total** | **{before:.1f}** | **{after:.1f}** |", "",
              f"At batch 128 the batch of images alone is {gather_128[0]:.0f} us by x[idx], {gather_128[1]:.0f} us by "
              "index_select.\n",
              "Unchanged, for scale (a step of this model at batch 10 takes about 1,100 us here):\n",
              "| per-step work | us |", "|---|---|"]
    lines += [f"| {what} | {us:.1f} |" for what, us in kept]
    lines.append(f"\nBest of 7 rounds of timeit; {threads} thread; load average {load[0]:.2f} when done. Timed alone, "
                 "with warm caches, these are lower bounds: within a step, between the model's large operations, the "
                 "same small operations cost more (the engine's own work per step measured in place: "
                 "overhead_fixed_cost.md, before and after).")
    document = {"removed_us": {what: {"before": b, "after": a} for what, b, a in rows},
                "total_us": {"before": before, "after": after},
                "batch_128_images_us": {"before": gather_128[0], "after": gather_128[1]}, "kept_us": dict(kept), "load_average": load,
                "machine": machine()}
    save("overhead_profile", document, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
