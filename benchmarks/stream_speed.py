"""The stream rehearsal methods' cost per step and memory, ours side by side with Avalanche 0.6's.

Protocol (Buzzega et al.'s rehearsal setting): split-MNIST class-incremental at 28x28 (5 tasks of 2 digits; each
task's first N training samples: 1,000 at batch 10, 2,560 at batch 128, enough steps for a median), an MLP
784-100-100 with 10 outputs, plain SGD lr 0.03 (fused, as the library makes it), a buffer of 500, the replay draw as
large as the incoming batch, one torch thread. Ours learn from the stream as a user runs them (`Learner.learn_task`
with `TrainConfig(stream=True)`: the engine's step loop, the method's hooks, every output from the start); the
reference is a plain PyTorch loop: the incoming batch and a replay batch of as many samples (a fixed index draw
into 500 stored samples) in one forward and backward pass, and the step. Avalanche's ER (Naive + ReplayPlugin with
a reservoir storage), DER (as DER++: alpha 1.0, beta 0.5), A-GEM and ER_ACE run in the peers environment, in a
process of their own fed the same tensors (`_stream_speed_avalanche.py`), one command at a time: never at the same
time as ours. Each repetition runs every row of ours once (in a rotated order) and Avalanche's once, who goes first
alternating. A row's figure for one repetition: the median over its steps of every task but the first (where the
buffers fill and nothing is replayed in Avalanche), by the process CPU clock (other jobs on a shared machine disturb
it less than the wall clock; the wall clock is kept beside it); the table shows the minimum over repetitions. Per
sample: the mean time of those tasks' steps, task starts and ends included (Avalanche updates its memories there),
per incoming sample.

Targets (the issue): er <= 1.3 x the reference; der++ <= 1.6 x er; a-gem <= 2 x er; memory flat in the stream's
length. Memory: each method learns a stream of 1x, 4x and 16x as many samples (domain setting over MNIST slices, so
that the head does not grow with the length), batch 10; measured: the buffer's bytes, the peak of Python's
allocations during the run (tracemalloc: a list growing per step would show) and the peak RSS above the RSS before
the run (VmHWM, reset before each run).

Rows besides the methods: "reference + buffer" is the reference loop drawing its replay batch from the library's
`ReservoirBuffer` and offering it each incoming batch (what the buffer adds to ER's step); "a-gem-256" is A-GEM with
its default reference draw of 256 (the paper's), shown without a target. `--before NAME` puts the targets' ratios of
an earlier run (this script on an older library: copy `src/` of that commit elsewhere, run this script there with
`--parts timing --peers ''`) beside today's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stream_speed.py [--repeats 3] [--peers /work/peers-venv/bin/python]
        [--before stream_speed_before] [--parts timing memory]
"""

import argparse
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import RESULTS, ROOT, data_dir, machine, pin_threads, save
from torch import nn

from lifelong.buffers import ReservoirBuffer
from lifelong.data import load_dataset
from lifelong.learner import Learner
from lifelong.scenarios import Scenario, Task, split_by_classes
from lifelong.training import TrainConfig

MEMORY, LR, HIDDEN = 500, 0.03, (100, 100)
SAMPLES = {10: 1000, 128: 2560}  # each task's first N training samples, per batch size: 100 and 20 steps a task
OURS = {  # row -> (method, options beside the memory; None: the reference loop)
    "reference": (None, {}),
    "reference + buffer": (None, {"buffer": True}),  # the plain loop with our ReservoirBuffer: draw and insertion
    "er": ("er", {}),
    "der++": ("der++", {}),  # alpha 1.0, beta 0.5: three forward passes of B a step
    "a-gem": ("a-gem", {"reference": None}),  # the reference draw as large as the incoming batch (the protocol's)
    "er-ace": ("er-ace", {}),
    "a-gem-256": ("a-gem", {"reference": 256}),  # its default, the paper's 256: shown, no target
}
MEMORY_TASKS = 4  # the memory runs' stream: 4 tasks of 1x, 4x or 16x as many samples
AVALANCHE = ["er", "der++", "a-gem", "er-ace"]
TARGETS = {("er", "reference"): 1.3, ("der++", "er"): 1.6, ("a-gem", "er"): 2.0}
DEFAULT_PEERS = ROOT.parent.parent / "peers-venv" / "bin" / "python"  # /work/peers-venv beside /work/wt/BRANCH


