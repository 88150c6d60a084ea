"""Reproduction: Hsu, Liu, Ramasamy & Kira 2018, "Re-evaluating continual learning scenarios", Table 2 (split-MNIST).

Protocol (the paper's, and `lifelong`'s split-mnist defaults): MNIST zero-padded to 32x32 and normalised, 5 tasks
{0,1},{2,3},{4,5},{6,7},{8,9}; MLP 1024-400-400 with ReLU; 4 epochs per task, batch 128, Adam lr 0.001; task-IL
(one 2-way head per task, task id given), domain-IL (one shared 2-way head), class-IL (one growing 10-way head).
Metric: average test accuracy over the 5 tasks after the last task, mean +- std over seeds (the paper: 10 runs).
Regularisation coefficients: the paper's per method and setting (COEFFICIENTS below); l-MAS, not in the paper,
uses MAS's.

    flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/reproduce_hsu2018.py \\
        --methods finetune,joint --seeds 5
    .venv/bin/python benchmarks/reproduce_hsu2018.py --render-only   # rewrite the markdown from the JSON

Runs are added to benchmarks/results/hsu2018_split_mnist.json (one entry per method, setting and seed), so the
table can be filled by several shorter invocations; the markdown is rewritten from everything in the JSON.
Methods that are not registered in this checkout (say `lwf` before its issue lands) are skipped with a message.
"""

import argparse
import json
import statistics
import sys
import time

from _common import RESULTS, data_dir, machine, pin_threads
from lifelong.experiment import run_experiment
from lifelong.methods import METHODS
from lifelong.results import versions, write_json
from lifelong.scenarios import make_scenario

SETTINGS = ("task", "domain", "class")
# Table 2 of Hsu et al. 2018: average accuracy (%) after the last task, mean +- std over 10 runs
PAPER = {
    "finetune": ("Adam", (93.46, 2.01), (55.16, 1.38), (19.71, 0.08)),
    "lwf": ("LwF", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-vdv": ("LwF, the loss weighting of van de Ven's benchmark code", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "lwf-vdv-all": ("LwF, van de Ven's weighting, class-IL distilling all classes (new ones to 0)", None, None,
                    (24.17, 0.33)),
    "lwf-vdv-2000it": ("LwF as van de Ven's code runs it: its weighting (and class-IL distillation), 2000 iterations "
                       "per task", (99.60, 0.03), (71.02, 1.26), (24.17, 0.33)),
    "joint": ("Offline", (99.52, 0.16), (98.59, 0.15), (97.53, 0.30)),
    "l2": ("L2", (98.18, 0.96), (66.00, 3.73), (22.52, 1.08)),
    "ewc": ("EWC", (97.70, 0.81), (58.85, 2.59), (19.80, 0.05)),
    "online-ewc": ("Online EWC", (98.04, 1.10), (57.33, 1.44), (19.77, 0.04)),
    "si": ("SI", (98.56, 0.49), (64.76, 3.09), (19.67, 0.09)),
    "mas": ("MAS", (99.22, 0.21), (68.57, 6.85), (19.52, 0.29)),
    "mas-exact": ("MAS, exact per-sample Omega (eq. 4)", (99.22, 0.21), (68.57, 6.85), (19.52, 0.29)),
    "ewc-exact": ("EWC, exact per-sample Fisher", (97.70, 0.81), (58.85, 2.59), (19.80, 0.05)),
    "l-mas": ("l-MAS (not in the paper)", None, None, None),
}
# The paper's regularisation coefficients (task / domain / class), passed as `strength`
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
# How each row runs: (registered method, options, coefficient divisor). The paper's rows use the estimators of the
# code that produced the paper's numbers, which its coefficients were tuned with: EWC's Fisher from batch gradients
# (`fisher=batch`), and MAS's Omega as the mean over batches of |gradient of the batch-and-output mean of F^2|,
# i.e. our `estimate=batch` divided by the number of outputs (2 in the task and domain settings; 2 to 10 in the
# class setting, where 2 is used). The "exact" rows use our defaults (the papers' definitions) with the same
# coefficients.
VARIANTS = {
    "lwf-vdv": ("lwf", {"weighting": "van-de-ven"}, 1),
    "ewc": ("ewc", {"fisher": "batch"}, 1),
    "online-ewc": ("online-ewc", {"fisher": "batch"}, 1),
    "mas": ("mas", {"estimate": "batch"}, 2),
    "mas-exact": ("mas", {"estimate": "per-sample"}, 1),
    "ewc-exact": ("ewc", {"fisher": "per-sample"}, 1),
    "l-mas": ("l-mas", {}, 1),
    "lwf-vdv-all": ("lwf", {"weighting": "van-de-ven"}, 1),
    "lwf-vdv-2000it": ("lwf", {"weighting": "van-de-ven"}, 1),
}
# van de Ven & Tolias's code, which produced the paper's LwF numbers, distils all classes seen so far in the class
# setting (the new classes' targets padded with 0) and trains 2000 iterations of 128 per task on split-MNIST:
# 21 epochs is 1848-2079 iterations for our tasks (11,263-12,665 images).
CLASS_IL_OPTIONS = {"lwf-vdv-all": {"class_distillation": "all-classes"},
                    "lwf-vdv-2000it": {"class_distillation": "all-classes"}}
