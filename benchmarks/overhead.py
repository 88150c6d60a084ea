"""Engine overhead: `lifelong`'s training loop against a bare PyTorch loop doing the same arithmetic.

Protocol (issue 2): fine-tuning on class-incremental split-MNIST (32x32, 5 tasks), MLP 1024-400-400 with a head
growing by 2 outputs per task, 1 epoch per task, batch 128, Adam 0.001 (a new optimizer per task), evaluation on
every seen task after each task. Both run in this process with the same number of threads, alternating, and the
ratio of medians is printed as `ratio: X.XX` (engine / bare). Target: <= 1.10.
Both wall-clock and process CPU time are recorded; `--clock cpu` with `--threads 1` gives a ratio that other
jobs on the machine barely disturb (wall-clock is the default and the figure that matters on a quiet machine).

    python benchmarks/overhead.py [--repeats 5] [--threads 2] [--clock wall|cpu]
"""

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from _common import data_dir, machine, pin_threads, save
from torch import nn

from lifelong.engine import TrainConfig, run
from lifelong.experiment import build_method, build_model
from lifelong.benchmarks import make_scenario


def bare_loop(scenario, seed: int) -> list[float]:
    """The same model, batches, optimizer and evaluation, written as plainly as PyTorch allows."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(1024, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU())
    heads = nn.ModuleList()
    generator = torch.Generator().manual_seed(seed)
    accuracies = []
    for t, task in enumerate(scenario.tasks):
        heads.append(nn.Linear(400, task.n_classes))
        params = list(backbone.parameters()) + list(heads.parameters())
        optimizer = torch.optim.Adam(params, lr=0.001, fused=True)  # as the engine makes it
        x, y = task.x_train, task.y_train + 2 * t
        backbone.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            idx = order[start:start + 128]
            features = backbone(x[idx])
            logits = torch.cat([h(features) for h in heads], 1)
            loss = F.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        backbone.eval()
        with torch.no_grad():
            for j, seen in enumerate(scenario.tasks[: t + 1]):
                correct = 0
                for start in range(0, len(seen.x_test), 1024):
                    features = backbone(seen.x_test[start:start + 1024])
                    logits = torch.cat([h(features) for h in heads], 1)
                    correct += int((logits.argmax(1) == seen.y_test[start:start + 1024] + 2 * j).sum())
                accuracies.append(correct / len(seen.x_test))
    return accuracies


def engine_run(scenario, seed: int, out_dir=None) -> dict:
    torch.manual_seed(seed)
    method = build_method("finetune", build_model(scenario, hidden=(400, 400)), "class")
    config = TrainConfig(epochs=1, batch_size=128, lr=0.001, optimizer="adam", seed=seed, progress=False)
    return run(method, scenario, config, out_dir=out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    scenario = make_scenario("split-mnist", data_dir=data_dir(), download=False)
    engine_run(scenario, 0), bare_loop(scenario, 0)  # warm-up: first-call costs are nobody's overhead
    names = ("engine", "bare", "engine_with_checkpoints")
    clocks = {"wall": {k: [] for k in names}, "cpu": {k: [] for k in names}}
    for r in range(args.repeats):
        for name in names:
            wall, cpu = time.perf_counter(), time.process_time()
            if name == "bare":
                accuracy = bare_loop(scenario, r)
            elif name == "engine":
                results = engine_run(scenario, r)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    engine_run(scenario, r, out_dir=tmp)
            clocks["wall"][name].append(time.perf_counter() - wall)
            clocks["cpu"][name].append(time.process_time() - cpu)
    times = clocks[args.clock]
    median = {k: statistics.median(v) for k, v in times.items()}
    other = "cpu" if args.clock == "wall" else "wall"
    other_ratio = statistics.median(clocks[other]["engine"]) / statistics.median(clocks[other]["bare"])
    ratio = median["engine"] / median["bare"]
    ratio_ckpt = median["engine_with_checkpoints"] / median["bare"]
    print(f"{args.clock} clock: bare loop: {median['bare']:.2f} s, engine: {median['engine']:.2f} s, "
          f"engine writing results + checkpoints: {median['engine_with_checkpoints']:.2f} s "
          f"(medians of {args.repeats}, {threads} threads)")
    print(f"final average accuracy: engine {results['final_average_accuracy']:.4f}, "
          f"bare {sum(accuracy[-5:]) / 5:.4f}")
    print(f"ratio: {ratio:.2f}")
    print(f"ratio with checkpoints: {ratio_ckpt:.2f}")
    print(f"ratio by {other} clock: {other_ratio:.2f}")
    document = {"protocol": __doc__.strip().split("\n\n")[1], "clock": args.clock, "times_s": clocks,
                "median_s": median, "ratio": ratio, "ratio_with_checkpoints": ratio_ckpt,
                f"ratio_{other}_clock": other_ratio, "target": 1.10, "machine": machine()}
    markdown = (f"# Engine overhead (split-MNIST fine-tuning, class-incremental)\n\n{document['protocol']}\n\n"
                f"Clock: {args.clock} (by the {other} clock the ratio is {other_ratio:.2f}).\n\n"
                f"| loop | median time (s) | ratio to bare |\n|---|---|---|\n"
                f"| bare PyTorch | {median['bare']:.2f} | 1.00 |\n| lifelong engine | {median['engine']:.2f} | {ratio:.2f} |\n"
                f"| engine + results.json + checkpoint after each task | {median['engine_with_checkpoints']:.2f} | "
                f"{ratio_ckpt:.2f} |\n\n{args.repeats} repetitions, {threads} threads, "
                f"{machine()['cpu_count']} CPUs, torch {torch.__version__}.\n")
    save("overhead", document, markdown)


if __name__ == "__main__":
    main()