def split_mnist(samples: int) -> Scenario:
    """Split-MNIST at 28x28 (784 inputs), each task cut to its first `samples` training samples."""
    scenario = split_by_classes(load_dataset("mnist", data_dir=data_dir(), download=False), n_tasks=5,
                                name="split-mnist-28")
    scenario.tasks = [dataclasses.replace(t, x_train=t.x_train[:samples], y_train=t.y_train[:samples])
                      for t in scenario.tasks]
    return scenario


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def intervals(stamps: list) -> list[tuple[float, float]]:
    """(wall, cpu) seconds between consecutive stamps: the steps of a task, loading included (the last one's left
    out: no stamp follows it)."""
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


def result(steps: list, total: list, count: int) -> dict:
    return {"step_wall": [s[0] for s in steps], "step_cpu": [s[1] for s in steps], "total_wall": total[0],
            "total_cpu": total[1], "steps": count}


def reference_loop(scenario: Scenario, batch: int, seed: int, buffer: bool = False) -> dict:
    """Fine-tuning on the incoming batch plus a replay batch of as many samples, in one forward and backward pass,
    written as plainly as PyTorch allows; the replay samples are 500 fixed training samples, read at a fixed
    index draw (no buffer to keep: what ER adds on top is the buffer's work and the engine's). `buffer`: the
    replay batch drawn from the library's `ReservoirBuffer` and the incoming batch offered to it, as ER does (the
    same loop otherwise: what it adds is the buffer's share of ER's cost)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                          nn.Linear(100, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, fused=True)
    generator = torch.Generator().manual_seed(seed)
    first = scenario.tasks[0]
    memory_x, memory_y = first.x_train[:MEMORY], first.y_train[:MEMORY]
    store = ReservoirBuffer(MEMORY, torch.Generator().manual_seed(seed)) if buffer else None
    if store is not None:
        store.add(memory_x, memory_y, torch.zeros(MEMORY, dtype=torch.long))
    steps, total, count = [], [0.0, 0.0], 0
    for task in scenario.tasks:
        x, y = task.x_train, task.y_train + 2 * task.id
        draws = torch.randint(MEMORY, (len(x) // batch + 1, batch), generator=generator)
        stamps = []
        start = clocks()
        for i, idx in enumerate(torch.randperm(len(x), generator=generator).split(batch)):
            stamps.append(clocks())
            xb, yb = x[idx], y[idx]
            if store is None:
                replay = draws[i, :len(idx)]
                bx, by = memory_x[replay], memory_y[replay]
            else:
                bx, by, _, _ = store.sample(len(idx))
                store.add(xb, yb, torch.full_like(yb, task.id))
            loss = F.cross_entropy(model(torch.cat([xb, bx])), torch.cat([yb, by]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        end = clocks()
        if task.id:
            steps += intervals(stamps)
            total = [total[0] + end[0] - start[0], total[1] + end[1] - start[1]]
            count += len(stamps)
    return result(steps, total, count)


def ours(scenario: Scenario, batch: int, method: str, options: dict, seed: int) -> dict:
    """`method` learning the stream through the library's step loop (`Learner.learn_task`, stream=True); the clocks
    read at each call of the method's loss (one per step)."""
    config = TrainConfig(epochs=1, batch_size=batch, lr=LR, optimizer="sgd", momentum=0.0, seed=seed, stream=True)
    options = {k: (batch if v is None else v) for k, v in options.items()}
    learner = Learner(method, "mlp", "class", hidden=HIDDEN, config=config, memory=MEMORY, **options)
    learner.build(scenario.tasks[0].x_train)
    stamps = []
    loss = learner.method.loss

    def timed(*batch_):
        stamps.append(clocks())
        return loss(*batch_)

    learner.method.loss = timed  # an instance attribute: the step loop looks `loss` up once per task
    steps, total, count = [], [0.0, 0.0], 0
    for task in scenario.tasks:
        stamps.clear()
        start = clocks()
        learner.learn_task(task, scenario)
        end = clocks()
        if task.id:
            steps += intervals(stamps)
            total = [total[0] + end[0] - start[0], total[1] + end[1] - start[1]]
            count += len(stamps)
    return result(steps, total, count)


