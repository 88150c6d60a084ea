"""The DER authors' own code (aimagelab/mammoth) run on this machine for the S-MNIST cells of
`lifelong reproduce buzzega2020-der` that are flagged (more than 1.5 points from the paper): does the paper's code
give the paper's numbers here? If it does, a gap is ours; if it does not, the gap is between the paper and its code.

Each run is Mammoth's `main.py --dataset seq-mnist` with the row's first-release best_args (the same numbers as
lifelong.reproduce_der.BEST_ARGS["seq-mnist"]: Mammoth's utils/best_args.py at d20f640), one epoch, seeds 0..N-1.
Mammoth prints, after the last task, the class-IL accuracy and the task-IL accuracy of the same run (task-IL: the
other tasks' outputs masked at test); both are kept.

Setup (once): unpack a snapshot and make it run offline on CPU in the peers environment:

    mkdir -p MAMMOTH && git --git-dir=/work/.mirror/aimagelab+mammoth/repo archive HEAD | tar -x -C MAMMOTH
    VENV=/work/peers-venv MAMMOTH=MAMMOTH DATA=/work/shared/data bash /work/shared/peers/setup_mammoth.sh

then (one run at a time, about 40 s of CPU each; 2-3 minutes on the shared 2-core VM):

    MAMMOTH=/work/mammoth VENV=/work/peers-venv OMP_NUM_THREADS=1 python benchmarks/mammoth_crosscheck.py \
        [--rows der-200,der++-200,der-500,er-200,sgd,lwf,icarl-200] [--seeds 3]

Edits to the snapshot, made by this script when missing: main.py's `torch.set_num_threads(2)` takes
OMP_NUM_THREADS instead (two threads on a loaded 2-core VM made each step 0.6 s, not 2 ms); two dataset modules
that import ones setup_mammoth.sh set aside are set aside too; and utils/buffer.py's MNIST `refold_transform` reads
MAMMOTH_FIRST_RELEASE_CAST (set only for the `icarl-200-cast` row, see CAST below). None changes the arithmetic of
the other rows. (`--disable_log 1` is not used: the current main fails with it, `logger` unbound.)
Finished runs are kept in benchmarks/results/buzzega2020_der_mammoth.json and skipped when the command is rerun.

Mapping of the first release's options onto the current code (HEAD e75a491; seq-mnist itself is unchanged since
d20f640: 28x28 ToTensor inputs in [0, 1], no normalisation or augmentation, MLP 784-100-100-10 with Xavier-uniform
weights, classes in the fixed order 0-1, 2-3, ..., plain SGD): LwF's `--wd_reg 0.0005` (an L2 term
wd_reg * sum(w^2) in the loss) is `--optim_wd 0.001` now (SGD weight decay adds wd * w to the gradient, the L2 term
2 * wd_reg * w); iCaRL's `--wd_reg 0` is `--opt_wd 0`.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, machine

from lifelong.reproduce_der import BEST_ARGS
from lifelong.results import machine_line, summary

NAME = "buzzega2020_der_mammoth"
# row -> (Mammoth model, buffer or -1, extra options not in best_args or renamed; the paper's class-IL, task-IL)
PAPER = {"sgd": (19.60, 94.94), "lwf": (19.62, 94.11), "er-200": (80.43, 97.86), "icarl-200": (70.51, 98.28),
         "der-200": (84.55, 98.80), "der-500": (90.54, 98.84), "der++-200": (85.61, 98.76)}
ROWS = {"der-200": ("der", 200), "der++-200": ("derpp", 200), "der-500": ("der", 500), "er-200": ("er", 200),
        "sgd": ("sgd", -1), "lwf": ("lwf", -1), "icarl-200": ("icarl", 200), "icarl-200-cast": ("icarl", 200)}
PAPER["icarl-200-cast"] = PAPER["icarl-200"]
# the first release's iCaRL (7ab9db9, with 5dc82be's identity `denorm` for MNIST, a day after d20f640, where
# `denorm(None)` fails at the second task) put the exemplars back into MNIST's uint8 training data as
# `examples.type(torch.uint8)`: floats in [0, 1] cast to 0 (1 where a pixel was exactly 1.0), so the exemplars it
# trained on were black images; the current code multiplies by 255 first. `icarl-200-cast` runs the current code
# with the first release's cast (an environment variable read by the patched line, see prepare)
CAST = 'def refold_transform(x): return (x.cpu() * 255).squeeze(1).type(torch.uint8)'
CAST_OLD = ('def refold_transform(x): return (x.cpu() * (1 if os.environ.get("MAMMOTH_FIRST_RELEASE_CAST") else '
            '255)).squeeze(1).type(torch.uint8)  # lifelong cross-check')
FINAL = re.compile(r"Accuracy for 5 task\(s\):\s*\[Class-IL\]:\s*([\d.]+) %\s*\[Task-IL\]:\s*([\d.]+) %")


def options(row: str) -> list[str]:
    model, buffer = ROWS[row]
    args = dict(BEST_ARGS["seq-mnist"][model][buffer])
    if model == "lwf":  # the first release's L2 term in the loss = SGD weight decay of twice its weight
        args["optim_wd"] = 2 * args.pop("wd_reg")
    if model == "icarl":
        args["opt_wd"] = args.pop("wd_reg")
    if buffer > 0:
        args["buffer_size"] = buffer
    return [f"--{k}={v}" for k, v in args.items()]


def prepare(mammoth: Path) -> None:
    main = mammoth / "main.py"
    text = main.read_text()
    if "torch.set_num_threads(2)\n" in text:
        main.write_text(text.replace("torch.set_num_threads(2)\n", 'torch.set_num_threads(int(os.environ.get('
                                     '"OMP_NUM_THREADS", "2")))  # lifelong cross-check: threads from OMP\n'))
    buffer = mammoth / "utils" / "buffer.py"
    text = buffer.read_text()
    if CAST in text:
        if "\nimport os\n" not in text:
            text = "import os\n" + text
        buffer.write_text(text.replace(CAST, CAST_OLD))
    for name in ("seq_cub200_rs.py", "seq_tinyimagenet_r.py"):  # import data sets setup_mammoth.sh set aside
        if (mammoth / "datasets" / name).exists():
            (mammoth / "datasets_unused").mkdir(exist_ok=True)
            (mammoth / "datasets" / name).rename(mammoth / "datasets_unused" / name)


def run_one(mammoth: Path, venv: Path, row: str, seed: int) -> dict:
    model = ROWS[row][0]
    command = [str(venv / "bin" / "python"), "main.py", "--dataset", "seq-mnist", "--model", model, *options(row),
               f"--seed={seed}", "--non_verbose=1", "--num_workers=0"]
    started, cpu = time.time(), os.times()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("MAMMOTH_FIRST_RELEASE_CAST", None)
    if row == "icarl-200-cast":
        env["MAMMOTH_FIRST_RELEASE_CAST"] = "1"
    out = subprocess.run(command, cwd=mammoth, capture_output=True, text=True, env=env)
    after = os.times()
    found = FINAL.findall(out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        sys.exit(f"{row} seed {seed} failed (exit {out.returncode}):\n{(out.stdout + out.stderr)[-3000:]}")
    class_il, task_il = map(float, found[-1])
    return {"row": row, "seed": seed, "class_il": class_il, "task_il": task_il,
            "command": " ".join(command[1:]), "wall_s": round(time.time() - started, 1),
            "cpu_s": round(after.children_user + after.children_system - cpu.children_user - cpu.children_system, 1)}


def markdown(document: dict) -> str:
    lines = ["# Mammoth (the DER authors' code) on S-MNIST, run here: final average accuracy (%)", "",
             f"Mammoth {document['mammoth_commit']} (`main.py --dataset seq-mnist`, the first release's best_args, "
             "one epoch); mean +- sample std over seeds 0..n-1. Paper: Buzzega et al. 2020, Tables 2-3 (mean of 10 "
             "runs). Ours: benchmarks/results/buzzega2020_der.md. Made by benchmarks/mammoth_crosscheck.py.", "",
             "| row | Mammoth options | class-IL paper | Mammoth here | task-IL paper | Mammoth here |",
             "|---|---|---|---|---|---|"]
    for row in ROWS:
        runs = [run for run in document["runs"] if run["row"] == row]
        if not runs:
            continue
        paper = PAPER[row]
        lines.append(f"| {row} | `{' '.join(options(row))}` | {paper[0]:.2f} | "
                     f"{summary([r['class_il'] for r in runs])} | {paper[1]:.2f} | "
                     f"{summary([r['task_il'] for r in runs])} |")
    lines += ["", "Per seed (class-IL / task-IL):", ""]
    for run in document["runs"]:
        lines.append(f"- {run['row']} seed {run['seed']}: {run['class_il']:.2f} / {run['task_il']:.2f} "
                     f"({run['cpu_s']} s CPU, {run['wall_s']} s wall)"
                     + (f"; {run['note']}" if run.get("note") else ""))
    lines += ["", f"Made on: {machine_line(document['machine'])}, OMP_NUM_THREADS={document['threads']}, "
              "shared with other jobs (wall times are not comparable)."]
    return "\n".join(lines) + "\n"


def saved(path: Path) -> list[dict]:
    return json.loads(path.read_text())["runs"] if path.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    mammoth = Path(os.environ.get("MAMMOTH", "/work/mammoth"))
    venv = Path(os.environ.get("VENV", "/work/peers-venv"))
    if not (mammoth / "main.py").exists():
        sys.exit(f"no Mammoth in {mammoth}: see this script's docstring for the setup")
    prepare(mammoth)
    rows = args.rows.split(",")
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    path = RESULTS / f"{NAME}.json"
    document = json.loads(path.read_text()) if path.exists() else {"runs": []}
    commit = subprocess.run(["git", "--git-dir=/work/.mirror/aimagelab+mammoth/repo", "rev-parse", "--short",
                             "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    document.update(mammoth_commit=commit, threads=os.environ.get("OMP_NUM_THREADS", "1"),
                    machine={**machine(), **document.get("machine", {})})
    for seed in range(args.seeds):  # seeds outermost: a grid stopped early leaves every row with as many seeds
        for row in rows:
            if any(run["row"] == row and run["seed"] == seed for run in saved(path)):
                continue
            run = run_one(mammoth, venv, row, seed)
            print(f"{row} seed {seed}: class-IL {run['class_il']:.2f} task-IL {run['task_il']:.2f} "
                  f"({run['cpu_s']} s CPU, {run['wall_s']} s)", flush=True)
            # the runs on disk now (another command may have added some meanwhile), and this one
            document["runs"] = [r for r in saved(path) if (r["row"], r["seed"]) != (row, seed)] + [run]
            document["runs"].sort(key=lambda r: (list(ROWS).index(r["row"]), r["seed"]))
            path.write_text(json.dumps(document, indent=2) + "\n")
            (RESULTS / f"{NAME}.md").write_text(markdown(document))


if __name__ == "__main__":
    main()
