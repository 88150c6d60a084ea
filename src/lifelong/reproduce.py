"""Reproductions of published tables: the paper's protocol, its numbers and ours side by side.

    lifelong reproduce hsu2018-split-mnist --methods finetune,lwf,joint --seeds 5 --data-dir DATA

hsu2018-split-mnist: Hsu, Liu, Ramasamy & Kira 2018, "Re-evaluating continual learning scenarios", Table 2.
MNIST zero-padded to 32x32 and normalised, 5 tasks {0,1},{2,3},{4,5},{6,7},{8,9}; MLP 1024-400-400 (ReLU); 4 epochs
per task, batch 128, Adam lr 0.001 (the split-mnist scenario's defaults); task-IL (a 2-way head per task, task id
given), domain-IL (one shared 2-way head), class-IL (one growing 10-way head). Metric: average test accuracy over
the 5 tasks after the last one, mean +- std over seeds (the paper: 10 runs). Regularisation coefficients: the
paper's, per method and setting (COEFFICIENTS).

Every run (row, setting, seed) is written to its own file under OUT/hsu2018_split_mnist_runs/ as soon as it
finishes, so an interrupted reproduction loses nothing, the same command continues it (finished runs are skipped),
and several invocations can fill one table; OUT/hsu2018_split_mnist.md and .json are rewritten from every run on
disk after each one.
"""

import functools
import json
import statistics
import time
from pathlib import Path
from typing import Callable

from .errors import ConfigError
from .experiment import run_experiment
from .grid import run_grid
from .methods import get_method
from .results import machine, read_runs, summary, thread_note, time_left, versions, write_json
from .storage import lock_folder, write_text
from .benchmarks import make_scenario
from .scenarios import SETTINGS

REPRODUCTIONS = ("hsu2018-split-mnist",)  # described in catalog.REPRODUCTIONS
NAME = "hsu2018_split_mnist"  # the files' stem