class Peers:
    """Avalanche's half, in its own process (the peers environment), one command at a time."""

    def __init__(self, python: Path, scenarios: dict):
        largest = scenarios[max(scenarios, key=lambda b: SAMPLES[b])]
        self.folder = tempfile.TemporaryDirectory()
        path = Path(self.folder.name) / "tasks.pt"
        torch.save({"tasks": [(t.x_train.flatten(1).contiguous(), t.y_train + 2 * t.id) for t in largest.tasks],
                    "outputs": 10}, path)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "PYTHONWARNINGS": "ignore"}
        self.errors = open(Path(self.folder.name) / "stderr.txt", "w+")  # Avalanche's notices: shown if it fails
        self.process = subprocess.Popen([str(python), str(ROOT / "benchmarks" / "_stream_speed_avalanche.py"),
                                         str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=env, stderr=self.errors)
        self.version = json.loads(self.process.stdout.readline())["avalanche"]

    def run(self, batch: int, rows: list, seed: int) -> dict:
        command = {"batch": batch, "samples": SAMPLES[batch], "rows": rows, "seed": seed, "memory": MEMORY, "lr": LR}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.errors.seek(0)
            raise SystemExit("the Avalanche process stopped:\n" + self.errors.read()[-3000:])
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()
        self.errors.close()
        self.folder.cleanup()


# ---------------------------------------------------------------------- memory over the stream's length
def rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux: clear_refs 5); False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def domain_stream(x: torch.Tensor, y: torch.Tensor, tasks: int, samples: int) -> Scenario:
    """`tasks` tasks of `samples` MNIST samples each (slices in turn, views: no copy), every task all ten digits
    (the domain setting: the head stays 10 outputs however long the stream)."""
    parts = len(x) // samples
    made = [Task(t, list(range(10)), x[(t % parts) * samples:(t % parts + 1) * samples],
                 y[(t % parts) * samples:(t % parts + 1) * samples], x[:0], y[:0]) for t in range(tasks)]
    return Scenario("mnist-stream", made, list(range(10)), [str(d) for d in range(10)], tuple(x.shape[1:]))


def buffer_bytes(method) -> int:
    buffer = method.buffer
    return sum(t.nbytes for t in buffer.data.values()) + sum(t.nbytes for t in buffer.widths.values())


def memory_run(x, y, method: str, options: dict, tasks: int, samples: int, batch: int) -> dict:
    scenario = domain_stream(x, y, tasks, samples)
    config = TrainConfig(epochs=1, batch_size=batch, lr=LR, optimizer="sgd", momentum=0.0, seed=0, stream=True)
    options = {k: (batch if v is None else v) for k, v in options.items()}
    gc.collect()
    before = rss_kb()
    peak_reset = reset_peak()
    tracemalloc.start()
    learner = Learner(method, "mlp", "domain", hidden=HIDDEN, config=config, memory=MEMORY, **options)
    for task in scenario.tasks:
        learner.learn_task(task, scenario)
    python_now, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = {"samples": tasks * samples, "steps": tasks * samples // batch, "buffer_bytes": buffer_bytes(learner.method),
           "python_peak_bytes": python_peak, "python_kept_bytes": python_now, "rss_before_kb": before,
           "rss_after_kb": rss_kb(),
           "peak_above_before_kb": rss_kb("VmHWM") - before if peak_reset else None,
           "buffer_seen": learner.method.buffer.seen}
    del learner
    gc.collect()
    return row


