"""Buzzega et al. 2020 (NeurIPS), "Dark Experience for General Continual Learning", Table 2 on MNIST and Table 3
(MNIST-360): `lifelong reproduce buzzega2020-der`.

    lifelong reproduce buzzega2020-der --rows sgd,er,der,der++ --benchmarks s-mnist-class --seeds 3 --data-dir DATA

The protocol is data here: the benchmarks (BENCHMARKS), the rows (ROWS), the buffers, the paper's numbers (PAPER)
and the hyper-parameters of Mammoth's `utils/best_args.py` as its first release (the paper's code, commit d20f640)
has them (BEST_ARGS). Their protocol: plain SGD (no momentum), one epoch, the MLP 784-100-100 (`hidden=(100, 100)`),
the incoming batch `batch_size` and the buffer draw `minibatch_size` of best_args. The rehearsal rows and SGD learn
from a stream (`stream=True`: no task boundaries told); oEWC, SI, LwF, iCaRL and JOINT need task boundaries and run
in the ordinary setting with one epoch per task, as in the paper; so does A-GEM on P-, R- and S-MNIST, whose memory
Mammoth's `agem` fills at task ends (`task_memory`: buffer // tasks random samples of each), where MNIST-360's
A-GEM-R keeps a reservoir over the stream.

Every run (row, benchmark, buffer, seed) is written to its own file under OUT/buzzega2020_der_runs/ as it ends; the
same command continues an interrupted reproduction (finished runs are skipped; a run saved with another protocol
is refused, naming its file); OUT/buzzega2020_der.md and .json are rewritten from every run on disk after each one.
"""

import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from .benchmarks import make_scenario
from .errors import ConfigError, TrainingError
from .experiment import run_experiment
from .grid import run_grid
from .results import machine, read_runs, summary, thread_note, time_left, versions, write_json
from .storage import lock_folder, write_text

REPRODUCTIONS = ("buzzega2020-der",)  # described in catalog.REPRODUCTIONS
NAME = "buzzega2020_der"  # the files' stem

# benchmark -> (label, our scenario, setting, Mammoth's dataset name in best_args, buffers)
BENCHMARKS = {
    "p-mnist": ("P-MNIST (domain-IL)", "permuted-mnist-der", "domain", "perm-mnist", (200, 500, 5120)),
    "r-mnist": ("R-MNIST (domain-IL)", "rotated-mnist", "domain", "rot-mnist", (200, 500, 5120)),
    "s-mnist-class": ("S-MNIST class-IL", "split-mnist-der", "class", "seq-mnist", (200, 500, 5120)),
    "s-mnist-task": ("S-MNIST task-IL", "split-mnist-der", "task", "seq-mnist", (200, 500, 5120)),
    "mnist-360": ("MNIST-360", "mnist-360", "domain", "mnist-360", (200, 500, 1000)),
}

TASKS = {"p-mnist": 20, "r-mnist": 20, "s-mnist-class": 5, "s-mnist-task": 5}  # Mammoth's N_TASKS
# the rows told the boundaries that train Mammoth's head on S-MNIST class-IL (every output in the cross-entropy from the
# first task: `preallocate_head="all"`); Mammoth's LwF and iCaRL (first release) slice their outputs to the classes
# seen (`outputs[:, mask]`, `[:, :ac]`): the growing head's loss, kept
MAMMOTH_HEAD = ("a-gem", "online-ewc", "si", "joint")

