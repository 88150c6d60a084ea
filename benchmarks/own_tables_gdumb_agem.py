"""GDumb's and A-GEM's own MNIST rows, on their protocols, beside the papers' numbers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_tables_gdumb_agem.py --seeds 3 [--rows gdumb-100-300,...]

GDumb (Prabhu et al., ECCV 2020, Table 3, MNIST class-incremental, 5 tasks of 2 classes): MLP-100 (two hidden layers
of 100) with memories 300 and 500, MLP-400 with 500 and 4400. The official recipe (drimpossible/GDumb,
scripts/replicate.sh): 128 passes over the memory, SGD momentum 0.9, SGDR from 0.05 to 0.0005, batches of 16,
gradients clipped to 10: our `gdumb` with `passes=128`, its other defaults being the official values. The paper's
table is the final model's accuracy on the whole test set; the official code logs the best test accuracy over the
passes (`best_prec1`): both are shown, from the same training (the test set is read after each pass to report
it, never to choose anything). Only the final model counts, so the retraining before the earlier tasks' evaluations
is skipped here. The network is theirs (src/models/mnist/mlp.py: two blocks Linear without bias, BatchNorm with
eps 1e-6, ReLU; `GDumbMLP` below) under our linear head, trained with their MNIST augmentation (RandomCrop with
padding 4, no flip: their loader's; `GDumbFinalModel.loss`); `--network plain` runs the library's MLP of the same widths
(no BatchNorm) and no augmentation instead, the rows then named `...-plain`. Our split-mnist is padded to 32x32 and normalised (theirs
28x28, normalised with MNIST's mean and std).

A-GEM (Chaudhry et al., ICLR 2019, permuted MNIST, facebookresearch/agem `fc_permute_mnist.py` with
`replicate_results_iclr19.sh`): 20 permutations of which the first 3 are kept for cross-validation, so 17 tasks; 1,000
training samples per task (`--examples-per-task` default), one epoch in batches of 10, SGD lr 0.1, MLP 784-256-256
(FC-S), one 10-way head, an episodic memory of 25 samples per class per task (250 per task) and reference batches of
256. Ours: `permuted-mnist-der` (28x28 in [0, 1], the permutation drawn per task from the seed), its tasks 4 to 20,
each cut to 1,000 samples drawn with the seed, `a-gem` with a reservoir of 17 x 250 = 4,250 samples (the official
memory: the last 25 of each class of each task, kept per task) and `reference=256`, `--stream`, domain setting.
Paper: average accuracy after the last task 89.1 +- 0.14 (its Table 7 / Fig. 1; 5 runs). Row `agem-pmnist-17-iclr19`:
the code as the paper ran it (agem @ 5e84338, 2019-01-04, before `--examples-per-task` existed: it came on 2019-02-26
with the ER code of Chaudhry et al.'s "Tiny Episodic Memories"): every task is the whole of TensorFlow's 55,000
training images, one epoch (5,500 steps of 10), the memory then 25 random samples per class at each task's end.
Row `agem-pmnist-17-iclr19-episodic`: that row with the paper's memory in place of the reservoir (`task_memory=250`,
250 random samples of each task added at its end; the code's are 25 per class), told the task boundaries.

Each run is saved as it ends in own_tables_gdumb_agem_runs/; a rerun skips it.
"""

import argparse
import json
import math
import statistics
import time

import torch

from _common import RESULTS, data_dir, pin_threads, save

from lifelong.benchmarks import make_scenario
from lifelong.engine import TrainConfig, run
from lifelong.experiment import build_model
from lifelong.methods import AGEM, GDumb
from lifelong.models import ContinualModel
from lifelong.results import machine, mean_spread, thread_note
from lifelong.scenarios import Task
from lifelong.transforms import random_crop

# row -> (hidden sizes, memory, the paper's mean, the paper's std)
GDUMB_ROWS = {
    "gdumb-100-300": ((100, 100), 300, 89.1, 0.4),
    "gdumb-100-500": ((100, 100), 500, 90.2, 0.4),
    "gdumb-400-500": ((400, 400), 500, 91.9, 0.5),
    "gdumb-400-4400": ((400, 400), 4400, 97.8, 0.1),
}
AGEM_ROW = {"agem-pmnist-17": ((256, 256), 17 * 250, 89.1, 0.14),
            # the same with the official code's initialisation (model/model.py: weights from a normal truncated at 2
            # std, std 0.1; biases 0.1), in place of PyTorch's: its share of the gap
            "agem-pmnist-17-tfinit": ((256, 256), 17 * 250, 89.1, 0.14),
            # the code as the ICLR 2019 paper ran it (agem @ 5e84338, 2019-01-04): no --examples-per-task yet, every
            # task is all of TensorFlow's 55,000 training images (5,500 steps of 10), not 1,000
            "agem-pmnist-17-iclr19": ((256, 256), 17 * 250, 89.1, 0.14),
            # the same with the paper's episodic memory (`task_memory=250`: 250 random samples of each task added at
            # its end, the task's own samples never in it; the code's: 25 per class) in place of the reservoir
            "agem-pmnist-17-iclr19-episodic": ((256, 256), 17 * 250, 89.1, 0.14)}
