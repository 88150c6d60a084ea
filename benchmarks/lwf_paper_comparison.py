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
from lifelong.benchmarks import make_scenario

METHODS = ("finetune", "finetune-fc", "feature-extraction", "lwf", "joint")


# Written after looking at the measured numbers (a rerun keeps them: revise them when the numbers change)
NOTES = """## What the numbers say (one seed; observations written after the run)

- As in Li & Hoiem, LwF keeps the old tasks far better than fine-tuning and Finetune-FC without any old data
  (split-Fashion: 98.9 against 91.6 and 95.0 on the old tasks) and is within 0.3 point of joint training, the upper
  bound that keeps all the data; on the new task it matches fine-tuning (99.2 vs 99.2 on MNIST, 99.8 vs 99.8 on
  Fashion) and beats feature extraction (99.2 vs 94.2, 99.8 vs 97.3), whose frozen features were learned on the
  first task alone. That is the paper's ordering.
- Feature extraction cannot forget (its old columns never change) but its "old" accuracy is what frozen
  first-task features give each later task when it is learned: lower than LwF's here.
- Warm-up: the paper reports that the warm-up step "greatly enhances fine-tuning's old-task performance, but is not
  so crucial" to LwF. LwF is indeed unchanged by it (99.56 -> 99.58, 98.95 -> 98.86). For fine-tuning we see the
  opposite of the paper: old-task accuracy drops with a 1-epoch warm-up (98.28 -> 96.88 on MNIST, 91.58 -> 83.80 on
  Fashion). Our reading: with a warmed-up head the new task's loss is already low, Adam's first steps on the shared
  layers are then driven by a few hard samples and drift further from the old tasks' features. This is one seed
  with our small MLPs on 2-class tasks, not the paper's AlexNet/VGG on ImageNet -> VOC etc.; we do not claim more.
"""


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
    lines.append("\n" + NOTES.rstrip())
    save("lwf_paper_comparison", {"rows": rows, "machine": machine(), "args": vars(args)}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
