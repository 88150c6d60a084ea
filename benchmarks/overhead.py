"""Engine overhead per step: `lifelong`'s training loop against a bare PyTorch loop doing the same forward and
backward passes, at the stream setting's batch 10 and at batch 128, for fine-tuning and the replay methods.

Protocol: class-incremental split-MNIST (32x32, 5 tasks, 60,000 training images: 6,000 steps a pass at batch 10),
MLP 1024-400-400 with a head growing by 2 outputs per task, 1 epoch per task, a new optimizer per task, the
engine's training path as `lifelong run` takes it (`Learner.learn_task`: the method's hooks, the progress bar as
configured, the distributed share) against a bare loop written as plainly as PyTorch allows (an nn.Sequential,
batches sliced from the task's tensors by a shuffled index, zero_grad / backward / step, the same fused
optimizer). Both draw the same weights and the same batch order from the seed and do the same arithmetic, so
both end with the same accuracies (checked at every repeat: "same numbers"). Measured: the training seconds of
the 5 tasks (evaluation is outside the timings), engine and bare alternating task by task in this process, one
thread; the ratio of the medians (and of the minima, and the median of each repeat's ratio) is engine / bare.
Target: <= 1.10.
The process CPU clock (`--clock cpu`, the default) is what the table shows: other jobs on a shared machine disturb
it less than the wall clock, though not nothing (at a load of 4 on this 2-core machine the CPU time of the same
work rose by up to a third); the wall clock is recorded beside it, and the load average before and after each case.

Each row of the table is one entry of CASES: a method with its training options, and the bare loop's loss of one
batch (the same forward and backward passes the method makes: a replay batch, a second buffer batch...).
ER and DER++ run as they are meant to, from the stream (`stream=True`: one pass, boundaries hidden, every task's
head outputs from the first batch; the bare loop makes its 5 head parts before its first batch, as
`Method.enter_stream` does), with a reservoir buffer: the bare loop's own, written plainly (preallocated tensors,
algorithm R with a handful of tensor operations per batch), drawing from a generator seeded as ER's is, so that
it replays the same samples and "same numbers" still checks the arithmetic.

    python benchmarks/overhead.py [--repeats 6] [--threads 1] [--clock cpu|wall] [--cases finetune-b10 ...]
"""

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from _common import data_dir, machine, pin_threads, save
from torch import nn

from lifelong.learner import Learner
from lifelong.benchmarks import make_scenario
from lifelong.training import TrainConfig, evaluate

HIDDEN = (400, 400)  # `--hidden 8`: a model so small that a step is nearly all fixed cost (the difference in ms
# per step is then the engine's own work per step, measured where the arithmetic cannot hide it)


MEMORY = 500  # the replay rows' buffer (Mammoth's sequential-MNIST size, which DER++'s defaults are tuned for)
ALPHA, BETA = 1.0, 0.5  # DER++'s defaults (the library's: Mammoth's best for sequential MNIST, buffer 500)


class BareModel:
    """The bare loop's model: an nn.Sequential backbone and a list of linear head parts, a part per task, read as
    one linear layer over their stacked weights (the arithmetic of `lifelong.models.IncrementalHead`)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], seed: int):
        torch.manual_seed(seed)
        layers = [nn.Flatten()]
        for width, size in zip((in_features, *hidden), hidden):
            layers += [nn.Linear(width, size), nn.ReLU()]
        self.backbone = nn.Sequential(*layers)
        # what a method with a buffer (ER) draws next for its buffer's generator, after the backbone
        self.buffer_seed = int(torch.randint(2**31, (1,)))
        torch.manual_seed(seed)  # the head parts draw from the seed's state, as the learner's do
        self.heads = nn.ModuleList()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        if len(self.heads) == 1:
            return self.heads[0](features)
        return F.linear(features, torch.cat([h.weight for h in self.heads]), torch.cat([h.bias for h in self.heads]))

    def parameters(self) -> list:
        return [*self.backbone.parameters(), *self.heads.parameters()]


def plain_loss(model: BareModel, x: torch.Tensor, y: torch.Tensor, state: dict) -> torch.Tensor:
    """Fine-tuning's loss of a batch: cross-entropy over every output."""
    return F.cross_entropy(model(x), y)