# row -> (label, our method, learns from a stream, keeps a buffer, Mammoth's model name in best_args (None: it has
# none; the row borrows `borrow`'s)); the borrowing is in BORROW
ROWS = {
    "sgd": ("SGD", "finetune", True, False, "sgd"),
    "online-ewc": ("oEWC", "online-ewc", False, False, "ewc_on"),
    "si": ("SI", "si", False, False, "si"),
    "lwf": ("LwF", "lwf", False, False, "lwf"),
    "er": ("ER", "er", True, True, "er"),
    "a-gem": ("A-GEM (MNIST-360: A-GEM-R)", "a-gem", True, True, "agem"),
    "icarl": ("iCaRL", "icarl", False, True, "icarl"),
    "der": ("DER", "der", True, True, "der"),
    "der++": ("DER++", "der++", True, True, "derpp"),
    "er-ace": ("ER-ACE (not in the paper)", "er-ace", True, True, None),
    "gdumb": ("GDumb (not in the paper)", "gdumb", True, True, None),
    "task-free-mas": ("task-free MAS (not in the paper)", "task-free-mas", True, False, None),
    "joint": ("JOINT", "joint", False, False, None),
}
# the rows without best_args of their own train with another row's lr, batch and buffer draw (GDumb's memory
# training keeps its own defaults, the paper's); JOINT with SGD's; task-free MAS with oEWC's, the regularisation
# row's, where Mammoth has one (at SGD's lr 0.2 on P-MNIST its loss becomes NaN in the first task: measured), else
# SGD's (MNIST-360). The first of the candidates with best_args on the benchmark's dataset lends them
BORROW = {"er-ace": ("er",), "gdumb": ("er",), "task-free-mas": ("online-ewc", "sgd"), "joint": ("sgd",)}
MAMMOTH_360 = {"a-gem": "agem_r"}  # MNIST-360's A-GEM row is A-GEM-R (a reservoir buffer): as ours

# Mammoth's utils/best_args.py at d20f640 (2020-11-18, "fix minibatch sizes"; the first release, 7ab9db9, the same
# otherwise), the MNIST part: {dataset: {model: {buffer (-1: none): arguments}}}
_S = lambda lr, b: {"lr": lr, "batch_size": b, "n_epochs": 1}  # noqa: E731
_B = lambda lr, mb, b, **kw: {"lr": lr, "minibatch_size": mb, "batch_size": b, "n_epochs": 1, **kw}  # noqa: E731
BEST_ARGS = {
    "perm-mnist": {
        "sgd": {-1: _S(0.2, 128)},
        "ewc_on": {-1: {**_S(0.1, 128), "e_lambda": 0.7, "gamma": 1.0}},
        "si": {-1: {**_S(0.1, 128), "c": 0.5, "xi": 1.0}},
        "er": {m: _B(0.2, 128, 128) for m in (200, 500, 5120)},
        "agem": {m: _B(0.1, 128, 128) for m in (200, 500, 5120)},
        "der": {200: _B(0.2, 128, 128, alpha=1.0), 500: _B(0.2, 128, 128, alpha=1.0),
                5120: _B(0.2, 128, 128, alpha=0.5)},
        "derpp": {200: _B(0.1, 128, 128, alpha=1.0, beta=1.0), 500: _B(0.2, 128, 128, alpha=1.0, beta=0.5),
                  5120: _B(0.2, 128, 128, alpha=0.5, beta=1.0)},
    },
    "rot-mnist": {
        "sgd": {-1: _S(0.2, 128)},
        "ewc_on": {-1: {**_S(0.1, 128), "e_lambda": 0.7, "gamma": 1.0}},
        "si": {-1: {**_S(0.1, 128), "c": 1.0, "xi": 1.0}},
        "er": {m: _B(0.2, 128, 128) for m in (200, 500, 5120)},
        "agem": {200: _B(0.1, 128, 128), 500: _B(0.3, 128, 128), 5120: _B(0.3, 128, 128)},
        "der": {200: _B(0.2, 128, 128, alpha=1.0), 500: _B(0.2, 128, 128, alpha=0.5),
                5120: _B(0.2, 128, 128, alpha=0.5)},
        "derpp": {200: _B(0.1, 128, 128, alpha=1.0, beta=0.5), 500: _B(0.2, 128, 128, alpha=0.5, beta=1.0),
                  5120: _B(0.2, 128, 128, alpha=0.5, beta=0.5)},
    },
    "seq-mnist": {
        "sgd": {-1: _S(0.03, 10)},
        "ewc_on": {-1: {**_S(0.03, 10), "e_lambda": 90, "gamma": 1.0}},
        "si": {-1: {**_S(0.1, 10), "c": 1.0, "xi": 0.9}},
        "lwf": {-1: {**_S(0.03, 10), "alpha": 1, "softmax_temp": 2.0, "wd_reg": 0.0005}},
        "er": {200: _B(0.01, 10, 10), 500: _B(0.1, 10, 10), 5120: _B(0.1, 10, 10)},
        "agem": {m: _B(0.1, 128, 10) for m in (200, 500, 5120)},
        "icarl": {m: _B(0.1, 10, 10, wd_reg=0) for m in (200, 500, 5120)},
        "der": {200: _B(0.03, 10, 10, alpha=0.2), 500: _B(0.03, 128, 10, alpha=1.0),
                5120: _B(0.1, 128, 10, alpha=0.5)},
        "derpp": {200: _B(0.03, 128, 10, alpha=0.2, beta=1.0), 500: _B(0.03, 10, 10, alpha=1.0, beta=0.5),
                  5120: _B(0.1, 64, 10, alpha=0.2, beta=0.5)},
    },
    "mnist-360": {  # no n_epochs: one pass over the stream
        "sgd": {-1: {"lr": 0.1, "batch_size": 4}},
        "er": {200: {"lr": 0.2, "batch_size": 1, "minibatch_size": 16},
               500: {"lr": 0.2, "batch_size": 1, "minibatch_size": 16},
               1000: {"lr": 0.2, "batch_size": 4, "minibatch_size": 16}},
        "agem_r": {200: {"lr": 0.1, "batch_size": 16, "minibatch_size": 128},
                   500: {"lr": 0.1, "batch_size": 16, "minibatch_size": 128},
                   1000: {"lr": 0.1, "batch_size": 4, "minibatch_size": 128}},
        "der": {200: {"lr": 0.1, "batch_size": 16, "minibatch_size": 64, "alpha": 0.5},
                500: {"lr": 0.2, "batch_size": 16, "minibatch_size": 16, "alpha": 0.5},
                1000: {"lr": 0.1, "batch_size": 8, "minibatch_size": 16, "alpha": 0.5}},
        "derpp": {200: {"lr": 0.2, "batch_size": 16, "minibatch_size": 16, "alpha": 0.5, "beta": 1.0},
                  500: {"lr": 0.2, "batch_size": 16, "minibatch_size": 16, "alpha": 0.5, "beta": 1.0},
                  1000: {"lr": 0.2, "batch_size": 16, "minibatch_size": 128, "alpha": 0.2, "beta": 1.0}},
    },
}

