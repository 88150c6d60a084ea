"""Local learning against forgetting: competitive learning and neural gas beside fine-tuning (and joint training,
the upper bound) on class-incremental split-digits and split-MNIST, through the same engine and metrics.

Protocol: `lifelong run` defaults for each scenario (split-digits: 10 epochs, batch 32; split-MNIST, Hsu et al.
2018: MLP 400-400, 4 epochs, batch 128, Adam 0.001 for the gradient methods), class-incremental (one head, no
task id at test time), natural class order, seed 0. The local learners use their defaults: 20 units per class,
initialised on samples of the class; only the units of a sample's own class learn.

    flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/hebbian_continual.py
"""

import json
import os
import time

from _common import RESULTS, save

from lifelong.experiment import run_experiment
from lifelong.report import comparison_table, plot
from lifelong.benchmarks import make_scenario

METHODS = ("finetune", "joint", "competitive", "neural-gas")


def matrix_table(R) -> str:
    n = len(R)
    head = "| after task | " + " | ".join(f"task {j + 1}" for j in range(n)) + " |\n|" + "---|" * (n + 1)
    rows = ["| " + str(i + 1) + " | " + " | ".join("" if v is None or v != v else f"{100 * v:.1f}" for v in row) + " |"
            for i, row in enumerate(R)]
    return head + "\n" + "\n".join(rows)


def main():
    data_dir = os.environ.get("LIFELONG_SHARED_DATA", "/work/shared/data")
    summary, sections = {}, []
    for scenario_name in ("split-digits", "split-mnist"):
        scenario = make_scenario(scenario_name, data_dir=data_dir, download=False)
        results = []
        for method in METHODS:
            started = time.perf_counter()
            results.append(run_experiment(method, scenario, "class", progress=False))
            print(f"{scenario_name} {method}: final {results[-1]['final_average_accuracy']:.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        plot(results, RESULTS / f"hebbian_continual_{scenario_name}.png")
        table = comparison_table(results)
        print(table)
        summary[scenario_name] = [{k: r[k] for k in ("method", "setting", "accuracy_matrix", "average_accuracy",
                                                     "final_average_accuracy", "final_forgetting",
                                                     "backward_transfer", "wall_time_s", "config")}
                                  for r in results]
        matrices = "\n\n".join(f"**{r['method']}** (final average accuracy {100 * r['final_average_accuracy']:.1f}%, "
                               f"forgetting {100 * r['final_forgetting']:.1f}%, {r['wall_time_s']:.0f} s)\n\n"
                               f"{matrix_table(r['accuracy_matrix'])}" for r in results)
        sections.append(f"## {scenario_name}, class-incremental\n\n```\n{table}\n```\n\n{matrices}\n\n"
                        f"Plot: `hebbian_continual_{scenario_name}.png`.")
    final = {s: {r["method"]: r["final_average_accuracy"] for r in runs} for s, runs in summary.items()}
    forgetting = {s: {r["method"]: r["final_forgetting"] for r in runs} for s, runs in summary.items()}
    save("hebbian_continual", json.loads(json.dumps(summary, default=str)), f"""# Local learning against forgetting: competitive learning and neural gas vs fine-tuning

`benchmarks/hebbian_continual.py` (under the heavy-job lock, 2 CPU threads). Class-incremental: after each task
the model is tested on every task seen, with no task id (prediction over all classes seen so far). R[i][j] =
accuracy (%) on task j after learning task i. Defaults of `lifelong run`; seed 0, one run each.

The point (the seed's answer to forgetting, in numbers): fine-tuning a network by gradient descent overwrites
what the old classes needed, and ends knowing only the last task (final average accuracy
{100 * final['split-mnist']['finetune']:.1f}% on split-MNIST, the ~20% every paper reports). Competitive learning and
neural gas learn locally: a sample moves only units of its own class, so no later task touches an earlier unit
and the old columns of R stay high (competitive: {100 * final['split-mnist']['competitive']:.1f}%,
neural gas: {100 * final['split-mnist']['neural-gas']:.1f}% on split-MNIST, forgetting
{100 * forgetting['split-mnist']['competitive']:.1f}% and {100 * forgetting['split-mnist']['neural-gas']:.1f}% against
fine-tuning's {100 * forgetting['split-mnist']['finetune']:.1f}%). Joint training on all the data, which keeps every
old sample, reaches {100 * final['split-mnist']['joint']:.1f}%: the gap between it and the local learners is the price
of a nearest-unit classifier with 20 units per class on raw pixels, not forgetting. What small decline remains
along a column of R is competition, not overwriting: a new class's units can be nearer to some of an old class's
test images than that class's own (unchanged) units.

{chr(10).join(sections)}
""")


if __name__ == "__main__":
    main()
