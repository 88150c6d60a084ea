"""LwF's cost per task against fine-tuning on the same task, in the same run (issue 3).

Protocol: task-incremental split-MNIST (32x32, MLP 400-400, batch 128, Adam 0.001, 4 epochs per task, the protocol default); the
training time of tasks 2..5 (task 1 is the same plain training for both), medians over repetitions that alternate
the two methods. LwF records the old heads' responses once per task (one forward pass of the old model over the
task's inputs) and then trains like fine-tuning plus a distillation term. Target: ratio <= 1.15.

    python benchmarks/lwf_cost.py [--repeats 5] [--epochs 1]
"""

import argparse
import statistics

import torch
from _common import data_dir, machine, pin_threads, save

from lifelong.engine import TrainConfig, run
from lifelong.experiment import build_method, build_model
from lifelong.scenarios import make_scenario


def time_per_task(name, scenario, epochs, seed):
    torch.manual_seed(seed)
    method = build_method(name, build_model(scenario), "task")
    config = TrainConfig(epochs=epochs, batch_size=128, lr=0.001, optimizer="adam", seed=seed, progress=False)
    results = run(method, scenario, config)
    return sum(results["train_time_s"][1:]), results["final_average_accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    scenario = make_scenario("split-mnist", data_dir=data_dir(), download=False)
    time_per_task("finetune", scenario, 1, 0)  # warm-up
    times = {"finetune": [], "lwf": []}
    accuracy = {}
    for r in range(args.repeats):
        for name in times:
            seconds, accuracy[name] = time_per_task(name, scenario, args.epochs, r)
            times[name].append(seconds)
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median["lwf"] / median["finetune"]
    print(f"training time of tasks 2-5: finetune {median['finetune']:.2f} s, lwf {median['lwf']:.2f} s "
          f"(medians of {args.repeats}, {threads} threads)")
    print(f"final average accuracy (last repeat): finetune {accuracy['finetune']:.4f}, lwf {accuracy['lwf']:.4f}")
    print(f"ratio: {ratio:.2f}")
    save("lwf_cost", {"times_s": times, "median_s": median, "ratio": ratio, "target": 1.15, "epochs": args.epochs,
                      "machine": machine()},
         f"# LwF cost per task against fine-tuning\n\n{__doc__.strip().split(chr(10) * 2)[1]}\n\n"
         f"| method | training time of tasks 2-5 (s, median of {args.repeats}) |\n|---|---|\n"
         f"| finetune | {median['finetune']:.2f} |\n| lwf | {median['lwf']:.2f} |\n\n"
         f"ratio lwf / finetune: **{ratio:.2f}** (target <= 1.15), {threads} threads.\n")


if __name__ == "__main__":
    main()
