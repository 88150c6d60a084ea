"""Measured causes for the flagged S-MNIST cells of `lifelong reproduce buzzega2020-der` (see
benchmarks/results/buzzega2020_der_notes.md; Mammoth's own numbers on this machine: buzzega2020_der_mammoth.md).

Two measurements, each with the reproduction's own plan for the row (lifelong.reproduce_der.plan: Mammoth's
best_args, plain SGD, one epoch, MLP 100-100, the rehearsal rows and SGD from a stream), in the class setting:

- inputs: the rows on `split-mnist-der` (28x28 in [0, 1], Mammoth's seq-mnist inputs) beside the reproduction's
  `split-mnist` (32x32, normalised): does the input alone close the class-IL gap?
- masked task-IL: the paper's task-IL is its class-IL run evaluated with the other tasks' outputs masked (Mammoth's
  `mask_classes`), not a run with a head per task. The engine measures exactly that for every class-setting run
  (`task_aware_accuracy_matrix`: the best output within the task's own outputs); its final average is the masked
  task-IL. Reported for every run here, next to the class-IL.

- the head, for A-GEM (told the boundaries: its memory is filled at task ends): a head grown task by task (the loss
  over the classes seen; variant growing-head) beside Mammoth's (every class's output in the head and the loss from
  the start: mammoth-head, the reproduction's plan now).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/der_smnist_causes.py [--cells der-200@split-mnist-der,...]
        [--seeds 3]

Finished runs are kept in benchmarks/results/buzzega2020_der_causes.json and skipped when the command is rerun.
"""

import argparse
import contextlib
import json
import math
import statistics
import sys
import time

from _common import RESULTS, data_dir, machine, pin_threads
from torch import nn

from lifelong.benchmarks import make_scenario
from lifelong.experiment import run_experiment
from lifelong.reproduce_der import plan
from lifelong.results import machine_line, summary

NAME = "buzzega2020_der_causes"
# row of the reproduction -> (its row, buffer); the paper's S-MNIST class-IL and task-IL
ROWS = {"sgd": ("sgd", None), "lwf": ("lwf", None), "er-200": ("er", 200), "der-200": ("der", 200),
        "der-500": ("der", 500), "der++-200": ("der++", 200), "icarl-200": ("icarl", 200),
        "a-gem-200": ("a-gem", 200), "a-gem-500": ("a-gem", 500), "a-gem-5120": ("a-gem", 5120)}
PAPER = {"sgd": (19.60, 94.94), "lwf": (19.62, 94.11), "er-200": (80.43, 97.86), "der-200": (84.55, 98.80),
         "der-500": (90.54, 98.84), "der++-200": (85.61, 98.76), "icarl-200": (70.51, 98.28),
         "a-gem-200": (45.72, 98.61), "a-gem-500": (46.66, 98.93), "a-gem-5120": (54.24, 98.93)}
DEFAULT_CELLS = ("der-200@split-mnist-der,der++-200@split-mnist-der,der-500@split-mnist-der,sgd@split-mnist,"
                 "lwf@split-mnist,sgd@split-mnist-der,der-200@split-mnist-der@xavier,der++-200@split-mnist-der@xavier,"
                 "der-500@split-mnist-der@xavier,icarl-200@split-mnist-der,icarl-200@split-mnist-der@xavier,"
                 "a-gem-200@split-mnist-der@growing-head,a-gem-500@split-mnist-der@growing-head,"
                 "a-gem-5120@split-mnist-der@growing-head,"
                 "a-gem-200@split-mnist-der@mammoth-head,a-gem-500@split-mnist-der@mammoth-head,"
                 "a-gem-5120@split-mnist-der@mammoth-head")  # as run
VARIANTS = ("default", "xavier", "mammoth-head", "growing-head")


def plan_of(row: str) -> dict:
    """The reproduction's plan for the row's S-MNIST class-IL cell."""
    return plan(ROWS[row][0], "s-mnist-class", ROWS[row][1])


def _xavier(self: nn.Linear) -> None:
    """Mammoth's backbone.xavier for one Linear layer."""
    a = math.sqrt(3.0) * math.sqrt(2.0 / (self.in_features + self.out_features))
    nn.init.uniform_(self.weight, -a, a)
    if self.bias is not None:
        nn.init.zeros_(self.bias)


@contextlib.contextmanager
def initialised(init: str):
    """Mammoth's initialisation of every linear layer for the "xavier" variant; PyTorch's otherwise."""
    default = nn.Linear.reset_parameters
    if init == "xavier":
        nn.Linear.reset_parameters = _xavier
    try:
        yield
    finally:
        nn.Linear.reset_parameters = default


