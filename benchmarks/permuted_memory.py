"""Peak memory of a permuted-MNIST run against its number of tasks, and evaluation's share of the time.

Protocol (issue 14): permuted-MNIST (32x32), domain-incremental, fine-tuning, MLP 1024-400-400, 1 epoch per task,
batch 128, Adam 0.001, one torch thread; 5, 10 and 20 tasks, each in a fresh process (peak RSS = ru_maxrss of that
process). Target: peak RSS flat within 10 % from 5 to 20 tasks (before: 2.0, 3.4 and 6.1 GB, every task's permuted
images materialised when the scenario was built).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/permuted_memory.py
"""

import json
import resource
import subprocess
import sys

from _common import ROOT, data_dir, machine, save


def child(n_tasks: int) -> dict:
    import torch

    from lifelong.experiment import run_experiment
    from lifelong.benchmarks import make_scenario

    torch.set_num_threads(1)
    scenario = make_scenario("permuted-mnist", data_dir=data_dir(), n_tasks=n_tasks, download=False)
    results = run_experiment("finetune", scenario, "domain", epochs=1, progress=False)
    return {"n_tasks": n_tasks, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "train_s": sum(results["train_time_s"]), "eval_s": sum(results["eval_time_s"]),
            "final_average_accuracy": results["final_average_accuracy"]}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]))))
        return
    rows = []
    for n in (5, 10, 20):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
    lines = ["# Permuted-MNIST: peak memory against the number of tasks", "", __doc__.split("\n\n")[1].replace("\n", " "),
             "", "| tasks | peak RSS (MB) | training (s) | evaluation (s) | evaluation / training | final accuracy (%) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['n_tasks']} | {r['peak_rss_mb']:.0f} | {r['train_s']:.1f} | {r['eval_s']:.1f} | "
              f"{r['eval_s'] / r['train_s']:.2f} | {100 * r['final_average_accuracy']:.2f} |" for r in rows]
    lines += ["", f"Growth from 5 to 20 tasks: {100 * growth:+.1f}% (target within 10%: "
                  f"{'met' if abs(growth) <= 0.10 else 'NOT met'}). {machine()['cpu_count']} CPUs, one torch thread."]
    print("\n".join(lines))
    save("permuted_memory", {"rows": rows, "growth": growth, "machine": machine()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
