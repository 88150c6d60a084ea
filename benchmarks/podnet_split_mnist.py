"""Class-incremental split-MNIST: podnet beside replay, on the MLP or on resnet20 (one seed; a quick look, not a table).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/podnet_split_mnist.py --backbone resnet20 --per-task 500 \
        --epochs 2 --memory 200 --rows replay,podnet
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/podnet_split_mnist.py --backbone mlp --memory 2000 \
        --rows replay,podnet:lambda_spatial=0

The scenario's defaults (Adam 0.001, batch 128, 4 epochs) unless --optimizer, --lr, --epochs. --per-task N keeps N training and N test
samples of each task (a seeded draw), for a convolutional backbone on a CPU. A row is a method name with options
after a colon (`podnet:lambda_spatial=0;nca=paper`). Prints one JSON line per row.
"""

import argparse
import json
import time
from dataclasses import replace

import torch

from _common import data_dir

from lifelong.benchmarks import make_scenario
from lifelong.experiment import run_experiment


def value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="mlp")
    parser.add_argument("--per-task", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--memory", type=int, default=2000)
    parser.add_argument("--optimizer", default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--rows", default="replay,podnet")
    args = parser.parse_args()
    scenario = make_scenario("split-mnist", data_dir=data_dir())
    if args.per_task:
        g = torch.Generator().manual_seed(0)
        tasks = []
        for t in scenario.tasks:
            keep = torch.randperm(len(t.y_train), generator=g)[:args.per_task]
            test = torch.randperm(len(t.y_test), generator=g)[:args.per_task]
            tasks.append(replace(t, x_train=t.x_train[keep], y_train=t.y_train[keep], x_test=t.x_test[test],
                                 y_test=t.y_test[test]))
        scenario = replace(scenario, tasks=tasks)
    for row in args.rows.split(","):
        name, _, extra = row.partition(":")
        options = {"memory": args.memory}
        options.update({k: value(v) for k, v in (kv.split("=") for kv in extra.split(";") if kv)})
        started = time.perf_counter()
        r = run_experiment(name, scenario, "class", backbone=args.backbone, epochs=args.epochs, method_options=options,
                           optimizer=args.optimizer, lr=args.lr,
                           progress=False)
        print(json.dumps({"row": row, "backbone": args.backbone, "per_task": args.per_task,
                          "average_accuracy": [round(100 * a, 2) for a in r["average_accuracy"]],
                          "last_row": [round(100 * a, 1) for a in r["accuracy_matrix"][-1]],
                          "train_time_s": [round(s, 1) for s in r["train_time_s"]],
                          "wall_s": round(time.perf_counter() - started, 1),
                          "scale": r["method_details"].get("scale")}), flush=True)


if __name__ == "__main__":
    main()