# The paper's final average accuracy (%): Table 2 (P-MNIST, R-MNIST, S-MNIST class- and task-IL) and Table 3
# (MNIST-360). A row without a buffer: one number; a rehearsal row: one per buffer (200, 500, 5120; MNIST-360 200,
# 500, 1000); None: not in the paper. The paper's standard deviations are not quoted here (not found in the
# sources available): only the 1.5-point rule flags.
PAPER = {
    "sgd": {"p-mnist": 40.70, "r-mnist": 67.66, "s-mnist-class": 19.60, "s-mnist-task": 94.94, "mnist-360": 19.09},
    "online-ewc": {"p-mnist": 75.79, "r-mnist": 77.35, "s-mnist-class": 20.46, "s-mnist-task": 98.39},
    "si": {"p-mnist": 65.86, "r-mnist": 71.91, "s-mnist-class": 19.27, "s-mnist-task": 96.00},
    "lwf": {"s-mnist-class": 19.62, "s-mnist-task": 94.11},
    "er": {"p-mnist": (72.37, 80.60, 89.90), "r-mnist": (85.01, 88.91, 93.45), "s-mnist-class": (80.43, 86.12, 93.40),
           "s-mnist-task": (97.86, 99.04, 99.33), "mnist-360": (49.27, 65.04, 75.18)},
    "a-gem": {"p-mnist": (66.42, 67.56, 73.32), "r-mnist": (81.91, 80.31, 80.18),
              "s-mnist-class": (45.72, 46.66, 54.24), "s-mnist-task": (98.61, 98.93, 98.93),
              "mnist-360": (28.34, 28.13, 29.21)},
    "icarl": {"s-mnist-class": (70.51, 70.10, 70.60), "s-mnist-task": (98.28, 98.32, 98.32)},
    "der": {"p-mnist": (81.74, 87.29, 91.66), "r-mnist": (90.04, 92.24, 94.14), "s-mnist-class": (84.55, 90.54, 94.90),
            "s-mnist-task": (98.80, 98.84, 99.29), "mnist-360": (55.22, 69.11, 75.97)},
    "der++": {"p-mnist": (83.58, 88.21, 92.26), "r-mnist": (90.43, 92.77, 94.65),
              "s-mnist-class": (85.61, 91.00, 95.30), "s-mnist-task": (98.76, 98.94, 99.47),
              "mnist-360": (54.16, 69.62, 76.03)},
    "er-ace": {}, "gdumb": {}, "task-free-mas": {},
    "joint": {"p-mnist": 94.33, "r-mnist": 95.76, "s-mnist-class": 95.57, "s-mnist-task": 99.51, "mnist-360": 82.98},
}
PAPER_STD: dict = {}  # (row, benchmark, buffer) -> the paper's std, where known; none quoted (see PAPER)
# rows that would not run on a benchmark: most have no paper number there (boundaries on MNIST-360's stream, LwF and
# iCaRL on the domain benchmarks: "-" in the paper); iCaRL's S-MNIST task-IL has one (98.28 / 98.32 / 98.32), read
# from its class-IL model through task masks, while our icarl is class-incremental only (it refuses --setting task)
NOT_RUN = {("online-ewc", "mnist-360"), ("si", "mnist-360"), ("lwf", "mnist-360"), ("icarl", "mnist-360"),
           ("lwf", "p-mnist"), ("lwf", "r-mnist"), ("icarl", "p-mnist"), ("icarl", "r-mnist"),
           ("icarl", "s-mnist-task")}