class BareReservoir:
    """The bare loop's replay buffer: a uniform sample of at most `capacity` samples of the stream (Vitter's
    algorithm R), in tensors allocated at the first batch; optionally each sample's logits (DER++)."""

    def __init__(self, capacity: int, seed: int):
        self.capacity, self.seen = capacity, 0
        self.generator = torch.Generator().manual_seed(seed)
        self.x = self.y = self.logits = None

    def add(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor | None = None) -> None:
        if self.x is None:
            self.x, self.y = x.new_zeros((self.capacity, *x.shape[1:])), y.new_zeros(self.capacity)
            if logits is not None:
                self.logits = logits.new_zeros((self.capacity, logits.shape[1]))
        b = len(y)
        position = self.seen + torch.arange(b)  # samples offered before each
        u = torch.rand(b, generator=self.generator, dtype=torch.float64)
        # the next free slot while there is one, else a uniform draw from 0 .. position (kept if < capacity)
        slot = torch.where(position < self.capacity, position, (u * (position + 1)).long())
        keep = (slot < self.capacity) & ~(slot[:, None] == slot[None, :]).triu(1).any(1)  # a later sample wins
        slot = slot[keep]
        self.x[slot], self.y[slot] = x[keep], y[keep]
        if logits is not None:
            self.logits[slot] = logits[keep]
        self.seen += b

    def sample(self, m: int) -> torch.Tensor:
        """The indices of `m` stored samples, drawn uniformly without replacement."""
        return torch.randperm(min(self.seen, self.capacity), generator=self.generator)[:m]


def er_loss(model: BareModel, x: torch.Tensor, y: torch.Tensor, state: dict) -> torch.Tensor:
    """ER's loss of a batch: one cross-entropy over the batch and as many samples drawn from the buffer; then the
    batch offered to the buffer."""
    buffer = state.setdefault("buffer", BareReservoir(MEMORY, state["seed"]))
    if buffer.seen:
        idx = buffer.sample(len(y))
        loss = F.cross_entropy(model(torch.cat([x, buffer.x[idx]])), torch.cat([y, buffer.y[idx]]))
    else:
        loss = F.cross_entropy(model(x), y)
    buffer.add(x, y)
    return loss


def derpp_loss(model: BareModel, x: torch.Tensor, y: torch.Tensor, state: dict) -> torch.Tensor:
    """DER++'s loss of a batch: cross-entropy on the batch, + alpha x the squared difference between the logits of
    a buffer draw and their stored logits (summed, over samples x outputs: the mean), + beta x cross-entropy on a
    second draw; then the batch offered to the buffer with its logits before the step."""
    buffer = state.setdefault("buffer", BareReservoir(MEMORY, state["seed"]))
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    if buffer.seen:
        idx = buffer.sample(len(y))
        replayed = model(buffer.x[idx])
        loss = loss + ALPHA * (replayed - buffer.logits[idx]).pow(2).sum() / replayed.numel()
        idx = buffer.sample(len(y))
        loss = loss + BETA * F.cross_entropy(model(buffer.x[idx]), buffer.y[idx])
    buffer.add(x, y, logits.detach())
    return loss


@dataclass
class Case:
    """One row: the engine running `method` (with `options`) against the bare loop whose loss of a batch is
    `bare_loss(model, x, targets, state)` (`state`: a dict the loss may keep things in across batches, a replay
    buffer say), both with the same training options."""

    key: str
    method: str
    batch_size: int
    optimizer: str
    lr: float
    momentum: float = 0.0
    options: dict = field(default_factory=dict)
    bare_loss: Callable = plain_loss
    stream: bool = False  # the stream feed (`--stream`): boundaries hidden, every head output from the start

    @property
    def label(self) -> str:
        opt = f"SGD {self.lr}" if self.optimizer == "sgd" else f"Adam {self.lr}"
        memory = f", memory {self.options['memory']}" if "memory" in self.options else ""
        return f"{self.method}, batch {self.batch_size}, {opt}{', stream' if self.stream else ''}{memory}"

    def config(self, seed: int) -> TrainConfig:
        extra = {"momentum": self.momentum} if self.optimizer == "sgd" else {}
        return TrainConfig(epochs=1, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer, seed=seed,
                           stream=self.stream, **extra)


