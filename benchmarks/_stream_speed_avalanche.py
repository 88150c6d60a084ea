"""`stream_speed.py`'s other half: Avalanche 0.6's ER, DER++, A-GEM and ER-ACE on the same tensors, run in the peers
environment (`../shared/peers/README.md`), never in the project's. Not a library module: it imports no `lifelong`.

    /work/peers-venv/bin/python benchmarks/_stream_speed_avalanche.py DATA.pt

DATA.pt (written by stream_speed.py): {"tasks": [(x [N, 784] float32, y [N] int64 class ids), ...], "outputs": 10}.
Then one JSON command a line on stdin, {"batch": B, "samples": N, "rows": [...], "seed": r, "memory": 500,
"lr": 0.03}; one JSON line back on stdout per command: for each row, the per-step clocks (CPU and wall, seconds) of
the steps of every experience but the first (the first fills the memories: no replay yet in any of the four), the
totals of those experiences (their start and end work included: Avalanche updates its memories there) and the steps
counted. One torch thread. The strategies as Avalanche's documentation builds them, with these choices:

- er: `Naive` + `ReplayPlugin(mem_size, batch_size_mem=B, storage_policy=ReservoirSamplingBuffer(mem_size))`;
- der++: `DER(mem_size, batch_size_mem=B, alpha=1.0, beta=0.5)` (ours' defaults, Mammoth's best for MNIST);
- a-gem: `AGEM(patterns_per_exp=mem_size / experiences, sample_size=B)` (the memory the same 500 at the end);
- er-ace: `ER_ACE(mem_size, batch_size_mem=B)`.
The optimizer is the one ours makes: SGD, lr, fused (Avalanche takes the user's optimizer).
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402
from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (  # noqa: E402
    create_generic_benchmark_from_tensor_lists,
)
from avalanche.training import AGEM, DER, ER_ACE, Naive  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin, SupervisedPlugin  # noqa: E402
from avalanche.training.storage_policy import ReservoirSamplingBuffer  # noqa: E402


class Clock(SupervisedPlugin):
    """Both clocks at the start of every training iteration (the batch already drawn from the loader: the interval
    between two starts is a whole step, loading included)."""

    def __init__(self):
        super().__init__()
        self.stamps = []

    def before_training_iteration(self, strategy, **kwargs):
        self.stamps.append((time.perf_counter(), time.process_time()))


def mlp(inputs: int, outputs: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(inputs, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                               torch.nn.ReLU(), torch.nn.Linear(100, outputs))


def strategy(row: str, model, clock, batch: int, memory: int, lr: float, experiences: int):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, fused=True)
    common = dict(model=model, optimizer=optimizer, train_mb_size=batch, train_epochs=1, eval_mb_size=1024,
                  evaluator=EvaluationPlugin(), plugins=[clock])
    ce = torch.nn.CrossEntropyLoss()
    if row == "er":
        common["plugins"] = [clock, ReplayPlugin(memory, batch_size_mem=batch,
                                                 storage_policy=ReservoirSamplingBuffer(memory))]
        return Naive(criterion=ce, **common)
    if row == "der++":
        return DER(mem_size=memory, batch_size_mem=batch, alpha=1.0, beta=0.5, **common)
    if row == "a-gem":
        return AGEM(criterion=ce, patterns_per_exp=memory // experiences, sample_size=batch, **common)
    if row == "er-ace":
        return ER_ACE(mem_size=memory, batch_size_mem=batch, **common)
    raise SystemExit(f"unknown row {row}")


def run(row: str, stream, inputs: int, outputs: int, command: dict) -> dict:
    torch.manual_seed(command["seed"])
    clock = Clock()
    experiences = list(stream)
    learner = strategy(row, mlp(inputs, outputs), clock, command["batch"], command["memory"], command["lr"],
                       len(experiences))
    steps, total_cpu, total_wall = [], 0.0, 0.0
    for i, experience in enumerate(experiences):
        clock.stamps = []
        wall0, cpu0 = time.perf_counter(), time.process_time()
        learner.train(experience)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        if i == 0:
            continue
        stamps = clock.stamps
        steps += [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]
        total_wall += wall1 - wall0
        total_cpu += cpu1 - cpu0
    return {"step_wall": [s[0] for s in steps], "step_cpu": [s[1] for s in steps], "total_wall": total_wall,
            "total_cpu": total_cpu, "steps": sum(1 for _ in steps) + len(experiences) - 1}


def main():
    warnings.simplefilter("ignore")  # Avalanche's own deprecation notices, at every experience
    torch.set_num_threads(1)
    data = torch.load(sys.argv[1])
    tasks, outputs = data["tasks"], data["outputs"]
    inputs = tasks[0][0].shape[1]
    print(json.dumps({"ready": True, "avalanche": __import__("avalanche").__version__}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        n = command["samples"]
        train = [[x[:n], y[:n]] for x, y in tasks]
        test = [[x[:8], y[:8]] for x, y in tasks]
        benchmark = create_generic_benchmark_from_tensor_lists(train, test, task_labels=[0] * len(tasks))
        answer = {row: run(row, benchmark.train_stream, inputs, outputs, command) for row in command["rows"]}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