DEFAULT_ROWS = tuple(ROWS)
DEFAULT_BENCHMARKS = tuple(BENCHMARKS)


def lender(row: str, benchmark: str) -> str:
    """The row whose best_args `row` trains with on `benchmark`: its own, or BORROW's first candidate that Mammoth
    has on the benchmark's dataset."""
    if row not in BORROW:
        return row
    dataset = BEST_ARGS[BENCHMARKS[benchmark][3]]
    return next((c for c in BORROW[row] if ROWS[c][4] in dataset), BORROW[row][-1])


def hyper_parameters(row: str, benchmark: str, buffer: int | None) -> dict:
    """best_args' arguments for a row on a benchmark and buffer (borrowed from BORROW's row where it has none):
    what the table states."""
    source = lender(row, benchmark)
    dataset = BENCHMARKS[benchmark][3]
    model = (MAMMOTH_360.get(source) if benchmark == "mnist-360" else None) or ROWS[source][4]
    table = BEST_ARGS[dataset].get(model)
    if table is None:
        raise ConfigError(f"Mammoth's best_args have no {model!r} on {dataset!r}")
    if buffer is None or -1 in table:
        return dict(table[-1])
    return dict(table[buffer])


def plan(row: str, benchmark: str, buffer: int | None) -> dict:
    """How one run is made: run_experiment's options (the method's among them), saved with the run and compared
    before a saved run is reused."""
    label, method, stream, keeps, _ = ROWS[row]
    args = hyper_parameters(row, benchmark, buffer)
    options: dict = {}
    if keeps:
        options["memory"] = buffer
    if method in ("er", "der", "der++", "er-ace") and "minibatch_size" in args:
        options["minibatch"] = args["minibatch_size"]
    if method == "a-gem" and "minibatch_size" in args:
        options["reference"] = args["minibatch_size"]
    if method == "a-gem" and benchmark != "mnist-360":  # Mammoth's `agem` (first release): buffer_size // N_TASKS
        # random samples of each task added at its end, so told the boundaries; MNIST-360's A-GEM-R: a reservoir
        options["task_memory"] = buffer // TASKS[benchmark]
        stream = False
    if method in ("der", "der++"):
        options["alpha"] = args["alpha"]
    if method == "der++":
        options["beta"] = args["beta"]
    if method == "online-ewc":  # Mammoth's penalty e_lambda * sum F (theta - theta*)^2: our strength; its Fisher
        # at the true labels, each sample's square weighted by the probability of its label (ewc_on's end_task)
        options.update(strength=args["e_lambda"], gamma=args["gamma"], fisher="weighted-empirical")
    if method == "si":
        options.update(strength=args["c"], damping=args["xi"])
    if method == "lwf":
        options.update(lamb=args["alpha"], temperature=args["softmax_temp"])
    if method == "joint":  # Mammoth's JOINT: the initial model trained on the union, not the last task's model
        options["from_scratch"] = True
    # Mammoth adds wd_reg * sum(theta^2) to the loss: its gradient is 2 * wd_reg * theta, SGD's weight_decay of
    # twice wd_reg
    how = {"method": method, "method_options": options, "stream": stream, "epochs": 1, "lr": args["lr"],
           "batch_size": args["batch_size"], "optimizer": "sgd", "momentum": 0.0,
           "weight_decay": 2 * args.get("wd_reg", 0.0), "hidden": [100, 100], "scenario": BENCHMARKS[benchmark][1]}
    if benchmark == "mnist-360":  # its stream mixes the two digits batch by batch: for the row's batch, as Mammoth
        how["stream_batch_size"] = args["batch_size"]
    if benchmark == "s-mnist-class" and method in MAMMOTH_HEAD:  # told the boundaries, with Mammoth's one linear
        how["preallocate_head"] = "all"  # layer: every class's output in the loss from the first task, as a stream's
    return how


