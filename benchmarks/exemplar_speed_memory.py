"""Exemplar methods: herding speed, BiC's stage 2 against stage 1, replay's cost per sample, memory over tasks.

1. Herding: `ExemplarMemory(budget=2000).update` choosing 20 exemplars for each of 100 classes of 500 random 64-dim
   features (ResNet-32's feature size), and 1,000 for each of split-MNIST task 1's 2 classes (about 6,000 images
   each) on the 400-dim features of the MLP that BiC trained (part 2); best of 3.
2. BiC (memory 2000) on split-MNIST class-IL, the defaults (MLP 400-400, 4 epochs, Adam 0.001, batches of 128):
   stage 2 (`correct_bias`) against stage 1 of the same step (the task's `train_time_s` less stage 2 and less the
   herding of the new exemplars, both timed by wrapping the methods).
3. Replay (memory 2000, random selection) against fine-tuning on split-MNIST class-IL, trained side by side task by
   task, alternating which goes first: seconds of `train_task` per training sample seen over tasks 2-5 (replay sees
   its memory too); the minimum of 3 repetitions of each.
4. Replay, --memory 2000, on a synthetic class-IL sequence of 5, 10 and 20 tasks (2 new classes per task, 1,000
   random 1x32x32 inputs per class, 1 epoch), each in a fresh process: peak resident memory. A task's data is made
   when the task starts and dropped when it ends, so the scenario holds one task's data at a time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exemplar_speed_memory.py
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from _common import best_of, data_dir, machine, pin_threads, save
from lifelong.engine import TrainConfig, run
from lifelong.training import train_task
from lifelong.experiment import build_method, build_model, train_config
from lifelong.memory import ExemplarMemory
from lifelong.methods.bic import BiC
from lifelong.results import versions
from lifelong.benchmarks import make_scenario
from lifelong.scenarios import Scenario, Task

NOTES = """## Notes