# training samples per task: the later code's --examples-per-task default (2019-02-26, for Chaudhry et al.'s "Tiny
# Episodic Memories"), or, for the ICLR 2019 code, the whole of TensorFlow's MNIST training split
AGEM_SAMPLES = {"agem-pmnist-17-iclr19": 55_000, "agem-pmnist-17-iclr19-episodic": 55_000}


def tensorflow_init(model) -> None:
    """The official A-GEM code's initialisation of every linear layer (the head's one part made first)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.trunc_normal_(module.weight, std=0.1, a=-0.2, b=0.2)
            torch.nn.init.constant_(module.bias, 0.1)
PASSES = 128  # official MNIST value (scripts/replicate.sh)


class GDumbMLP(torch.nn.Sequential):
    """GDumb's MNIST network (src/models/mnist/mlp.py, FCBlock): (Linear without bias, BatchNorm1d eps 1e-6, ReLU)
    twice; its last block (Linear, BatchNorm) is our head here."""

    def __init__(self, in_features: int, width: int):
        layers = []
        for n_in in (in_features, width):
            layers += [torch.nn.Linear(n_in, width, bias=False), torch.nn.BatchNorm1d(width, eps=1e-6), torch.nn.ReLU()]
        super().__init__(torch.nn.Flatten(), *layers)
        self.out_features = width


class GDumbFinalModel(GDumb):
    """GDumb whose model is made only before the last evaluation (the table's), with the test accuracy on every
    class read after each of its passes."""

    def __init__(self, *args, n_tasks: int, test: tuple[torch.Tensor, torch.Tensor], crop: bool = True, **options):
        super().__init__(*args, **options)
        self.n_tasks, self.test, self.evaluations, self.pass_accuracy = n_tasks, test, 0, []
        self.crop = crop

    def before_evaluation(self, fit):
        self.evaluations += 1
        if self.evaluations < self.n_tasks:
            return  # an earlier task's evaluation: its model is not in the table

        def pass_by_pass(data, optimizer, epochs, batch_size):
            for _ in range(epochs):  # the same schedule: SGDR's position is GDumb's own step count
                fit(data, optimizer, 1, batch_size)
                self.pass_accuracy.append(self.test_accuracy())

        super().before_evaluation(pass_by_pass)

    def loss(self, x, targets, task_ids):
        """The memory's training batches cropped as the official MNIST loader does (RandomCrop, padding 4; no flip)."""
        return super().loss(random_crop(x, 4) if self.crop else x, targets, task_ids)

    @torch.no_grad()
    def test_accuracy(self) -> float:
        self.model.eval()  # the next pass puts it back in training mode
        x, y = self.test
        correct = sum(int((self.predict(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(2048), y.split(2048)))
        return correct / len(y)


def gdumb_run(row: str, seed: int, scenario) -> dict:
    plain = row.endswith("-plain")
    hidden, memory, _, _ = GDUMB_ROWS[row.removesuffix("-plain")]
    test_x = torch.cat([t.x_test for t in scenario.tasks])
    test_y = torch.cat([t.y_test + sum(len(s.classes) for s in scenario.tasks[:t.id]) for t in scenario.tasks])
    torch.manual_seed(seed)
    model = (build_model(scenario, hidden=hidden) if plain else
             ContinualModel(GDumbMLP(math.prod(scenario.input_shape), hidden[0])))
    method = GDumbFinalModel(model, "class", memory=memory, passes=PASSES, crop=not plain,
                             n_tasks=len(scenario.tasks), test=(test_x, test_y))
    results = run(method, scenario, TrainConfig(stream=True, batch_size=10, seed=seed, progress=False))
    return {"last": method.pass_accuracy[-1], "best": max(method.pass_accuracy),
            "final_average_accuracy": results["final_average_accuracy"], "passes": len(method.pass_accuracy)}


def agem_scenario(seed: int, samples: int = 1000):
    full = make_scenario("permuted-mnist-der", data_dir=data_dir(), seed=seed)
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for new_id, task in enumerate(full.tasks[3:]):  # the first 3 permutations: the paper's cross-validation tasks
        keep = torch.randperm(len(task.y_train), generator=generator)[:samples]
        tasks.append(Task(new_id, task.classes, task.x_train[keep], task.y_train[keep], task.x_test, task.y_test))
    full.tasks, full.name = tasks, "permuted-mnist-agem"
    return full


def agem_run(row: str, seed: int, _scenario) -> dict:
    hidden, memory, _, _ = AGEM_ROW[row]
    scenario = agem_scenario(seed, AGEM_SAMPLES.get(row, 1000))
    torch.manual_seed(seed)
    model = build_model(scenario, hidden=hidden)
    if row.endswith("-tfinit"):
        model.head.add(10)
        tensorflow_init(model)
    episodic = row.endswith("-episodic")  # the memory filled at task ends: the boundaries told, not a stream
    method = AGEM(model, "domain", memory=memory, reference=256, task_memory=250 if episodic else None)
    config = TrainConfig(stream=not episodic, epochs=1, batch_size=10, lr=0.1, optimizer="sgd", momentum=0.0,
                         seed=seed, progress=False)
    results = run(method, scenario, config)
    return {"last": results["final_average_accuracy"], "final_average_accuracy": results["final_average_accuracy"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", default=",".join([*GDUMB_ROWS, *AGEM_ROW]))
    parser.add_argument("--network", choices=("official", "plain"), default="official",
                        help="GDumb's rows: its own MLP with BatchNorm, or the library's plain MLP")
    args = parser.parse_args()
    threads = pin_threads()
    runs_dir = RESULTS / "own_tables_gdumb_agem_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in GDUMB_ROWS and r not in AGEM_ROW]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {', '.join([*GDUMB_ROWS, *AGEM_ROW])}")
    split_mnist = make_scenario("split-mnist", data_dir=data_dir()) if any(r in GDUMB_ROWS for r in rows) else None
    for seed in range(args.seeds):
        for row in rows:
            run_row = gdumb_run if row in GDUMB_ROWS else agem_run
            if row in GDUMB_ROWS and args.network == "plain":
                row = row + "-plain"
            path = runs_dir / f"{row}_{seed}.json"
            if path.exists():
                continue
            started = time.perf_counter()
            result = run_row(row, seed, split_mnist)
            result.update(row=row, seed=seed, seconds=time.perf_counter() - started, threads=threads, machine=machine())
            path.write_text(json.dumps(result) + "\n")
            print(f"{row} seed {seed}: last {100 * result['last']:.2f}"
                  + (f", best {100 * result['best']:.2f}" if "best" in result else "")
                  + f" ({result['seconds']:.0f} s)", flush=True)
    table(runs_dir)


def table(runs_dir):
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]

    def cell(values):
        values = [100 * v for v in values]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{mean_spread(statistics.mean(values), std, len(values))} (n={len(values)})"

    lines = ["# GDumb's and A-GEM's own MNIST rows", "", __doc__.split("\n\n")[2].replace("\n", " "), "",
             __doc__.split("\n\n")[3].replace("\n", " "), "",
             "| row | paper | ours, last pass | ours, best pass (the official code's report) | flag | s per run |",
             "|---|---|---|---|---|---|"]
    document = {"rows": {}}
    plain = {f"{row}-plain": spec for row, spec in GDUMB_ROWS.items()}
    for row, (_, _, paper, paper_std) in {**GDUMB_ROWS, **plain, **AGEM_ROW}.items():
        mine = [r for r in runs if r["row"] == row]
        if not mine and row.endswith("-plain"):
            continue
        if not mine:
            lines.append(f"| {row} | {paper} +- {paper_std} | not run | | | |")
            continue
        last = 100 * statistics.mean(r["last"] for r in mine)
        off = abs(last - paper) > max(1.5, 2 * paper_std)
        best = cell([r["best"] for r in mine]) if "best" in mine[0] else "-"
        seconds = statistics.mean(r["seconds"] for r in mine)
        lines.append(f"| {row} | {paper} +- {paper_std} | {cell([r['last'] for r in mine])} | {best} | "
                     f"{'**off**' if off else ''} | {seconds:.0f} |")
        document["rows"][row] = {"paper": paper, "paper_std": paper_std, "runs": mine}
    lines += ["", "flag: the last-pass mean more than 1.5 points or 2 paper std from the paper.", "",
              thread_note(runs) if runs else ""]
    save("own_tables_gdumb_agem", document, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
