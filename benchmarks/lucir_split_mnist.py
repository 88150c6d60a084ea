"""LUCIR on class-incremental split-MNIST: its two lambda ratios (the official code's and the paper's equation) beside
replay and iCaRL with the same memory and seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lucir_split_mnist.py --seeds 1

Protocol: Hsu et al.'s split-MNIST (MLP 400-400, 4 epochs per task, batch 128, Adam 0.001), class-incremental, 2,000
exemplars, seed 0 (one seed: the brief's budget of about 10 minutes on the shared 2-core machine; differences under a
point are within what one seed can tell). Rows: lucir's defaults (lambda_ratio=code, sigma starting at 10), the
paper's ratio, the official code's sigma start (1), the nearest-mean classifier, the class-balanced fine-tuning of
the official ImageNet script (20 epochs at 0.01). Each run is saved as it ends in lucir_split_mnist_runs/; a rerun
skips it. Train time is the engine's, on a machine shared with other jobs: read it as a rough cost only.
"""

import argparse
import json

from _common import RESULTS, data_dir, machine, pin_threads, save

from lifelong.benchmarks import make_scenario
from lifelong.experiment import run_experiment
from lifelong.results import thread_note

ROWS = {
    "replay-2000": ("replay", {"memory": 2000}),
    "icarl-2000": ("icarl", {"memory": 2000}),
    "lucir-2000 (lambda_ratio=code, default)": ("lucir", {"memory": 2000}),
    "lucir-2000 lambda_ratio=paper": ("lucir", {"memory": 2000, "lambda_ratio": "paper"}),
    "lucir-2000 sigma=1 (the code's start)": ("lucir", {"memory": 2000, "sigma": 1.0}),
    "lucir-2000 classifier=nme": ("lucir", {"memory": 2000, "classifier": "nme"}),
    "lucir-2000 finetune_epochs=20": ("lucir", {"memory": 2000, "finetune_epochs": 20}),
}


def slug(row: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in row).strip("-")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    threads = pin_threads()
    runs_dir = RESULTS / "lucir_split_mnist_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    scenario = make_scenario("split-mnist", data_dir=data_dir())
    for seed in range(args.seeds):
        for row, (method, options) in ROWS.items():
            path = runs_dir / f"{slug(row)}_{seed}.json"
            if path.exists():
                continue
            results = run_experiment(method, scenario, "class", seed=seed, progress=False, method_options=options)
            path.write_text(json.dumps({"row": row, "seed": seed, "final": results["final_average_accuracy"],
                                        "curve": results["average_accuracy"],
                                        "train_time_s": sum(results["train_time_s"]),
                                        "sigma": results["method_details"].get("sigma"),
                                        "threads": results["threads"], "machine": results["machine"]}) + "\n")
            print(f"{row} seed {seed}: {100 * results['final_average_accuracy']:.2f}", flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    lines = ["# LUCIR on class-incremental split-MNIST", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"Machine: {machine()['cpu_count']} cores, {threads} torch thread(s).", "",
             "| row | final average accuracy (%) | accuracy after each task (%) | n | train time (s) |",
             "|---|---|---|---|---|"]
    summary = {}
    for row in ROWS:
        done = [r for r in runs if r["row"] == row]
        if not done:
            continue
        final = sum(100 * r["final"] for r in done) / len(done)
        curve = [sum(100 * r["curve"][i] for r in done) / len(done) for i in range(len(done[0]["curve"]))]
        times = sum(r["train_time_s"] for r in done) / len(done)
        summary[row] = {"final": final, "curve": curve, "n": len(done), "train_time_s": times}
        lines.append(f"| {row} | {final:.2f} | {', '.join(f'{a:.1f}' for a in curve)} | {len(done)} | {times:.0f} |")
    lines += ["", thread_note(runs)]
    save("lucir_split_mnist", {"machine": machine(), "runs": runs, "summary": summary}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
