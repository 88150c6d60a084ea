"""Li & Hoiem's comparison on our benchmarks: LwF against fine-tuning, Finetune-FC, feature extraction and joint
training, each with its old-task and new-task accuracy, with and without the warm-up step (issue 3).

Protocol: task-incremental (one head per task, as in the paper) split-MNIST and split-Fashion-MNIST, 5 tasks of
2 classes, MLP 400-400 (Finetune-FC freezes the first hidden layer), Adam 0.001, batch 128, 4 epochs per task;
warm-up: 1 epoch training the new head alone on frozen features. After the last task: "old" is the mean accuracy
over tasks 1-4, "new" the accuracy on task 5. Mean over seeds.

    python benchmarks/lwf_paper_comparison.py [--seeds 2] [--epochs 4]
"""

import argparse
import statistics
import time

import torch
from _common import data_dir, machine, pin_threads, save

from lifelong.experiment import run_experiment
from lifelong.scenarios import make_scenario

METHODS = ("finetune", "finetune-fc", "feature-extraction", "lwf", "joint")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--scenarios", default="split-mnist,split-fashion")
    args = parser.parse_args()
    threads = pin_threads()
    rows, started = [], time.time()
    for scenario_name in args.scenarios.split(","):
        for seed in range(args.seeds):
            scenario = make_scenario(scenario_name, data_dir=data_dir(), seed=seed, download=False)
            for warmup in (0, 1):
                for method in METHODS:
                    r = run_experiment(method, scenario, "task", epochs=args.epochs, warmup_epochs=warmup,
                                       seed=seed, progress=False)
                    last = r["accuracy_matrix"][-1]
                    rows.append(dict(scenario=scenario_name, method=method, warmup=warmup, seed=seed,
                                     old=statistics.mean(last[:-1]), new=last[-1], time_s=r["wall_time_s"]))
                    print(f"{scenario_name} seed {seed} warm-up {warmup} {method:<20} old {rows[-1]['old']:.4f} "
                          f"new {rows[-1]['new']:.4f} ({r['wall_time_s']:.0f} s)", flush=True)
    lines = [f"# LwF against the baselines of Li & Hoiem, task-incremental\n\n{__doc__.strip().split(chr(10) * 2)[1]}\n",
             f"{args.seeds} seeds, {args.epochs} epochs per task, {threads} threads, "
             f"{(time.time() - started) / 60:.1f} minutes in all.\n",
             "| scenario | method | old tasks, no warm-up | new task, no warm-up | old tasks, warm-up | new task, warm-up |",
             "|---|---|---|---|---|---|"]
    for scenario_name in args.scenarios.split(","):
        for method in METHODS:
            cells = []
            for warmup in (0, 1):
                sel = [r for r in rows if r["scenario"] == scenario_name and r["method"] == method
                       and r["warmup"] == warmup]
                cells += [f"{100 * statistics.mean(r['old'] for r in sel):.2f}",
                          f"{100 * statistics.mean(r['new'] for r in sel):.2f}"]
            lines.append(f"| {scenario_name} | {method} | " + " | ".join(cells) + " |")
    lines.append("\n## What the numbers say\n\n(observations are written here by hand after a run)\n")
    save("lwf_paper_comparison", {"rows": rows, "machine": machine(), "args": vars(args)}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