def planned_runs(rows, benchmarks, seeds, buffers=None) -> list[tuple[str, str, str, int | None, int]]:
    """(key, row, benchmark, buffer, seed) of every run asked for, seeds outermost (a reproduction stopped early
    leaves every cell with the same number of seeds); key "row/benchmark/buffer/seed" (buffer "-" for none).
    `buffers`: only these of the benchmarks' buffers (None: all)."""
    runs = []
    for seed in seeds:
        for benchmark in benchmarks:
            for row in rows:
                if (row, benchmark) in NOT_RUN:
                    continue
                for buffer in BENCHMARKS[benchmark][4] if ROWS[row][3] else (None,):
                    if buffer is not None and buffers is not None and buffer not in buffers:
                        continue
                    runs.append((f"{row}/{benchmark}/{buffer or '-'}/{seed}", row, benchmark, buffer, seed))
    return runs


def check(rows, benchmarks) -> None:
    from .methods import METHODS

    for row in rows:
        if row not in ROWS:
            raise ConfigError(f"no row {row!r} in Buzzega et al.'s table; rows: {', '.join(ROWS)}")
        if ROWS[row][1] not in METHODS:
            raise ConfigError(f"row {row!r}: method {ROWS[row][1]!r} is not in this version of lifelong")
    for benchmark in benchmarks:
        if benchmark not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {benchmark!r}; choose from: {', '.join(BENCHMARKS)}")


def run_file(out: Path, key: str) -> Path:
    return out / f"{NAME}_runs" / f"{key.replace('/', '_')}.json"


def load(out: Path) -> dict:
    """The runs on disk in `out` (the per-run files): {"runs": {key: run}}."""
    runs = read_runs(Path(out) / f"{NAME}_runs", lambda run: run["key"])
    return {"runs": {key: {k: v for k, v in run.items() if k != "key"} for key, run in runs.items()}}


def paper_value(row: str, benchmark: str, buffer: int | None) -> float | None:
    value = PAPER.get(row, {}).get(benchmark)
    if isinstance(value, tuple):
        return value[BENCHMARKS[benchmark][4].index(buffer)]
    return value


def _args_text(args: dict) -> str:
    names = {"batch_size": "bs", "minibatch_size": "mbs"}
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in args.items() if k != "n_epochs")


