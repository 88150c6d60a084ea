"""Every strategy's training time against fine-tuning's and a bare PyTorch loop's, interleaved in one run.

Protocol (issue 14): Hsu et al.'s split-MNIST, class-incremental (one growing head), MLP 1024-400-400, 4 epochs per
task, batch 128, Adam 0.001, one torch thread. Each repetition runs every row once, in a rotated order; a row's time
is the sum over tasks of `train_time_s` (training, importance, memory: everything but evaluation), and its figure
the minimum over repetitions, divided by fine-tuning's. Targets: mas, l-mas, ewc, online-ewc, si, l2 at most 1.4x
fine-tuning; LwF at most 1.15x. Hsu et al.'s LwF has no warm-up (`lwf-no-warmup`); Li & Hoiem's warm-up (`lwf`,
the default) is extra training the paper asks for. The bare loop is `overhead.py`'s, with 4 epochs and no evaluation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/strategy_cost.py [--repeats 3]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from _common import data_dir, machine, pin_threads, save
from torch import nn

from lifelong.experiment import run_experiment
from lifelong.benchmarks import make_scenario

ROWS = {  # row -> (method, options); the defaults unless said
    "finetune": ("finetune", {}),
    "lwf": ("lwf", {}),  # Li & Hoiem's warm-up included (the default)
    "lwf-no-warmup": ("lwf", {"warmup": False}),
    "mas": ("mas", {}),  # exact per-sample importance
    "l-mas": ("l-mas", {}),
    "ewc": ("ewc", {}),  # the true Fisher: one per-sample pass per output read (2 to 10 here)
    "ewc-sampled": ("ewc", {"fisher": "sampled"}),  # the true Fisher's Monte Carlo estimate: one per-sample pass
    "ewc-predicted": ("ewc", {"fisher": "predicted"}),  # one per-sample pass
    "online-ewc": ("online-ewc", {"fisher": "predicted"}),
    "si": ("si", {}),
    "l2": ("l2", {}),
}
TARGETS = {"lwf": 1.15, "lwf-no-warmup": 1.15, **{row: 1.4 for row in ROWS if row not in ("finetune", "lwf",
                                                                                          "lwf-no-warmup")}}


def bare_loop(scenario, seed: int = 0) -> float:
    """Seconds of plain training: the same model, batches and optimizer, written as plainly as PyTorch allows."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(1024, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU())
    heads = nn.ModuleList()
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for t, task in enumerate(scenario.tasks):
        heads.append(nn.Linear(400, task.n_classes))
        optimizer = torch.optim.Adam(list(backbone.parameters()) + list(heads.parameters()), lr=0.001, fused=True)
        x, y = task.x_train, task.y_train + 2 * t
        for _ in range(4):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), 128):
                idx = order[start:start + 128]
                features = backbone(x[idx])
                loss = F.cross_entropy(torch.cat([h(features) for h in heads], 1), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    threads = pin_threads()
    scenario = make_scenario("split-mnist", data_dir=data_dir(), download=False)
    names = ["bare", *ROWS]
    times = {name: [] for name in names}
    accuracy = {}
    bare_loop(scenario)  # first-call costs are nobody's
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotated: no row always first or last
            if name == "bare":
                times[name].append(bare_loop(scenario, r))
                continue
            method, options = ROWS[name]
            results = run_experiment(method, scenario, "class", seed=r, progress=False, method_options=options)
            times[name].append(sum(results["train_time_s"]))
            accuracy.setdefault(name, []).append(results["final_average_accuracy"])
            print(f"repetition {r + 1} {name}: {times[name][-1]:.2f} s", flush=True)
    best = {name: min(values) for name, values in times.items()}
    ratio = {name: best[name] / best["finetune"] for name in names}
    lines = ["# Every strategy's training cost against fine-tuning (split-MNIST, class-IL, 4 epochs)", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"{args.repeats} repetitions, {threads} torch thread(s), {machine()['cpu_count']} CPUs, "
             f"torch {torch.__version__}.", "",
             "| row | best time (s) | / fine-tuning | target | final accuracy (%) |", "|---|---|---|---|---|"]
    for name in names:
        target = TARGETS.get(name)
        verdict = "" if target is None else f"<= {target}: {'met' if ratio[name] <= target else 'NOT met'}"
        acc = f"{100 * sum(accuracy[name]) / len(accuracy[name]):.2f}" if name in accuracy else "-"
        lines.append(f"| {name} | {best[name]:.2f} | {ratio[name]:.2f} | {verdict} | {acc} |")
    print("\n".join(lines))
    save("strategy_cost", {"times_s": times, "best_s": best, "ratio_to_finetune": ratio, "targets": TARGETS,
                           "accuracy": accuracy, "machine": machine()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