CASES = [
    Case("finetune-b10", "finetune", 10, "sgd", 0.03),  # `lifelong run ... --batch-size 10 --optimizer sgd --lr 0.03`
    Case("finetune-b128", "finetune", 128, "adam", 0.001),  # Hsu et al.'s recipe
    # `lifelong run ... --method er --memory 500 --stream --batch-size 10 --optimizer sgd --lr 0.03`: 10 + 10 replayed
    Case("er-b10", "er", 10, "sgd", 0.03, options={"memory": MEMORY}, bare_loss=er_loss, stream=True),
    # DER++ with its defaults (alpha 1.0, beta 0.5): three forward passes of 10 a step
    Case("der++-b10", "der++", 10, "sgd", 0.03, options={"memory": MEMORY}, bare_loss=derpp_loss, stream=True),
    Case("er-b128", "er", 128, "sgd", 0.03, options={"memory": MEMORY}, bare_loss=er_loss, stream=True),
]


def clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


class BareRun:
    """The bare loop over a scenario, a task at a time (`learn`), for the engine's run to alternate with."""

    def __init__(self, scenario, case: Case, seed: int, hidden=HIDDEN):
        self.case, self.hidden, self.scenario = case, hidden, scenario
        self.model = BareModel(scenario.tasks[0].x_train[0].numel(), hidden, seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.offsets, self.state, self.steps = [], {"seed": self.model.buffer_seed}, 0

    def learn(self, task) -> None:
        model, case = self.model, self.case
        # a new head part for the task; in a stream, every task's part before the first batch
        tasks = self.scenario.tasks if case.stream else self.scenario.tasks[:task.id + 1]
        for t in tasks[len(model.heads):]:
            model.heads.append(nn.Linear(self.hidden[-1], t.n_classes))
        params = model.parameters()
        if case.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=case.lr, momentum=case.momentum, fused=True)
        else:
            optimizer = torch.optim.Adam(params, lr=case.lr, fused=True)
        self.offsets.append(sum(h.out_features for h in model.heads[:task.id]))
        x, y = task.x_train, task.y_train + self.offsets[-1]
        model.backbone.train()
        order = torch.randperm(len(x), generator=self.generator)
        for idx in order.split(case.batch_size):
            loss = case.bare_loss(model, x[idx], y[idx], self.state)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            self.steps += 1

    @torch.no_grad()
    def correct(self, tasks) -> list[int]:
        """Correct answers on each task's test set (over every output)."""
        self.model.backbone.eval()
        answers = []
        for task, offset in zip(tasks, self.offsets):
            n = 0
            for start in range(0, len(task.x_test), 1024):
                logits = self.model(task.x_test[start:start + 1024])
                n += int((logits.argmax(1) == task.y_test[start:start + 1024] + offset).sum())
            answers.append(n)
        return answers


class EngineRun:
    """The engine over a scenario as `lifelong run` trains it (`Learner.learn_task`), a task at a time."""

    def __init__(self, scenario, case: Case, seed: int, hidden=HIDDEN):
        self.scenario, self.config = scenario, case.config(seed)
        self.learner = Learner(case.method, "mlp", "class", hidden=hidden, config=self.config, **case.options)

    def learn(self, task) -> None:
        self.learner.learn_task(task, self.scenario)

    def correct(self, tasks) -> list[int]:
        return evaluate(self.learner.method, tasks, self.config)["agnostic"]


