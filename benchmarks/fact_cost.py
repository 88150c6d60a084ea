"""FACT's base session against plain base training, and its sessions, on fscil-omniglot.

Protocol: fscil-omniglot as the scenario trains it (MLP 400-400, 20 epochs of Adam 0.001, batch 64 over the 900 base
images; sessions of 25 shots). Three learners are trained on the base session side by side, in a rotating order, so
that a slow spell of the shared machine falls on all of them: `prototype` (the linear head's cross-entropy: plain base
training), `fact` with balance 0 (FACT's cosine head, L1 alone) and `fact` (L1 + balance (L2 + L3 + L4): the virtual
classes and the manifold mixup). Each base session is timed from `before_task` to `after_task` (the class means
included), by wall clock and by process CPU time (which a busy host's steal time does not inflate); the ratio of a
repetition is FACT's time over plain training's, the result the median over repetitions. Then each learner's 8 sessions
are timed once (FACT trains nothing there: the shots' means and nothing else).

    python benchmarks/fact_cost.py [--repeats 5] [--threads 1]
"""

import argparse
import statistics
import time

import torch
from _common import data_dir, machine, pin_threads, save

from lifelong.benchmarks import make_scenario
from lifelong.experiment import train_config
from lifelong.learner import Learner

VARIANTS = {"prototype": ("prototype", {}), "fact-l1": ("fact", {"balance": 0.0}), "fact": ("fact", {})}


def learner(name, seed):
    method, options = VARIANTS[name]
    config = train_config("fscil-omniglot", seed=seed, progress=False)
    return Learner(method, "mlp", "class", config=config, **options)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    scenario = make_scenario("fscil-omniglot", data_dir=data_dir(), download=False)
    base = scenario.tasks[0]
    names = list(VARIANTS)
    times = {name: {"wall": [], "cpu": []} for name in names}
    kept = {}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # a rotating order
            learners = learner(name, r)
            learners.build(base.x_train)
            learners.method.check(scenario)
            wall, cpu = timed(lambda: learners.learn_task(base, scenario))
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
            kept[name] = learners
        print(f"repetition {r}: " + ", ".join(f"{n} {times[n]['wall'][-1]:.2f} s" for n in names), flush=True)
    sessions = {name: [timed(lambda: kept[name].learn_task(task, scenario))[0] for task in scenario.tasks[1:]]
                for name in names}
    ratios = {clock: {name: [t / p for t, p in zip(times[name][clock], times["prototype"][clock])] for name in names}
              for clock in ("wall", "cpu")}
    median = {clock: {name: statistics.median(times[name][clock]) for name in names} for clock in ("wall", "cpu")}
    ratio = {clock: {name: statistics.median(ratios[clock][name]) for name in names} for clock in ("wall", "cpu")}
    rows = "".join(f"| {clock} | " + " | ".join(f"{median[clock][n]:.2f}" for n in names)
                   + f" | **{ratio[clock]['fact']:.2f}** | {ratio[clock]['fact-l1']:.2f} | "
                   + ", ".join(f"{x:.2f}" for x in ratios[clock]["fact"]) + " |\n" for clock in ("wall", "cpu"))
    session_rows = "".join(f"| {n} | " + " | ".join(f"{t:.3f}" for t in sessions[n]) + " |\n" for n in names)
    for clock in ("wall", "cpu"):
        print(f"{clock}: " + ", ".join(f"{n} {median[clock][n]:.2f} s" for n in names)
              + f"; fact / prototype {ratio[clock]['fact']:.2f}, fact-l1 / prototype {ratio[clock]['fact-l1']:.2f}")
    save("fact_cost", {"times": times, "ratios": ratios, "median_s": median, "ratio_median": ratio,
                       "sessions_s": sessions, "repeats": args.repeats, "threads": threads, "machine": machine()},
         f"# FACT's cost per session on fscil-omniglot\n\n{__doc__.strip().split(chr(10) * 2)[1]}\n\n"
         f"Command: `python benchmarks/fact_cost.py --repeats {args.repeats} --threads {threads}`\n\n"
         "Base session (s, median of the repetitions; ratios: each repetition's over `prototype`'s, then the "
         "median):\n\n| clock | prototype | fact, L1 alone | fact | fact / prototype | fact-L1 / prototype | "
         "fact / prototype, each repetition |\n|---|---|---|---|---|---|---|\n" + rows
         + "\nThe 8 sessions (s, wall clock, the learners of the last repetition; no training in any):\n\n"
         "| | " + " | ".join(str(t.id + 1) for t in scenario.tasks[1:]) + " |\n|---|" + "---|" * 8 + "\n"
         + session_rows)


if __name__ == "__main__":
    main()