# ---------------------------------------------------------------------- the buffer alone
def buffer_cost(batch: int, calls: int = 1000) -> dict:
    """Median microseconds of one `add` (a full buffer, past its capacity) and one `sample` of `batch` samples."""
    buffer = ReservoirBuffer(MEMORY, torch.Generator().manual_seed(0))
    x, y, t = torch.randn(batch, 1, 28, 28), torch.randint(10, (batch,)), torch.zeros(batch, dtype=torch.long)
    logits = torch.randn(batch, 10)
    while buffer.seen < 4 * MEMORY:
        buffer.add(x, y, t, logits=logits)
    times = {"add": [], "sample": []}
    for _ in range(calls):
        s = time.process_time()
        buffer.add(x, y, t, logits=logits)
        m = time.process_time()
        buffer.sample(batch)
        e = time.process_time()
        times["add"].append(m - s)
        times["sample"].append(e - m)
    return {name: 1e6 * statistics.median(v) for name, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[10, 128], choices=sorted(SAMPLES))
    parser.add_argument("--peers", default=str(DEFAULT_PEERS), help="the peers environment's python ('' : no "
                        "Avalanche rows)")
    parser.add_argument("--memory-samples", type=int, default=2000, help="1x of the memory runs (x4, x16 follow)")
    parser.add_argument("--out", default="stream_speed")
    parser.add_argument("--before", help="a results name (benchmarks/results/NAME.json) of this benchmark run on "
                        "the library before a change: its ms/step shown beside ours")
    parser.add_argument("--parts", nargs="+", choices=("timing", "memory"), default=["timing", "memory"])
    args = parser.parse_args()
    threads = pin_threads(1)
    load_before = os.getloadavg()
    scenarios = {b: split_mnist(SAMPLES[b]) for b in args.batches}
    timing = "timing" in args.parts
    peers = Peers(Path(args.peers), scenarios) if timing and args.peers and Path(args.peers).exists() else None
    if timing and args.peers and peers is None:
        print(f"no peers environment at {args.peers}: the Avalanche rows are left out", flush=True)
    runs = {b: {"ours": {row: [] for row in OURS}, "avalanche": {row: [] for row in AVALANCHE}} for b in args.batches}
    started = time.perf_counter()
    for r in range(args.repeats if timing else 0):
        for b in args.batches:
            rows = list(OURS)
            rows = rows[r % len(rows):] + rows[:r % len(rows)]  # rotated: no row always first or last

            def run_ours():
                for row in rows:
                    method, options = OURS[row]
                    done = (reference_loop(scenarios[b], b, r, **options) if method is None
                            else ours(scenarios[b], b, method, options, r))
                    runs[b]["ours"][row].append(done)

            def run_peers():
                if peers is not None:
                    theirs = AVALANCHE[r % 4:] + AVALANCHE[:r % 4]
                    for row, done in peers.run(b, theirs, r).items():
                        runs[b]["avalanche"][row].append(done)

            for half in ((run_ours, run_peers) if r % 2 == 0 else (run_peers, run_ours)):
                half()
            summary = ", ".join(f"{row} {1e3 * statistics.median(v[-1]['step_cpu']):.3f}"
                                for who in ("ours", "avalanche") for row, v in runs[b][who].items() if v)
            print(f"repetition {r + 1}, batch {b} (ms/step, CPU, median): {summary}", flush=True)
    timing_s = time.perf_counter() - started
    if peers is not None:
        peers.close()

    # the figures: per row, the minimum over repetitions of the per-step median (CPU and wall), the mean per sample
    figures = {}
    for b in args.batches:
        for who in ("ours", "avalanche"):
            for row, done in runs[b][who].items():
                if not done:
                    continue
                figures.setdefault(b, {}).setdefault(who, {})[row] = {
                    "step_ms_cpu": min(1e3 * statistics.median(d["step_cpu"]) for d in done),
                    "step_ms_wall": min(1e3 * statistics.median(d["step_wall"]) for d in done),
                    "step_ms_cpu_repeats": [1e3 * statistics.median(d["step_cpu"]) for d in done],
                    "us_per_sample_cpu": min(1e6 * d["total_cpu"] / (d["steps"] * b) for d in done),
                    "us_per_sample_wall": min(1e6 * d["total_wall"] / (d["steps"] * b) for d in done),
                    "steps": done[0]["steps"],
                }
    ratios = {}
    for b in figures:
        f = figures[b]["ours"]
        for (num, den), target in TARGETS.items():
            pairs = [statistics.median(n["step_cpu"]) / statistics.median(d["step_cpu"])
                     for n, d in zip(runs[b]["ours"][num], runs[b]["ours"][den])]
            ratio = f[num]["step_ms_cpu"] / f[den]["step_ms_cpu"]
            ratios[f"{num} / {den}, batch {b}"] = {"ratio_minima": ratio, "ratio_pairs": statistics.median(pairs),
                                                   "ratio_wall": f[num]["step_ms_wall"] / f[den]["step_ms_wall"],
                                                   "target": target, "met": ratio <= target}

    # memory flat in the stream's length (ours), and the buffer alone
    mnist = load_dataset("mnist", data_dir=data_dir(), download=False)
    x = (mnist.x_train.float() / 255 - 0.1307) / 0.3081  # (N, 1, 28, 28)
    y = mnist.y_train
    memory = {}
    for row in ("er", "der++", "a-gem", "er-ace") if "memory" in args.parts else ():
        method, options = OURS[row]
        memory_run(x, y, method, options, 2, 500, 10)  # warm-up: first calls and PyTorch's caches, not the stream's
        for k in (1, 4, 16) + ((28,) if row == "er" else ()):  # 4 tasks each time, longer ones: the same records
            per_task = args.memory_samples * k // MEMORY_TASKS
            memory.setdefault(row, {})[f"{k}x"] = memory_run(x, y, method, options, MEMORY_TASKS, per_task, 10)
        print(f"memory {row}: " + ", ".join(f"{k}: buffer {v['buffer_bytes'] / 1e6:.2f} MB, python peak "
                                             f"{v['python_peak_bytes'] / 1e3:.0f} kB, RSS peak +"
                                             f"{(v['peak_above_before_kb'] or 0) / 1e3:.1f} MB"
                                             for k, v in memory[row].items()), flush=True)
    buffer = {b: buffer_cost(b) for b in (10, 128)}
    load_after = os.getloadavg()

    document = {"protocol": __doc__.split("\n\n")[1], "repeats": args.repeats, "threads": threads,
                "samples_per_task": {str(b): SAMPLES[b] for b in args.batches}, "memory": MEMORY, "lr": LR,
                "avalanche": peers.version if peers else None, "figures": {str(b): v for b, v in figures.items()},
                "ratios": ratios, "memory_runs": memory, "buffer_us": {str(b): v for b, v in buffer.items()},
                "load_before": load_before, "load_after": load_after, "timing_s": timing_s,
                "runs": {str(b): {who: {row: [{k: d[k] for k in ("total_cpu", "total_wall", "steps")} for d in done]
                                        for row, done in v.items()} for who, v in w.items()}
                         for b, w in runs.items()}}
    save(args.out, document, markdown(document, figures, ratios, memory, buffer, args))