def run_one(row: str, scenario_name: str, seed: int, init: str = "default") -> dict:
    how = dict(plan_of(row))
    scenario = make_scenario(scenario_name, data_dir=data_dir(), download=False, seed=seed)
    started = time.perf_counter()
    method, options, hidden = how.pop("method"), how.pop("method_options"), tuple(how.pop("hidden"))
    how.pop("scenario")  # the plan's (split-mnist-der): the cell names its own
    # the head of a row told the boundaries: Mammoth's one layer, every output in the loss from the first task (the
    # plan's for A-GEM), or one grown task by task with the loss over the classes seen
    if init == "mammoth-head":
        how["preallocate_head"] = "all"
    if init == "growing-head":
        how.pop("preallocate_head", None)
    with initialised(init):
        results = run_experiment(method, scenario, "class", seed=seed, hidden=hidden, method_options=options,
                                 progress=False, **how)
    last = results["task_aware_accuracy_matrix"][-1]
    return {"row": row, "scenario": scenario_name, "init": init, "seed": seed,
            "class_il": 100 * results["final_average_accuracy"],
            "masked_task_il": 100 * statistics.mean(last), "plan": plan_of(row),
            "wall_s": round(time.perf_counter() - started, 1)}


def _cell(run: dict) -> tuple[str, str, str]:
    return run["row"], run["scenario"], run.get("init", "default")


def markdown(document: dict) -> str:
    lines = ["# Buzzega et al. 2020 (DER), S-MNIST: the flagged cells' suspected causes, measured", "",
             "Ours (lifelong, the reproduction's plan per row: Mammoth's first best_args, plain SGD, one epoch, MLP "
             "100-100, class setting; the rehearsal rows and SGD from a stream) on `split-mnist` (the reproduction's "
             "S-MNIST: 32x32 padded, normalised) and `split-mnist-der` (Mammoth's seq-mnist inputs: 28x28 in [0, 1]). "
             "class-IL: the final average accuracy; masked task-IL: the same run, each task's test set scored on that "
             "task's outputs only (Mammoth's task-IL). Mean +- sample std over seeds 0..n-1. Made by "
             "benchmarks/der_smnist_causes.py.", "",
             "Variants: default (the plan as it is); xavier (Mammoth's initialisation of every linear layer); "
             "mammoth-head (every class's output in the head and the loss from the first task, Mammoth's one linear "
             "layer: `preallocate_head=\"all\"`); growing-head (a row told the boundaries with its head grown per "
             "task, the loss over the classes seen).", "",
             "| row | scenario | variant | class-IL paper | ours | masked task-IL paper | ours |",
             "|---|---|---|---|---|---|---|"]
    cells = []
    for run in document["runs"]:
        if _cell(run) not in cells:
            cells.append(_cell(run))
    for row, scenario, init in sorted(cells, key=lambda c: (list(ROWS).index(c[0]), c[1], c[2])):
        runs = [r for r in document["runs"] if _cell(r) == (row, scenario, init)]
        lines.append(f"| {row} | {scenario} | {init} | {PAPER[row][0]:.2f} | "
                     f"{summary([r['class_il'] for r in runs])} | "
                     f"{PAPER[row][1]:.2f} | {summary([r['masked_task_il'] for r in runs])} |")
    lines += ["", "Per seed (class-IL / masked task-IL):", ""]
    for run in document["runs"]:
        lines.append(f"- {run['row']} on {run['scenario']} ({_cell(run)[2]}), seed {run['seed']}: "
                     f"{run['class_il']:.2f} / "
                     f"{run['masked_task_il']:.2f} ({run['wall_s']} s)")
    lines += ["", f"Made on: {machine_line(document['machine'])}, {document['machine']['torch_threads']} torch "
              "thread(s), shared with other jobs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=DEFAULT_CELLS,
                        help="ROW@SCENARIO[@VARIANT],... (variants: " + ", ".join(VARIANTS) + "; rows: " + ", ".join(ROWS) + ")")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    pin_threads()
    cells = [(cell.split("@") + ["default"])[:3] for cell in args.cells.split(",")]
    bad = [cell for cell in cells if cell[0] not in ROWS or cell[2] not in VARIANTS]
    if bad:
        sys.exit(f"bad cells {bad}: ROW@SCENARIO[@VARIANT] with a row among {', '.join(ROWS)} and a variant among "
                 f"{', '.join(VARIANTS)}")
    path = RESULTS / f"{NAME}.json"
    document = json.loads(path.read_text()) if path.exists() else {"runs": []}
    document["machine"] = machine()
    for seed in range(args.seeds):
        for row, scenario, init in cells:
            if any(_cell(r) == (row, scenario, init) and r["seed"] == seed for r in document["runs"]):
                continue
            run = run_one(row, scenario, seed, init)
            print(f"{row} on {scenario} ({init}) seed {seed}: class-IL {run['class_il']:.2f}, masked task-IL "
                  f"{run['masked_task_il']:.2f} ({run['wall_s']} s)", flush=True)
            document["runs"].append(run)
            path.write_text(json.dumps(document, indent=2) + "\n")
            (RESULTS / f"{NAME}.md").write_text(markdown(document))


if __name__ == "__main__":
    main()
