"""How far the class-IL league's convolutional protocol trains ResNet-20: the accuracy of its first step alone
(20 Omniglot characters, 15 training drawings each, no continual learning yet) by the number of epochs, beside the
MLP of the league's other split-Omniglot protocol.

The league's `class-il-league-split-omniglot-conv` trains each step with split-omniglot's defaults (10 epochs, Adam
0.001, batch 64): 300 drawings a step make 5 batches an epoch, 50 steps a task. Here the first step is trained by
fine-tuning (the same for every method of the league: nothing is old yet) for 10, 30 and 100 epochs, and tested on
its 20 characters' test drawings; 3 seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/conv_first_step.py [--epochs 10 30 100] [--seeds 3]
"""

import argparse
import statistics
from dataclasses import replace

from _common import data_dir, pin_threads, save

from lifelong.benchmarks import make_scenario
from lifelong.experiment import run_experiment


def first_step(scenario, backbone: str, epochs: int, seed: int) -> tuple[float, float]:
    """(accuracy on the first step's classes, training seconds) of fine-tuning on the first step alone."""
    one = replace(scenario, tasks=scenario.tasks[:1])
    results = run_experiment("finetune", one, "class", seed=seed, backbone=backbone, epochs=epochs, progress=False)
    return results["final_average_accuracy"], sum(results["train_time_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    threads = pin_threads(1)
    scenario = make_scenario("split-omniglot", data_dir=data_dir(), download=False)
    rows = []
    for backbone in ("resnet20", "mlp"):
        for epochs in args.epochs:
            runs = [first_step(scenario, backbone, epochs, seed) for seed in range(args.seeds)]
            accuracies = [100 * a for a, _ in runs]
            row = {"backbone": backbone, "epochs": epochs, "accuracies": accuracies,
                   "mean": statistics.mean(accuracies),
                   "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                   "train_s": statistics.mean(s for _, s in runs)}
            print(row, flush=True)
            rows.append(row)
    lines = ["# The league's convolutional protocol: how far one step trains ResNet-20", "",
             *[" ".join(p.split()) + "\n" for p in __doc__.split("\n\n")[1:2]],
             f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/conv_first_step.py --epochs "
             f"{' '.join(map(str, args.epochs))} --seeds {args.seeds}`; {threads} torch thread.", "",
             "| backbone | epochs | first step's accuracy (%), mean +- std (n) | training time (s) |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['backbone']} | {row['epochs']} | {row['mean']:.1f} +- {row['std']:.1f} "
                     f"({len(row['accuracies'])}) | {row['train_s']:.1f} |")
    save("conv_first_step", {"rows": rows, "threads": threads}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