def render(document: dict, notes: str = "") -> str:
    """The markdown table: per row (and buffer) and benchmark the paper's number and ours, then the
    hyper-parameters of every cell that ran, then `notes`."""
    runs = document["runs"]
    benchmarks = [b for b in BENCHMARKS if any(k.split("/")[1] == b for k in runs)] or list(BENCHMARKS)
    lines = [
        "# Buzzega et al. 2020 (DER), Tables 2 and 3 on MNIST: final average accuracy (%)", "",
        "Protocol (Mammoth's, the paper's code): plain SGD without momentum, one epoch, MLP 784-100-100 (S-MNIST: "
        "`split-mnist-der`, Mammoth's 28x28 digits in [0, 1], not our split-mnist's 32x32 normalised ones), the "
        "hyper-parameters of Mammoth's first `best_args` per row, benchmark and buffer (below: lr, incoming batch bs, "
        "buffer draw mbs, alpha, beta, ...). "
        "SGD and the rehearsal rows learn from a stream (`--stream`, no task boundaries); oEWC, SI, LwF, iCaRL and "
        "JOINT in the ordinary setting, one epoch per task (JOINT: the initial model, one epoch on the union of the "
        "tasks seen, as Mammoth's); so does A-GEM on P-, R- and S-MNIST, its memory filled at task ends as Mammoth's "
        "`agem` does (`task_memory`: buffer // tasks random samples of each task), where MNIST-360's A-GEM-R keeps a "
        "reservoir over the stream. On S-MNIST class-IL, A-GEM, oEWC, SI and JOINT train Mammoth's head, every "
        "class's output in the loss from the first task (`preallocate_head=\"all\"`, as a stream's head), where a "
        "run told the boundaries otherwise grows it task by task. ER-ACE, GDumb and task-free MAS are not in the paper "
        "(no paper number): they take ER's (task-free MAS: oEWC's, or SGD's where Mammoth has no oEWC) lr, batch "
        "and draw; JOINT SGD's. Paper: the "
        "mean of 10 runs (its std not quoted here: flags by the 1.5-point rule only); ours: mean +- sample std "
        "over the seeds shown (n). `!` marks ours more than 1.5 points from the paper.", "",
        "Command: `lifelong reproduce buzzega2020-der --rows ROWS --benchmarks BENCHMARKS --seeds 3 --data-dir DATA`",
        "",
        "| method | buffer | " + " | ".join(f"{BENCHMARKS[b][0]} paper | ours" for b in benchmarks) + " |",
        "|---|---|" + "---|---|" * len(benchmarks),
    ]
    cells_run = []
    for row in ROWS:
        buffers = sorted({k.split("/")[2] for k in runs if k.split("/")[0] == row},
                         key=lambda b: (b != "-", int(b) if b != "-" else 0))
        for buffer in buffers:
            cells = []
            for benchmark in benchmarks:
                made = [r for k, r in runs.items() if k.startswith(f"{row}/{benchmark}/{buffer}/")]
                number = None if buffer == "-" else int(buffer)
                if number is not None and number not in BENCHMARKS[benchmark][4]:
                    cells += ["", ""]
                    continue
                paper = paper_value(row, benchmark, number)
                cells.append("-" if paper is None else f"{paper:.2f}")
                values = [r["final_average_accuracy"] * 100 for r in made if r["final_average_accuracy"] is not None]
                parts = [summary(values, paper, PAPER_STD.get((row, benchmark, number)))] if values else []
                if len(values) < len(made):
                    parts.append(f"diverged (NaN loss) in {len(made) - len(values)} of {len(made)}")
                cells.append("; ".join(parts) or "not run")
                if made:
                    cells_run.append((row, benchmark, buffer, made[0]))
            lines.append(f"| {ROWS[row][0]} | {buffer} | " + " | ".join(cells) + " |")
    lines += ["", "Hyper-parameters of each cell that ran (Mammoth's `best_args`; borrowed ones say from where):", "",
              "| method | benchmark | buffer | hyper-parameters | our options |", "|---|---|---|---|---|"]
    for row, benchmark, buffer, run in cells_run:
        args = hyper_parameters(row, benchmark, None if buffer == "-" else int(buffer))
        if row in BORROW:  # a borrowing row takes the lender's lr, batch and draw, not its method's coefficients
            args = {k: v for k, v in args.items() if k in ("lr", "batch_size", "minibatch_size")}
        borrowed = f" (from {ROWS[lender(row, benchmark)][0]})" if row in BORROW else ""
        how = run.get("plan", {})
        options = ", ".join(f"{k}={v}" for k, v in how.get("method_options", {}).items())
        lines.append(f"| {ROWS[row][0]} | {benchmark} | {buffer} | {_args_text(args)}{borrowed} | "
                     f"`{how.get('method', '?')}`{' --stream' if how.get('stream') else ''}"
                     f"{' --preallocate-head all' if how.get('preallocate_head') == 'all' else ''} {options} |")
    times = [r["wall_time_s"] for r in runs.values()]
    if times:
        lines += ["", f"{len(runs)} runs, {statistics.mean(times):.0f} s each on average. {thread_note(runs.values())}"]
    lines += ["", "## Where ours differs, and why", "", notes or "What we found for each flagged cell: "
              "benchmarks/results/buzzega2020_der.md in lifelong's source repository."]
    return "\n".join(lines) + "\n"