def markdown(document, figures, ratios, memory, buffer, args) -> str:
    load = f"{document['load_before'][0]:.1f} -> {document['load_after'][0]:.1f}"
    shared = max(document["load_before"][0], document["load_after"][0]) > 1.5  # above one job per core: others ran
    before = {}  # ratio name -> the same ratio measured on the library before a change (its own run)
    if args.before:
        saved = json.loads((RESULTS / f"{args.before}.json").read_text())
        before = {name: r["ratio_minima"] for name, r in saved["ratios"].items()}
    lines = ["# Stream rehearsal methods: cost per step and memory, ours and Avalanche's", "",
             document["protocol"].replace("\n", " "), "",
             f"{args.repeats} repetitions, one torch thread, torch {torch.__version__}"
             f"{', Avalanche ' + document['avalanche'] if document['avalanche'] else ', no Avalanche'}. "
             f"{'**The machine was shared**' if shared else 'The machine was quiet'} (2 cores; load average {load} "
             "over the run): the figures are minima over "
             "repetitions of per-step medians by the CPU clock, and the ratios are taken from rows run in the same "
             "process minutes apart; read them as +-10 %.", "",
             "## The issue's targets (ours, CPU clock)", "",
             "| ratio | minima | pairs (median of each repetition's) | wall clock | target | |"
             + (" before the change (minima, its own run) |" if before else ""),
             "|---|---|---|---|---|---|" + ("---|" if before else "")]
    for name, r in ratios.items():
        lines.append(f"| {name} | {r['ratio_minima']:.2f} | {r['ratio_pairs']:.2f} | {r['ratio_wall']:.2f} | "
                     f"<= {r['target']} | {'met' if r['met'] else 'NOT met'} |"
                     + (f" {before[name]:.2f} |" if name in before else " - |" if before else ""))
    if before:
        lines.append(f"\nBefore: the same benchmark on the library before the buffer's insertion, DER's one pass and "
                     f"A-GEM's flat projection (`{args.before}.md`, another run under another load: compare ratios, "
                     "not milliseconds).")
    for b, f in figures.items():
        mine = f["ours"]
        if "reference + buffer" in mine:  # each repetition's rows side by side, the median over repetitions
            ref, buf, er = (mine[k]["step_ms_cpu_repeats"] for k in ("reference", "reference + buffer", "er"))
            by_buffer = statistics.median(q / r for q, r in zip(buf, ref))
            by_engine = statistics.median(e / q for e, q in zip(er, buf))
            lines.append(f"\nWhere ER's time goes at batch {b} (the median over repetitions of each one's ratios): "
                         f"the library's buffer (a draw and an insertion a step) makes the reference step "
                         f"{by_buffer:.2f}x as long; the engine, the library's model and the method's hooks that "
                         f"{by_engine:.2f}x.")
    lines += ["", "## Per step and per sample, ours and Avalanche's", "",
              "ms/step: the median step of tasks 2-5 (the minimum over repetitions); us/sample: those tasks' whole "
              "time (task starts and ends included) per incoming sample.", "",
              "| batch | row | ours ms/step (CPU) | Avalanche ms/step (CPU) | Avalanche / ours | ours us/sample | "
              "Avalanche us/sample | ours ms/step (wall) | Avalanche ms/step (wall) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for b, f in figures.items():
        for row, mine in f["ours"].items():
            theirs = f.get("avalanche", {}).get(row)
            cells = [f"{mine['step_ms_cpu']:.3f}"]
            cells += [f"{theirs['step_ms_cpu']:.3f}" if theirs else "-",
                      f"{theirs['step_ms_cpu'] / mine['step_ms_cpu']:.1f}x" if theirs else "-",
                      f"{mine['us_per_sample_cpu']:.1f}", f"{theirs['us_per_sample_cpu']:.1f}" if theirs else "-",
                      f"{mine['step_ms_wall']:.3f}", f"{theirs['step_ms_wall']:.3f}" if theirs else "-"]
            lines.append(f"| {b} | {row} | " + " | ".join(cells) + " |")
    lines += ["", "Avalanche's four fill their memories at experience ends (ER-ACE at starts), from the whole "
              "experience, not from the stream; its DER makes one forward pass over the incoming batch and a single "
              "buffer draw (ours, as Mammoth, two draws), class-balanced; its A-GEM's memory is a fixed share per "
              "experience. The same arithmetic per step otherwise.", ""]
    if memory:
        lines += ["## Memory over the stream's length (ours, batch 10, domain setting)", "",
                  f"4 tasks; 1x = {args.memory_samples:,} samples ({args.memory_samples // 10} steps). The buffer's "
                  "tensors do not change with the length. The Python allocations that do are PyTorch's own: 48-byte "
                  "ones made inside `torch.relu`'s call, kept while the model lives, which stop growing after a few "
                  "thousand steps (er at 28x: as at 16x); none are the library's.", "",
                  "| method | length | samples | buffer (MB) | Python allocations' peak (kB) | Python allocations kept "
                  "after the run (kB) | peak RSS above the start (MB) |",
                  "|---|---|---|---|---|---|---|"]
        for row, by in memory.items():
            for k, v in by.items():
                peak = "-" if v["peak_above_before_kb"] is None else f"{v['peak_above_before_kb'] / 1e3:.1f}"
                lines.append(f"| {row} | {k} | {v['samples']:,} | {v['buffer_bytes'] / 1e6:.2f} | "
                             f"{v['python_peak_bytes'] / 1e3:.0f} | {v['python_kept_bytes'] / 1e3:.0f} | {peak} |")
        lines.append("")
    lines += ["## The reservoir buffer alone (full, 500 samples of 1x28x28 with 10 logits; CPU clock)", "",
              "| batch | add (us) | sample (us) | add per sample (us) |", "|---|---|---|---|"]
    for b, v in buffer.items():
        lines.append(f"| {b} | {v['add']:.1f} | {v['sample']:.1f} | {v['add'] / b:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