ROW_SETTINGS = {"lwf-vdv-all": ("class",)}
ROW_EPOCHS = {"lwf-vdv-2000it": 21}
JSON_PATH = RESULTS / "hsu2018_split_mnist.json"
MD_PATH = RESULTS / "hsu2018_split_mnist.md"

# Written after looking at the measured numbers.
NOTES = """\
Rows marked `!` (2 paper standard deviations or 1.5 points away), and what we found. Hsu et al.'s code
(GT-RIPL/Continual-Learning-Benchmark, agents/default.py and agents/regularization.py) differs from the protocol as
written in three ways that matter here:

1. **One Adam optimizer for the whole sequence.** `NormalNN` creates its optimizer once and `reset_optimizer` is
   False by default, so Adam's moment estimates (and step count) carry over from task to task; `lifelong`'s engine
   makes a fresh optimizer for every task, for every method. Adam's second moments from the end of a converged task
   are small, so the first steps on a new task are large, which should make fine-tuning forget more. This is our
   hypothesis (not checked by running their code) for why our task-IL fine-tuning (`finetune`) is about 4 points
   above the paper's 93.46 (our seeds vary by about 1 point; the paper's std is 2.0). The regularised methods
   should be much less sensitive to it (their penalty holds the weights), and their task-IL rows do agree.
2. **A pre-allocated 10-way head in the class-IL setting.** Hsu et al.'s single head has all 10 outputs from the
   start (unseen ones masked out of the loss), so every head row has a snapshot from the first task on. For L2,
   whose Omega is 1 everywhere, the rows of classes not yet seen are pinned to their random initialisation by
   lambda = 100: new classes can only be learned through small weights, which keeps old classes competitive
   (22.52). Our head grows per task and a part born after the snapshot has no importance (nothing to protect yet),
   so with lambda = 100 the new part is free while everything else is stiff: the new classes win every prediction
   and L2 ends slightly below fine-tuning (about 17.4). Loss-based and output-based importance (EWC, SI, MAS) is
   zero for the unseen rows in their code too, so those rows agree with the paper.
3. **Batch-based importance estimates.** Their EWC Fisher is B * (gradient of a batch's mean loss)^2 averaged
   over shuffled training batches; their MAS Omega is the mean over batches of |gradient of the batch-and-output
   mean of F^2|. The paper's coefficients were tuned with these, so the paper's rows here use the same estimators
   (`fisher=batch`; `estimate=batch` with lambda halved for MAS's 2 outputs). On split-MNIST task 1 the exact
   per-sample Fisher is about 120 times the batch estimate and the exact MAS Omega about 2.3 times Hsu's, so our
   defaults with the paper's coefficients are a stronger penalty than the paper's. Our batches are taken in the
   task's data order, not reshuffled, which changes the batch estimates somewhat: a candidate reason for EWC's
   domain-IL row sitting about 3 points below the paper's (2.59 std), while online EWC, L2, SI and MAS agree there.

Smaller flags: L2 domain-IL is 1.7 points below the paper's mean but well within its std (3.73); it is flagged by
the 1.5-point rule only. Joint (Offline) class-IL is 0.5 points above the paper's 97.53 +- 0.30; a fresh optimizer
per task (point 1) is a candidate, not investigated.

Rows `lwf-vdv-all` and `lwf-vdv-2000it` (added 2026-11-24) ran after the engine switched to PyTorch's fused Adam
(the same update up to rounding) and the head to one product over all task heads; the other rows ran before.
`lwf-vdv-2000it` trains 21 epochs per task (ROW_EPOCHS), all other rows 4.

The domain-IL rows of MAS (and, in the paper, L2 and SI) vary a lot from seed to seed (MAS: std about 7 in both the
paper and ours): a shared 2-way head decides between the two digits of every task, and whether the penalty keeps
the first tasks depends on the run. LwF's rows come from its own issue's runs; see its notes.

**LwF.** Task-IL agrees (99.62 against 99.60). Domain-IL (64.1 against 71.0) and class-IL (19.9 against 24.2) do
not, with Li & Hoiem's LwF as the issue asks for it. The paper's LwF numbers are those of van de Ven & Tolias's
benchmark code (GMvandeVen/continual-learning, 2019: encoder.py `train_a_batch`, train.py), which differs from Li &
Hoiem's LwF in three ways, each now an option or a row here:
(a) it weights the losses (1/t) L_new + (1 - 1/t) T^2 L_old, t the number of tasks so far (`--param
weighting=van-de-ven`; by the last task the old outputs weigh 16 times more relative to the new task than with
lambda_o = 1); (b) in the class setting it distils over every class seen so far, the teacher's targets padded with
0 for the new classes (`n_classes_to_consider = y_hat.size(1)`, "zeros will be added"; `--param
class_distillation=all-classes`), which also pushes the new classes' logits down on the new task's images; (c) it
trains 2000 iterations of 128 per task on split-MNIST, about 21 epochs of our tasks, not 4.
Domain-IL: (a) alone gives 75.3 +- 1.7 (row `lwf-vdv`, 4 epochs); (a) with (c) gives the paper's number (row
`lwf-vdv-2000it`, within one of the paper's standard deviations). So the domain-IL gap is explained: the paper's
LwF row was trained with that code's weighting and length, not the 4 epochs of the other rows.
Class-IL stays near 20 with every combination: (a) alone 19.9 (every old test image goes to a new class,
R[4][j] = 0.0 for j < 4); (a) with (b), row `lwf-vdv-all`, about 20.5, now the failure is the other way round (the
first task's classes keep most test images of every task and the last task scores near 0: with weight 1/t on L_new
and T^2 (1 - 1/t) = 3.2 on the padded distillation, the old classes win on the new images); (a), (b) and (c), row
`lwf-vdv-2000it`, about 20. Li & Hoiem's weighting with (b) and 21 epochs gave 24.4 in a single exploratory run
(seed 0, not in the table), with the old tasks partly kept (0.1, 0.1, 5.3, 17.3, 99.2): so (b) is the ingredient
that lets old classes survive, and which weighting the paper's 24.2 used with it we could not settle. Not tried:
that code's single Adam optimizer for the whole sequence (point 1) and its unnormalised [0, 1] inputs.
"""