# Table 2 of Hsu et al. 2018: average accuracy (%) after the last task, mean +- std over 10 runs, per setting
# (task, domain, class); None where a row is ours only.
PAPER = {
    "finetune": ("Adam", (93.46, 2.01), (55.16, 1.38), (19.71, 0.08)),
    "lwf": ("LwF", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-vdv": ("LwF, the loss weighting of van de Ven's benchmark code", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-vdv-all": ("LwF, van de Ven's weighting, class-IL distilling all classes (new ones to 0)", None, None,
                    (24.17, 0.33)),
    "lwf-vdv-2000it": ("LwF as van de Ven's code runs it: its weighting (and class-IL distillation), 2000 iterations "
                       "per task", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-all-2000it": ("LwF, Li & Hoiem's weighting (lambda_o = 1), class-IL distilling all classes (new ones to 0), "
                       "2000 iterations per task", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-vdv-2000it-1adam": ("LwF as van de Ven's code runs it, and with one Adam for the whole sequence",
                             (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "finetune-1adam": ("Adam, one optimizer for the whole sequence (Hsu et al.'s code)", (93.46, 2.01), (55.16, 1.38),
                       (19.71, 0.08)),
    "joint": ("Offline", (99.52, 0.16), (98.59, 0.15), (97.53, 0.30)),
    "joint-1adam": ("Offline, one optimizer for the whole sequence", None, None, (97.53, 0.30)),
    "l2": ("L2", (98.18, 0.96), (66.00, 3.73), (22.52, 1.08)),
    "l2-fullhead": ("L2, class-IL head with all 10 outputs from the start (Hsu et al.'s code)", None, None,
                    (22.52, 1.08)),
    "ewc": ("EWC", (97.70, 0.81), (58.85, 2.59), (19.80, 0.05)),
    "online-ewc": ("Online EWC", (98.04, 1.10), (57.33, 1.44), (19.77, 0.04)),
    "si": ("SI", (98.56, 0.49), (64.76, 3.09), (19.67, 0.09)),
    "mas": ("MAS", (99.22, 0.21), (68.57, 6.85), (19.52, 0.29)),
    "mas-exact": ("MAS, exact per-sample Omega (eq. 4)", (99.22, 0.21), (68.57, 6.85), (19.52, 0.29)),
    "ewc-exact": ("EWC, exact per-sample Fisher", (97.70, 0.81), (58.85, 2.59), (19.80, 0.05)),
    "l-mas": ("l-MAS (not in the paper)", None, None, None),
    # the standard deviations of these two rows are not quoted here (None): only the 1.5-point rule flags them
    "replay-1100": ("Naive rehearsal, 1,100 samples", (99.40, 0.08), (95.16, 0.49), (90.78, 0.85)),
    "replay-4400": ("Naive rehearsal-C, 4,400 samples", (99.57, 0.07), (97.11, 0.34), (95.59, 0.49)),
}
PAPER_ROWS = "finetune,lwf,joint,l2,ewc,online-ewc,si,mas"  # the paper's methods as the issue names them
# The paper's regularisation coefficients (task / domain / class), passed as `strength`; l-MAS uses MAS's
COEFFICIENTS = {
    "ewc": (100, 100, 600),
    "online-ewc": (400, 700, 100),
    "si": (300, 3000, 600),
    "l2": (0.01, 0.5, 100),
    "mas": (1, 10000, 1),
    "l-mas": (1, 10000, 1),
    "mas-exact": (1, 10000, 1),
    "ewc-exact": (100, 100, 600),
}
# How each row runs: (registered method, options); a row not listed is the method of that name with its defaults.
# The paper's rows use the estimators of the code that produced the paper's numbers, which its coefficients were
# tuned with: EWC's Fisher from batch gradients at the predicted label (`fisher=predicted`, `estimate=batch`), and
# MAS's Omega as the mean over batches of
# |gradient of the batch-and-output mean of F^2| (`estimate=batch`, `reduction=mean`: divided by the outputs read,
# 2 in the task and domain settings and every class seen so far in the class setting, Hsu's `valid_out_dim`).
# The "exact" rows use our defaults (the papers' definitions) with the same coefficients.
VARIANTS = {
    # LwF as Hsu et al.'s (van de Ven's) code runs it: without Li & Hoiem's warm-up
    "lwf": ("lwf", {"warmup": False}),
    "lwf-vdv": ("lwf", {"weighting": "van-de-ven", "warmup": False}),
    "lwf-vdv-all": ("lwf", {"weighting": "van-de-ven", "warmup": False}),
    "lwf-vdv-2000it": ("lwf", {"weighting": "van-de-ven", "warmup": False}),
    "lwf-all-2000it": ("lwf", {"warmup": False}),
    "lwf-vdv-2000it-1adam": ("lwf", {"weighting": "van-de-ven", "warmup": False}),
    "finetune-1adam": ("finetune", {}),
    "joint-1adam": ("joint", {}),
    "l2-fullhead": ("l2", {}),
    "ewc": ("ewc", {"fisher": "predicted", "estimate": "batch"}),
    "online-ewc": ("online-ewc", {"fisher": "predicted", "estimate": "batch"}),
    "mas": ("mas", {"estimate": "batch", "reduction": "mean"}),
    "mas-exact": ("mas", {"estimate": "per-sample"}),
    "ewc-exact": ("ewc", {"fisher": "predicted", "estimate": "per-sample"}),
    # Hsu et al.'s Naive_Rehearsal_1100 / _4400: random samples, the memory repeated to about 1:1 with new data
    "replay-1100": ("replay", {"memory": 1100, "selection": "random", "mix": "repeat"}),
    "replay-4400": ("replay", {"memory": 4400, "selection": "random", "mix": "repeat"}),
}
# van de Ven & Tolias's code, which produced the paper's LwF numbers, distils all classes seen so far in the class
# setting (the new classes' targets padded with 0) and trains 2000 iterations of 128 per task on split-MNIST:
# 21 epochs is 1848-2079 iterations for our tasks (11,263-12,665 images).
CLASS_IL_OPTIONS = {"lwf-vdv-all": {"class_distillation": "all-classes"},
                    "lwf-vdv-2000it": {"class_distillation": "all-classes"},
                    "lwf-all-2000it": {"class_distillation": "all-classes"},
                    "lwf-vdv-2000it-1adam": {"class_distillation": "all-classes"}}
ROW_SETTINGS = {"lwf-vdv-all": ("class",), "joint-1adam": ("class",), "l2-fullhead": ("class",)}
ROW_EPOCHS = {"lwf-vdv-2000it": 21, "lwf-all-2000it": 21, "lwf-vdv-2000it-1adam": 21}
# How Hsu et al.'s (and van de Ven's) code differs from our defaults, for the rows that test it (run_experiment's
# options): one Adam optimizer for the whole sequence, its moments carried over; a class-IL head with every class's
# output from the start
ROW_RUN = {**{row: {"reset_optimizer": False} for row in ("finetune-1adam", "lwf-vdv-2000it-1adam", "joint-1adam")},
           "l2-fullhead": {"preallocate_head": True}}


def method_options(row: str, setting: str) -> tuple[str, dict]:
    """(registered method, its options) for a row of the table in a setting."""
    method, options = VARIANTS.get(row, (row, {}))
    options = dict(options)
    if setting == "class":
        options.update(CLASS_IL_OPTIONS.get(row, {}))
    coefficients = COEFFICIENTS.get(row, COEFFICIENTS.get(method))
    if coefficients:
        options["strength"] = coefficients[SETTINGS.index(setting)]
    return method, options


def check_rows(rows: list[str], settings: list[str]) -> None:
    for row in rows:
        if row not in PAPER:
            raise ConfigError(f"no row {row!r} in Hsu et al.'s table; rows: {', '.join(PAPER)}")
        get_method(method_options(row, "task")[0])  # registered?
    for setting in settings:
        if setting not in SETTINGS:
            raise ConfigError(f"unknown setting {setting!r}; choose from: {', '.join(SETTINGS)}")


def run_file(out: Path, key: str) -> Path:
    """Where run `key` ("row/setting/seed") is saved: one file per run, written as soon as the run ends."""
    return out / f"{NAME}_runs" / f"{key.replace('/', '_')}.json"


def load(out: Path) -> dict:
    """The table's JSON in `out` ({"runs": {}} when there is none), its runs those of the per-run files when
    there are any (the JSON's copy is derived from them: deleting a run's file removes the run)."""
    path, runs_dir = out / f"{NAME}.json", out / f"{NAME}_runs"
    document = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    runs = read_runs(runs_dir, lambda run: run["key"])
    if runs:
        document["runs"] = {key: {k: v for k, v in run.items() if k != "key"} for key, run in runs.items()}
    return document


def render(document: dict, notes: str = "") -> str:
    """The markdown table: the paper's mean +- std and ours, per row and setting, then `notes`."""
    runs = document["runs"]
    coefficients = "; ".join(f"{m} {' / '.join(map(str, c))}" for m, c in COEFFICIENTS.items())
    lines = [
        "# Hsu et al. 2018, Table 2: split-MNIST, average accuracy (%) after the last task", "",
        "Protocol: MNIST padded to 32x32 and normalised; 5 tasks of 2 digits; MLP 1024-400-400 (ReLU); 4 epochs per "
        "task (rows marked 2000 iterations: 21), batch 128, Adam lr 0.001; LwF without Li & Hoiem's warm-up (as their "
        "code; `--param warmup=false`); task-IL (a 2-way head per task), "
        "domain-IL (one shared 2-way head), class-IL (one growing 10-way head). The paper's regularisation "
        f"coefficients (task / domain / class), passed as `--param strength=...`: {coefficients}. Estimators: the "
        "paper's rows use those of Hsu et al.'s code, which the coefficients were tuned with: EWC and online EWC "
        "`fisher=predicted`, `estimate=batch` (B * squared gradient of a batch's mean loss, predicted labels); MAS `estimate=batch`, "
        "`reduction=mean` (their Omega: mean over batches of |gradient of the batch-and-output mean of F^2|, over "
        "the outputs read: 2 per task seen in class-IL). A cell of runs with other epochs per task says so. "
        "The 'exact' rows use our defaults, the papers' definitions (per-sample mean of |g| for MAS, "
        "eq. 4 of Aljundi et al.; per-sample Fisher) with the same coefficients. Paper: mean +- std over 10 runs; "
        "ours: mean +- std (sample std) over the seeds shown (n). `!` marks ours differing from the paper by more "
        "than 2 of the paper's standard deviations or more than 1.5 points.", "",
        "Command: `lifelong reproduce hsu2018-split-mnist --methods ROWS --seeds 5 --data-dir DATA`", "",
        "| method | task-IL paper | task-IL ours | domain-IL paper | domain-IL ours | class-IL paper | class-IL ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, (label, *paper) in PAPER.items():
        cells = []
        for setting, reference in zip(SETTINGS, paper):
            made = [r for k, r in runs.items() if k.startswith(f"{row}/{setting}/")]
            values = [r["final_average_accuracy"] * 100 for r in made]
            epochs = sorted({r.get("epochs", 4) for r in made})
            other_length = "" if epochs in ([], [ROW_EPOCHS.get(row, 4)]) else f" [{'/'.join(map(str, epochs))} epochs]"
            cells.append("-" if not reference else f"{reference[0]:.2f}" if reference[1] is None
                         else f"{reference[0]:.2f} +- {reference[1]:.2f}")
            cells.append(summary(values, *(reference or ())) + other_length if values else "not run")
        if any(c != "not run" for c in cells[1::2]):
            lines.append(f"| {label} (`{row}`) | " + " | ".join(cells) + " |")
    times = [r["wall_time_s"] for r in runs.values()]
    if times:
        lines += ["", f"{len(runs)} runs, {statistics.mean(times):.0f} s each on average. {thread_note(runs.values())}"]
    lines += ["", "## Where ours differs, and why", "", notes or "What we found for each flagged row: "
              "benchmarks/results/hsu2018_split_mnist.md in lifelong's source repository."]
    return "\n".join(lines) + "\n"


def reproduce(name: str, rows: list[str], settings: list[str], seeds: list[int], out, data_dir=None,
              download: bool = True, epochs: int | None = None, device: str = "cpu", notes: str = "",
              log: Callable[[str], None] | None = None, workers: int = 1, threads: int | None = None,
              ray_address: str | None = None) -> dict:
    """Run every (seed, setting, row) not already saved in `out`, saving each as it finishes; returns the
    document with every run on disk. `epochs` overrides the 4 epochs per task (not the rows' own lengths).
    `workers`, `threads`, `ray_address`: how the runs are spread (`lifelong.grid.run_grid`)."""
    if name not in REPRODUCTIONS:
        raise ConfigError(f"unknown reproduction {name!r}; choose from: {', '.join(REPRODUCTIONS)}")
    check_rows(rows, settings)
    out = Path(out)
    with lock_folder(out):  # one reproduction at a time in `out`: a second is refused, naming the first
        done = load(out)["runs"]
        planned = [(f"{row}/{setting}/{seed}", row, setting, seed) for seed in seeds for setting in settings
                   for row in rows if setting in ROW_SETTINGS.get(row, SETTINGS)]
        for key, row, setting, _ in planned:  # a saved run is reused only if it ran the same way
            if key in done and saved_protocol(done[key]) != protocol(row, setting, epochs):
                raise ConfigError(f"{out} already has run {key} made differently ({saved_protocol(done[key])}, now "
                                  f"{protocol(row, setting, epochs)}): use another --out, or delete "
                                  f"{run_file(out, key)} (and the row's other runs) to run it again")
        # seeds outermost: a reproduction stopped early leaves every row with the same number of seeds
        jobs = [dict(key=key, row=row, setting=setting, seed=seed, data_dir=data_dir, download=download,
                     device=device, how=protocol(row, setting, epochs)) for key, row, setting, seed in planned
                if key not in done]
        began, finished = time.perf_counter(), []

        def done_run(job: dict, run: dict) -> None:  # here, as each run ends: its file, then the table
            write_json(run_file(out, job["key"]), {"key": job["key"], **run})
            save_table(out, notes)
            finished.append(job)
            if log:
                log(f"[{len(finished)}/{len(jobs)}] {job['row']} {job['setting']}-IL seed {job['seed']}: "
                    f"{100 * run['final_average_accuracy']:.2f}% ({run['wall_time_s']:.0f} s"
                    f"{time_left(time.perf_counter() - began, len(finished), len(jobs))})")

        try:
            run_grid(jobs, run_one, done_run, workers, threads, gpu=device != "cpu", ray_address=ray_address)
        finally:
            _split_mnist.cache_clear()  # read once per process for all its runs
        return save_table(out, notes)


@functools.lru_cache(maxsize=1)
def _split_mnist(data_dir, download: bool):
    return make_scenario("split-mnist", data_dir=data_dir, download=download)


def run_one(job: dict) -> dict:
    """One run of the table (here, in a worker process or in a Ray task): what its file saves."""
    scenario = _split_mnist(job["data_dir"], job["download"])
    started = time.perf_counter()
    how = job["how"]
    results = run_experiment(method_options(job["row"], job["setting"])[0], scenario, job["setting"], seed=job["seed"],
                             device=job["device"], progress=False, **how)
    return {"final_average_accuracy": results["final_average_accuracy"],
            "accuracy_matrix": results["accuracy_matrix"], **how, "threads": results["threads"],
            "machine": results["machine"], "wall_time_s": time.perf_counter() - started}


PROTOCOL_DEFAULTS = {"reset_optimizer": True, "preallocate_head": False}


def protocol(row: str, setting: str, epochs: int | None = None) -> dict:
    """How a run of `row` in `setting` is made (run_experiment's options): saved with it, and compared before a
    saved run is reused."""
    return {"method_options": method_options(row, setting)[1], "epochs": ROW_EPOCHS.get(row, epochs or 4),
            **PROTOCOL_DEFAULTS, **ROW_RUN.get(row, {})}


def saved_protocol(run: dict) -> dict:
    """The protocol of a saved run (runs saved before an option existed ran with its default)."""
    return {"method_options": run["method_options"], "epochs": run["epochs"],
            **{key: run.get(key, default) for key, default in PROTOCOL_DEFAULTS.items()}}


def save_table(out: Path, notes: str = "") -> dict:
    """Rewrite OUT/hsu2018_split_mnist.json and .md from every run on disk."""
    document = load(out)
    document["versions"] = versions()
    document["machine"] = machine()
    write_json(out / f"{NAME}.json", document)
    write_text(out / f"{NAME}.md", render(document, notes))
    return document