Machine: a shared virtual machine with 2 cores, another heavy job running beside this one; torch on 1 thread
(OMP_NUM_THREADS=1). Absolute times move by 10-25% from minute to minute here; the ratios (parts 2 and 3) are
measured within one run, the two sides interleaved. Targets:
- herding: choosing 2,000 exemplars of 100 classes (20 of 500 per class, 64-dim features) takes under 1 s on CPU;
- BiC: stage 2 (the bias layer's 200 epochs on cached validation logits) costs under 2% of stage 1 of its step;
- replay: a training sample seen costs what it costs fine-tuning, within 5% (replay sees more samples per epoch,
  it should not pay more per sample);
- memory: with a fixed budget the exemplar store stays at the budget, so the peak resident memory does not grow
  with the number of tasks beyond what the scenario's own data and the growing head add.
"""


def herding_speed(mnist_task, features) -> dict:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100 * 500, 64, generator=g), torch.arange(100).repeat_interleave(500)
    synthetic = best_of(lambda: ExemplarMemory(budget=2000).update(x, y, 0, features=lambda f: f))
    xm, ym = mnist_task.x_train, mnist_task.y_train
    total = best_of(lambda: ExemplarMemory(budget=2000).update(xm, ym, 0, features=features))
    forward = best_of(lambda: features(xm))
    return {"synthetic_100x500x64_s": synthetic,
            "mnist_task1": {"samples_per_class": torch.bincount(ym).tolist(), "feature_dim": features(xm[:1]).shape[1],
                            "update_s": total, "feature_pass_s": forward, "herding_s": total - forward}}


class TimedBiC(BiC):
    """BiC with stage 2 and the memory update timed per step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage2_s, self.herding_s = {}, {}

    def correct_bias(self, task):
        started = time.perf_counter()
        super().correct_bias(task)
        self.stage2_s[task.id] = time.perf_counter() - started

    def update_memory(self, task):
        started = time.perf_counter()
        super().update_memory(task)
        self.herding_s[task.id] = time.perf_counter() - started


def bic_stages(scenario, config) -> tuple[dict, TimedBiC]:
    torch.manual_seed(0)
    method = TimedBiC(build_model(scenario), "class", memory=2000)
    results = run(method, scenario, config)
    steps = []
    for t, total in enumerate(results["train_time_s"]):
        stage2, herd = method.stage2_s.get(t, 0.0), method.herding_s[t]
        steps.append({"step": t + 1, "train_time_s": total, "herding_s": herd, "stage2_s": stage2,
                      "stage1_s": total - stage2 - herd, "stage2_share": stage2 / (total - stage2 - herd)})
    return {"steps": steps, "worst_share": max(s["stage2_share"] for s in steps[1:]),
            "final_average_accuracy": results["final_average_accuracy"]}, method


def replay_cost(scenario, config, repeats=3) -> dict:
    names, reps = ("finetune", "replay"), []
    for rep in range(repeats):
        torch.manual_seed(rep)
        learners = {"finetune": build_method("finetune", build_model(scenario), "class"),
                    "replay": build_method("replay", build_model(scenario), "class", {"memory": 2000})}
        seconds, seen = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
        for task in scenario.tasks:
            for name in names if (task.id + rep) % 2 == 0 else names[::-1]:
                method = learners[name]
                method.before_task(task)
                n = len(method.training_data(task)[0])
                started = time.perf_counter()
                train_task(method, task, scenario, config, torch.Generator().manual_seed(rep))
                if task.id > 0:
                    seconds[name] += time.perf_counter() - started
                    seen[name] += config.epochs * n
                method.after_task(task)
        per_sample = {name: seconds[name] / seen[name] for name in names}
        reps.append({"seconds": seconds, "samples_seen": seen, "us_per_sample": {k: 1e6 * v for k, v in per_sample.items()},
                     "ratio": per_sample["replay"] / per_sample["finetune"]})
    best = {name: min(r["us_per_sample"][name] for r in reps) for name in names}
    return {"repetitions": reps, "best_us_per_sample": best, "ratio": best["replay"] / best["finetune"]}


def memory_child(n_tasks: int) -> dict:
    """Replay --memory 2000 on n_tasks synthetic tasks in this process: peak RSS and what the memory holds."""
    pin_threads(1)
    shape, per_class = (1, 32, 32), 1000
    empty_x, empty_y = torch.empty(0, *shape), torch.empty(0, dtype=torch.long)
    tasks = [Task(t, [2 * t, 2 * t + 1], empty_x, empty_y, empty_x, empty_y) for t in range(n_tasks)]
    scenario = Scenario("synthetic-class-il", tasks, list(range(2 * n_tasks)), [str(c) for c in range(2 * n_tasks)], shape)
    torch.manual_seed(0)
    method = build_method("replay", build_model(scenario), "class", {"memory": 2000})
    method.check(scenario)
    config = TrainConfig(epochs=1, batch_size=128, lr=0.001, optimizer="adam", progress=False)
    generator = torch.Generator().manual_seed(0)
    for task in tasks:
        task.y_train = torch.arange(2).repeat_interleave(per_class)
        task.x_train = torch.randn(2 * per_class, *shape, generator=generator) + task.y_train.view(-1, 1, 1, 1)
        method.before_task(task)
        train_task(method, task, scenario, config, generator)
        method.after_task(task)
        task.x_train, task.y_train = empty_x, empty_y  # the learner keeps no old data
    stored = method.memory.x.values()
    storages = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for v in stored}
    with open("/proc/self/status") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return {"n_tasks": n_tasks, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "vmhwm_mb": hwm_kb / 1024, "memory_samples": len(method.memory),
            "memory_nominal_mb": sum(v.numel() * v.element_size() for v in stored) / 2**20,
            "memory_storage_mb": sum(storages.values()) / 2**20,
            "task_data_mb": 2 * per_class * torch.Size(shape).numel() * 4 / 2**20}