def measure(scenario, case: Case, repeats: int, clock: str, hidden=HIDDEN) -> dict:
    """`repeats` runs of each over the whole scenario, the engine's and the bare loop's alternating task by task
    (the two trainings of a task a second or so apart, under the same load), which goes first alternating too."""
    tasks = scenario.tasks
    for run in (EngineRun(scenario, case, 0, hidden), BareRun(scenario, case, 0, hidden)):
        run.learn(tasks[0])  # warm-up: first-call costs are nobody's overhead
    load_before = os.getloadavg()
    times = {"engine": {"cpu": [], "wall": []}, "bare": {"cpu": [], "wall": []}}
    same = True
    for r in range(repeats):
        runs = {"engine": EngineRun(scenario, case, r, hidden), "bare": BareRun(scenario, case, r, hidden)}
        spent = {name: {"cpu": 0.0, "wall": 0.0} for name in runs}
        for task in tasks:
            for name in (("engine", "bare") if (r + task.id) % 2 == 0 else ("bare", "engine")):
                cpu0, wall0 = clocks()
                runs[name].learn(task)
                cpu1, wall1 = clocks()
                spent[name]["cpu"] += cpu1 - cpu0
                spent[name]["wall"] += wall1 - wall0
        for name in runs:
            for c in ("cpu", "wall"):
                times[name][c].append(spent[name][c])
        same = same and runs["engine"].correct(tasks) == runs["bare"].correct(tasks)
    steps = runs["bare"].steps
    load_after = os.getloadavg()
    row = {"label": case.label, "steps": steps, "times_s": times, "same_numbers": same,
           "load_before": load_before, "load_after": load_after}
    for c in ("cpu", "wall"):
        e, b = times["engine"][c], times["bare"][c]
        row[f"ratio_median_{c}"] = statistics.median(e) / statistics.median(b)
        row[f"ratio_min_{c}"] = min(e) / min(b)
        row[f"ratio_pairs_{c}"] = statistics.median(x / y for x, y in zip(e, b))  # each repeat's pair, side by side
        row[f"step_ms_{c}"] = {"engine": 1e3 * statistics.median(e) / steps, "bare": 1e3 * statistics.median(b) / steps}
    print(f"{case.label}: engine {statistics.median(times['engine'][clock]):.2f} s, bare "
          f"{statistics.median(times['bare'][clock]):.2f} s ({clock} clock, medians of {repeats}, {steps} steps); "
          f"ratio {row[f'ratio_median_{clock}']:.3f} (minima: {row[f'ratio_min_{clock}']:.3f}, pairs: "
          f"{row[f'ratio_pairs_{clock}']:.3f}); same numbers: {same}; "
          f"load {load_before[0]:.1f} -> {load_after[0]:.1f}", flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--cases", nargs="+", choices=[c.key for c in CASES], default=[c.key for c in CASES])
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN), help="the MLP's hidden sizes")
    parser.add_argument("--note", default="", help="said under the title (which code was measured, say)")
    parser.add_argument("--out", help="results name (benchmarks/results/NAME.json, .md); default: overhead, or "
                        "overhead_fixed_cost with other hidden sizes")
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    scenario = make_scenario("split-mnist", data_dir=data_dir(), download=False)
    hidden = tuple(args.hidden)
    rows = {case.key: measure(scenario, case, args.repeats, args.clock, hidden)
            for case in CASES if case.key in args.cases}
    other = "wall" if args.clock == "cpu" else "cpu"
    protocol = "\n\n".join(__doc__.strip().split("\n\n")[1:3])  # the protocol and the rows (replay: the stream)
    document = {"protocol": protocol, "clock": args.clock, "repeats": args.repeats,
                "threads": threads, "hidden": list(hidden), "note": args.note, "target": 1.10, "cases": rows}
    model = f"MLP {'-'.join(map(str, (1024, *hidden)))} + head"
    title = "Engine overhead per step" if hidden == HIDDEN else "Engine overhead: the fixed cost of a step"
    note = f"{args.note}\n\n" if args.note else ""
    lines = [f"# {title} (split-MNIST, class-incremental, {model})\n\n{note}{document['protocol']}\n",
             f"Clock: {args.clock} (process CPU time), {threads} thread(s), {args.repeats} repeats of each loop, "
             "alternating; ms per step = median training time / steps.\n",
             "engine / bare: the ratio of the medians, of the minima, and the median of each repeat's ratio (the "
             "two runs of a pair side by side in time, under the same load).\n",
             f"| case | steps | bare ms/step | engine ms/step | engine - bare (us/step) | engine / bare (medians) | "
             "(minima) | (pairs) | "
             f"by the {other} clock (medians) | same numbers | load avg before -> after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows.values():
        ms = row[f"step_ms_{args.clock}"]
        lines.append(f"| {row['label']} | {row['steps']} | {ms['bare']:.3f} | {ms['engine']:.3f} | "
                     f"{1e3 * (ms['engine'] - ms['bare']):+.0f} | "
                     f"{row[f'ratio_median_{args.clock}']:.3f} | {row[f'ratio_min_{args.clock}']:.3f} | "
                     f"{row[f'ratio_pairs_{args.clock}']:.3f} | "
                     f"{row[f'ratio_median_{other}']:.3f} | {'yes' if row['same_numbers'] else 'NO'} | "
                     f"{row['load_before'][0]:.2f} -> {row['load_after'][0]:.2f} |")
    lines.append(f"\ntorch {torch.__version__}, {machine()['cpu_count']} CPUs.")
    save(args.out or ("overhead" if hidden == HIDDEN else "overhead_fixed_cost"), document, "\n".join(lines))


if __name__ == "__main__":
    main()