def method_options(row: str, setting: str) -> tuple[str, dict]:
    """(registered method, its options) for a row of the table."""
    method, options, divisor = VARIANTS.get(row, (row, {}, 1))
    options = dict(options)
    if setting == "class":
        options.update(CLASS_IL_OPTIONS.get(row, {}))
    coefficients = COEFFICIENTS.get(row, COEFFICIENTS.get(method))
    if coefficients:
        options["strength"] = coefficients[SETTINGS.index(setting)] / divisor
    return method, options


RUNS_DIR = RESULTS / "hsu2018_split_mnist_runs"  # one file per run: invocations running at once never clobber


def load() -> dict:
    """The combined JSON, with every per-run file merged in."""
    document = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {"runs": {}}
    for path in sorted(RUNS_DIR.glob("*.json")) if RUNS_DIR.exists() else []:
        run = json.loads(path.read_text())
        document["runs"][run.pop("key")] = run
    return document


def save_run(key: str, run: dict, document: dict) -> dict:
    """Write the run's own file, then the combined JSON and the markdown from everything on disk."""
    write_json(RUNS_DIR / f"{key.replace('/', '_')}.json", {"key": key, **run})
    merged = load()
    merged.update({k: v for k, v in document.items() if k != "runs"})
    write_json(JSON_PATH, merged)
    MD_PATH.write_text(render(merged))
    return merged