def memory_growth() -> dict:
    rows = [json.loads(subprocess.run([sys.executable, __file__, "--memory-child", str(n)], check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
            for n in (5, 10, 20)]
    return {"runs": rows, "growth_5_to_20_mb": rows[-1]["vmhwm_mb"] - rows[0]["vmhwm_mb"],
            "growth_5_to_20": rows[-1]["vmhwm_mb"] / rows[0]["vmhwm_mb"] - 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-child", type=int, default=None)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return
    started = time.perf_counter()
    pin_threads(1)
    memory = memory_growth()  # first, before this process holds MNIST
    scenario = make_scenario("split-mnist", data_dir=data_dir(), download=False)
    config = train_config("split-mnist", progress=False)
    bic, bic_method = bic_stages(scenario, config)
    herd = herding_speed(scenario.tasks[0], bic_method.features)
    replay = replay_cost(scenario, config)
    document = {"herding": herd, "bic": bic, "replay": replay, "memory": memory, "machine": machine(),
                "versions": versions(), "wall_time_s": time.perf_counter() - started}
    ok = lambda met: "met" if met else "NOT met"  # noqa: E731
    h, mh = herd, herd["mnist_task1"]
    lines = ["# Exemplar methods: herding speed, BiC stages, replay's cost per sample, memory over tasks", "",
             f"One run of `benchmarks/exemplar_speed_memory.py`, CPU, {document['machine']['torch_threads']} torch "
             f"thread, {document['wall_time_s']:.0f} s in all. Protocol in the script's docstring.", "",
             "## Herding (`ExemplarMemory.update`, budget 2000, best of 3)", "",
             f"- 100 classes x 500 samples, 64-dim features, 20 exemplars per class: **{h['synthetic_100x500x64_s']:.3f} s** "
             f"(target < 1 s: {ok(h['synthetic_100x500x64_s'] < 1)})",
             f"- split-MNIST task 1 ({' and '.join(map(str, mh['samples_per_class']))} samples), {mh['feature_dim']}-dim "
             f"MLP features, 1,000 exemplars per class: {mh['update_s']:.2f} s, of which the feature pass "
             f"{mh['feature_pass_s']:.3f} s and herding {mh['herding_s']:.2f} s", "",
             "## BiC on split-MNIST class-IL (memory 2000): stage 2 against stage 1", "",
             "| step | stage 1 (s) | herding (s) | stage 2 (s) | stage 2 / stage 1 |", "|---|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['stage1_s']:.2f} | {s['herding_s']:.2f} | {s['stage2_s']:.3f} | "
              f"{100 * s['stage2_share']:.2f}% |" for s in bic["steps"]]
    lines += ["", f"Worst step: {100 * bic['worst_share']:.2f}% (target < 2%: {ok(bic['worst_share'] < 0.02)}); BiC's final "
              f"average accuracy {100 * bic['final_average_accuracy']:.1f}%.", "",
              "## Replay against fine-tuning: seconds per training sample seen (tasks 2-5)", "",
              "| repetition | fine-tuning (us/sample) | replay (us/sample) | replay / fine-tuning |", "|---|---|---|---|"]
    lines += [f"| {i + 1} | {r['us_per_sample']['finetune']:.2f} | {r['us_per_sample']['replay']:.2f} | {r['ratio']:.3f} |"
              for i, r in enumerate(replay["repetitions"])]
    lines += [f"| best of 3 | {replay['best_us_per_sample']['finetune']:.2f} | {replay['best_us_per_sample']['replay']:.2f} "
              f"| **{replay['ratio']:.3f}** |", "",
              f"Target: equal within 5%: {ok(abs(replay['ratio'] - 1) < 0.05)}.", "",
              "## Replay --memory 2000, synthetic class-IL (2 classes x 1,000 per task): peak resident memory", "",
              "| tasks | peak RSS, VmHWM (MB) | ru_maxrss (MB) | exemplars | exemplars' bytes (MB) | storage they keep alive (MB) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['n_tasks']} | {r['vmhwm_mb']:.1f} | {r['ru_maxrss_mb']:.1f} | {r['memory_samples']} | "
              f"{r['memory_nominal_mb']:.2f} | {r['memory_storage_mb']:.2f} |" for r in memory["runs"]]
    lines += ["", f"Growth from 5 to 20 tasks: {memory['growth_5_to_20_mb']:+.1f} MB ({100 * memory['growth_5_to_20']:+.2f}%). "
              f"The scenario's data is one task's at a time ({memory['runs'][0]['task_data_mb']:.1f} MB, the same for "
              "every task count), so none of the growth is the scenario's.", "", NOTES]
    markdown = "\n".join(lines) + "\n"
    save("exemplar_speed_memory", document, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