def save_table(out: Path, notes: str = "") -> dict:
    """Rewrite OUT/buzzega2020_der.json and .md from every run on disk; the notes are `notes` or, without them,
    OUT/buzzega2020_der_notes.md where it exists (so the committed table keeps its notes when a run is added)."""
    notes_file = Path(out) / f"{NAME}_notes.md"
    if not notes and notes_file.exists():
        notes = notes_file.read_text().strip()
    document = load(out)
    document["versions"] = versions()
    document["machine"] = machine()
    # the table's JSON is a summary: each run's accuracy matrix stays in its own file (OUT/buzzega2020_der_runs/),
    # not written a second time here (all of them together were 2.5 MB)
    summary = {**document, "runs": {key: {k: v for k, v in run.items() if k != "accuracy_matrix"}
                                    for key, run in document["runs"].items()}}
    write_json(Path(out) / f"{NAME}.json", summary)
    write_text(Path(out) / f"{NAME}.md", render(document, notes))
    return document


def scenario_for(benchmark: str, data_dir, download: bool, seed: int, stream_batch_size: int | None = None):
    """The benchmark's scenario for a seed (P-MNIST's permutations, R-MNIST's angles are drawn with it); MNIST-360's
    stream mixed for batches of `stream_batch_size`."""
    return make_scenario(BENCHMARKS[benchmark][1], data_dir=data_dir, download=download, seed=seed,
                         stream_batch_size=stream_batch_size)


def run_one(job: dict) -> dict:
    """One run (here, in a worker process or in a Ray task): what its file saves."""
    how = dict(job["plan"])
    scenario = scenario_for(job["benchmark"], job["data_dir"], job["download"], job["seed"],
                            how.pop("stream_batch_size", None))
    started = time.perf_counter()
    method, options, hidden = how.pop("method"), how.pop("method_options"), tuple(how.pop("hidden"))
    how.pop("scenario")  # the scenario_for's, saved in the plan so that a run made on another input is refused
    try:
        results = run_experiment(method, scenario, BENCHMARKS[job["benchmark"]][2], seed=job["seed"], hidden=hidden,
                                 method_options=options, device=job["device"], progress=False, **how)
    except TrainingError as error:  # the loss became NaN: a result of the cell's hyper-parameters, saved as such
        return {"final_average_accuracy": None, "diverged": str(error).split(":")[0], "plan": job["plan"],
                "threads": torch.get_num_threads(), "machine": machine(), "wall_time_s": time.perf_counter() - started}
    return {"final_average_accuracy": results["final_average_accuracy"],
            "accuracy_matrix": results["accuracy_matrix"], "plan": job["plan"], "threads": results["threads"],
            "machine": results["machine"], "wall_time_s": time.perf_counter() - started}


def reproduce(rows, benchmarks, seeds, out, data_dir=None, buffers=None, download: bool = True, device: str = "cpu",
              notes: str = "", log: Callable[[str], None] | None = None, workers: int = 1,
              threads: int | None = None, ray_address: str | None = None) -> dict:
    """Run every (seed, benchmark, row, buffer) not already saved in `out`, saving each as it ends; returns the
    document with every run on disk."""
    rows, benchmarks = list(rows), list(benchmarks)
    check(rows, benchmarks)
    out = Path(out)
    with lock_folder(out):
        done = load(out)["runs"]
        planned = planned_runs(rows, benchmarks, seeds, buffers)
        for key, row, benchmark, buffer, _ in planned:
            if key in done and done[key].get("plan") != plan(row, benchmark, buffer):
                raise ConfigError(f"{out} already has run {key} made differently ({done[key].get('plan')}, now "
                                  f"{plan(row, benchmark, buffer)}): use another --out, or delete "
                                  f"{run_file(out, key)} to run it again")
        jobs = [dict(key=key, row=row, benchmark=benchmark, buffer=buffer, seed=seed, data_dir=data_dir,
                     download=download, device=device, plan=plan(row, benchmark, buffer))
                for key, row, benchmark, buffer, seed in planned if key not in done]
        began, finished = time.perf_counter(), []

        def done_run(job: dict, run: dict) -> None:
            write_json(run_file(out, job["key"]), {"key": job["key"], **run})
            save_table(out, notes)
            finished.append(job)
            if log:
                accuracy = run["final_average_accuracy"]
                log(f"[{len(finished)}/{len(jobs)}] {job['key']}: "
                    f"{'diverged' if accuracy is None else f'{100 * accuracy:.2f}%'} "
                    f"({run['wall_time_s']:.0f} s{time_left(time.perf_counter() - began, len(finished), len(jobs))})")

        run_grid(jobs, run_one, done_run, workers, threads, gpu=device != "cpu", ray_address=ray_address)
        return save_table(out, notes)