def render(document: dict) -> str:
    runs = document["runs"]
    lines = [
        "# Hsu et al. 2018, Table 2: split-MNIST, average accuracy (%) after the last task", "",
        "Protocol: MNIST padded to 32x32 and normalised; 5 tasks of 2 digits; MLP 1024-400-400 (ReLU); 4 epochs per "
        "task, batch 128, Adam lr 0.001; task-IL (a 2-way head per task), domain-IL (one shared 2-way head), "
        "class-IL (one growing 10-way head). The paper's regularisation coefficients (task / domain / class), "
        "passed as `--param strength=...`: "
        + "; ".join(f"{m} {' / '.join(map(str, c))}" for m, c in COEFFICIENTS.items())
        + ". Estimators: the paper's rows use those of Hsu et al.'s code, which the coefficients were tuned with: "
        "EWC and online EWC `fisher=batch` (B * squared gradient of a batch's mean loss, predicted labels); MAS "
        "`estimate=batch` with the coefficient halved (their Omega: mean over batches of |gradient of the batch-and-"
        "output mean of F^2|, 2 outputs). The 'exact' rows use our defaults, the papers' definitions (per-sample "
        "mean of |g| for MAS, eq. 4 of Aljundi et al.; per-sample Fisher) with the same coefficients. Paper: mean +- std over 10 runs; ours: mean +- std (sample "
        "std) over the seeds shown (n). `!` marks ours differing from the paper by more than 2 of the paper's "
        "standard deviations or more than 1.5 points.", "",
        "Command: `flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python "
        "benchmarks/reproduce_hsu2018.py --methods METHODS --seeds 5`", "",
        "| method | task-IL paper | task-IL ours | domain-IL paper | domain-IL ours | class-IL paper | class-IL ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, (label, *paper) in PAPER.items():
        cells = []
        for setting, reference in zip(SETTINGS, paper):
            values = [r["final_average_accuracy"] * 100 for k, r in runs.items()
                      if k.startswith(f"{method}/{setting}/")]
            cells.append(f"{reference[0]:.2f} +- {reference[1]:.2f}" if reference else "-")
            if not values:
                cells.append("not run")
                continue
            mean = statistics.mean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            flag = ""
            if reference and (abs(mean - reference[0]) > 2 * reference[1] or abs(mean - reference[0]) > 1.5):
                flag = " !"
            cells.append(f"{mean:.2f} +- {std:.2f} (n={len(values)}){flag}")
        if any(c != "not run" for c in cells[1::2]):
            lines.append(f"| {label} (`{method}`) | " + " | ".join(cells) + " |")
    times = [r["wall_time_s"] for r in runs.values()]
    if times:
        lines += ["", f"{len(runs)} runs, {statistics.mean(times):.0f} s each on average (CPU, a shared 2-core "
                      "machine, OMP_NUM_THREADS=2)."]
    lines += ["", "## Where ours differs, and why", "", NOTES]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="finetune,joint,l2,ewc,online-ewc,si,mas",
                        help="comma-separated method names (unregistered ones are skipped)")
    parser.add_argument("--settings", default="task,domain,class")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    document = load()
    if not args.render_only:
        pin_threads()
        document["machine"], document["versions"] = machine(), versions()
        scenario = make_scenario("split-mnist", data_dir=args.data_dir or data_dir(), download=False)
        rows = [m.strip() for m in args.methods.split(",") if m.strip()]
        for row in rows:
            if VARIANTS.get(row, (row,))[0] not in METHODS:
                print(f"skipping {row}: not registered in this checkout", file=sys.stderr)
        rows = [row for row in rows if VARIANTS.get(row, (row,))[0] in METHODS]
        # seeds outermost: an invocation stopped early leaves every method with the same number of seeds
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for setting in args.settings.split(","):
                for row in rows:
                    if setting not in ROW_SETTINGS.get(row, SETTINGS):
                        continue
                    started = time.perf_counter()
                    method, options = method_options(row, setting)
                    epochs = ROW_EPOCHS.get(row, args.epochs)
                    results = run_experiment(method, scenario, setting, method_options=options, seed=seed,
                                             epochs=epochs, progress=False)
                    document = save_run(f"{row}/{setting}/{seed}", {
                        "final_average_accuracy": results["final_average_accuracy"],
                        "accuracy_matrix": results["accuracy_matrix"], "method_options": options,
                        "epochs": epochs, "wall_time_s": time.perf_counter() - started}, document)
                    print(f"{row:<11} {setting:<6} seed {seed}: "
                          f"{100 * results['final_average_accuracy']:.2f}% ({time.perf_counter() - started:.0f} s)",
                          flush=True)
    document = load()
    write_json(JSON_PATH, document)
    MD_PATH.write_text(render(document))
    print(f"wrote {MD_PATH}")


if __name__ == "__main__":
    main()
