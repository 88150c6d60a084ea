"""One training loop for every method.

For each task: the method's `before_task` hook, epochs of mini-batches sliced from in-memory tensors, the
method's `after_task` hook, then evaluation on the test set of every task seen so far; after each task the
results file and a checkpoint are written, so an interrupted run loses at most the task it was in and
`resume=True` continues from the last finished task with the same numbers as an uninterrupted run.
"""

import math
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import metrics
from .errors import ConfigError, DataError, TrainingError
from .methods import Method
from .results import load_checkpoint, save_checkpoint, versions, write_json
from .scenarios import Scenario, Task
from .transforms import crop_and_flip

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")


def check_device(device: str) -> None:
    """A torch device this machine has (a clear error before any work, rather than a traceback later)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this machine (or this torch build) has no CUDA GPU; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here; use --device cpu")


@dataclass
class TrainConfig:
    """How each task is trained. A fresh optimizer is made for every task unless `reset_optimizer` is False."""

    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    schedule: str = "none"  # "step": lr * gamma at each of `milestones` (fractions of the epochs); "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: int = 0  # train the new head alone first, on frozen features (Li & Hoiem); 0: no warm-up
    warmup_lr: float | None = None  # default: lr
    seed: int = 0
    eval_batch_size: int = 1024
    progress: bool = True
    device: str = "cpu"
    # False: one optimizer for the whole sequence, its moment estimates carried from task to task (the default of
    # Hsu et al.'s benchmark code, `reset_optimizer=False`); parameters new to it (a new head part) join it
    reset_optimizer: bool = True
    extra: dict = field(default_factory=dict)  # anything else to record (method options...)

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval batch size must be at least 1, got {self.eval_batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be a positive number, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose {' or '.join(OPTIMIZERS)}"),
            (self.warmup_epochs >= 0, f"warm-up epochs must be >= 0, got {self.warmup_epochs}"),
            (self.warmup_lr is None or self.warmup_lr > 0, f"warm-up lr must be positive, got {self.warmup_lr}"),
            (self.momentum >= 0, f"momentum must be >= 0, got {self.momentum}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"),
            (self.gamma > 0, f"the schedule's gamma must be > 0 (it multiplies the learning rate), got {self.gamma}"),
            (all(0 < m <= 1 for m in self.milestones),
             f"milestones are fractions of the epochs in (0, 1], got {self.milestones}"),
            (self.reset_optimizer or self.schedule == "none",
             f"a learning-rate schedule ({self.schedule!r}) restarts with each task's optimizer: with one optimizer "
             "for the whole sequence (--one-optimizer, reset_optimizer=False) use --schedule none"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        check_device(self.device)


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over `params`, fused where PyTorch has a fused kernel for their device.

    PyTorch's default optimizers update each parameter tensor with its own handful of small operations; on CPU
    that per-tensor work took longer than the forward and backward pass of a small MLP (measured: an Adam step
    over an MLP 1024-400-400 with 5 heads, 6.3 ms plain against 1.8 ms fused). The fused kernels compute the same
    update (equal up to float rounding)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params) or None
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           fused=fused)


def task_optimizer(method: Method, params: list, config: TrainConfig) -> torch.optim.Optimizer:
    """A fresh optimizer for the task; with `config.reset_optimizer=False` the method's one optimizer for the
    whole sequence, with the parameters it has not seen yet (a new head part) added as a group of their own.
    Parameters frozen since (old heads in the task setting) get no gradient, so it leaves them alone."""
    if config.reset_optimizer:
        return make_optimizer(params, config)
    if method.optimizer is None:
        method.optimizer = make_optimizer(params, config)
    else:
        known = {p for group in method.optimizer.param_groups for p in group["params"]}
        new = [p for p in params if p not in known]
        if new:
            method.optimizer.add_param_group({"params": new})
    return method.optimizer


def optimizer_state(method: Method) -> dict | None:
    """The kept optimizer's state, with its groups by parameter name, for a checkpoint (None if none is kept)."""
    if method.optimizer is None:
        return None
    names = {p: n for n, p in method.model.named_parameters()}
    return {"groups": [[names[p] for p in group["params"]] for group in method.optimizer.param_groups],
            "state": method.optimizer.state_dict()}


def restore_optimizer(method: Method, saved: dict | None, config: TrainConfig) -> None:
    """Rebuild the kept optimizer from `optimizer_state` after the model was restored."""
    if saved is None:
        return
    params = dict(method.model.named_parameters())
    groups = [[params[name] for name in group] for group in saved["groups"]]
    method.optimizer = make_optimizer(groups[0], config)
    for group in groups[1:]:
        method.optimizer.add_param_group({"params": group})
    method.optimizer.load_state_dict(saved["state"])


def make_schedule(optimizer, config: TrainConfig):
    if config.schedule == "step":
        milestones = sorted({max(1, round(f * config.epochs)) for f in config.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    return None


def train_task(method: Method, task: Task, scenario: Scenario, config: TrainConfig, generator: torch.Generator):
    """Train `method` on `task`: `config.epochs` passes over `method.training_data(task)` in shuffled batches.

    `training_data` returns (inputs, targets, task ids, *extras); the extras (say LwF's recorded old-task responses)
    are sliced with the same batch indices and handed to `method.loss` after the task ids.
    Gradient methods: loss, backward, optimizer step per batch. Local learners (`method.local_learning`, the
    Hebbian and competitive methods) are given each batch through `method.local_update` instead.
    With `config.warmup_epochs`, the new head part is first trained alone on frozen features (Li & Hoiem's warm-up).
    """
    device = torch.device(config.device)
    data = [t.to(device) for t in method.training_data(task)]
    local = getattr(method, "local_learning", False)
    if config.warmup_epochs and not local:
        warm_up_head(method, task, data, scenario, config, generator)
    if local:
        step = method.local_update
        optimizer = schedule = None
    else:
        params = method.trainable_parameters()
        if not params:
            return
        optimizer = task_optimizer(method, params, config)
        schedule = make_schedule(optimizer, config)

        def step(*batch):
            return _descend(optimizer, method.loss(*batch))

    def start_epoch(epoch):
        method.train_mode()
        method.before_epoch(epoch, config.epochs)

    _run_epochs(step, start_epoch, data, config.epochs, schedule, scenario, config, generator,
                f"task {task.id + 1}/{len(scenario)}")


def warm_up_head(method: Method, task: Task, data, scenario, config, generator) -> None:
    """Train only the new task's head part (theta_n) with the classification loss, the shared layers and old
    heads frozen (Li & Hoiem's warm-up). Frozen means fixed features: the backbone runs in evaluation mode
    without gradients, so only the head's small linear layer costs anything."""
    params = method.new_head_parameters()
    if not params:
        return  # nothing new to warm up (the first task, or the domain setting's shared head)
    config = replace(config, lr=config.warmup_lr or config.lr)  # the warm-up's learning rate, also in its errors
    optimizer = make_optimizer(params, config)
    model = method.model

    def step(x, targets, task_ids, *extras):
        with torch.no_grad():
            features = model.backbone(x)
        return _descend(optimizer, method.classification_loss(model.head(features), targets, task_ids))

    _run_epochs(step, lambda epoch: model.eval(), data, config.warmup_epochs, None, scenario, config, generator,
                f"task {task.id + 1}/{len(scenario)} warm-up")


def _descend(optimizer, loss: torch.Tensor) -> torch.Tensor:
    """One gradient step on `loss`; returns it, detached."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _run_epochs(step, start_epoch, data, epochs, schedule, scenario, config, generator, description) -> None:
    """`epochs` shuffled passes over the tensors in `data` (sliced together): `start_epoch(epoch)` before each,
    then `step(*batch)` per batch."""
    n = len(data[0])
    n_batches = math.ceil(n / config.batch_size)
    bar = tqdm(total=epochs * n_batches, desc=description, unit="batch", leave=False,
               disable=None if config.progress else True)  # None: off when not a terminal
    try:
        for epoch in range(epochs):
            start_epoch(epoch)
            order = torch.randperm(n, generator=generator).to(data[0].device)
            epoch_loss = torch.zeros((), device=data[0].device)
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                x, *rest = (t[idx] for t in data)
                if scenario.augment:
                    x = crop_and_flip(x, generator)
                loss = step(x, *rest)
                if loss is not None:
                    epoch_loss += loss
                bar.update()
            # one check per epoch: a check per batch would force a device sync at every step
            if not torch.isfinite(epoch_loss):
                raise TrainingError(
                    f"the loss became {epoch_loss.item()} in {description.replace('/', ' of ')}, epoch {epoch + 1}: "
                    f"lower the learning rate (now {config.lr}) and run again into a new --out (a resume continues "
                    "only with the same options); the tasks finished before this one stay saved in --out")
            if schedule is not None:
                schedule.step()
            if loss is not None:  # local learners have no loss to show
                bar.set_postfix(loss=f"{epoch_loss.item() / n_batches:.3f}", refresh=False)
    finally:
        bar.close()


@torch.no_grad()
def evaluate(method: Method, tasks: list[Task], config: TrainConfig, split: str = "test") -> dict:
    """Task-aware and task-agnostic accuracy on each task, in one pass over its `split` data.

    Task-aware: the prediction is the best output within the task's own part of the head (the task id is given).
    Task-agnostic: the best output over every output of the head. In the domain setting both are the same.
    Returns lists indexed by task: correct counts (aware, agnostic) and sample counts.
    """
    method.model.eval()
    device = torch.device(config.device)
    aware, agnostic, counts = [], [], []
    for task in tasks:
        x, y = (task.x_test, task.y_test) if split == "test" else (task.x_val, task.y_val)
        part = method.task_slice(task.id)
        targets = method.targets(task, y).to(device)
        n_aware = n_agnostic = 0
        for start in range(0, len(x), config.eval_batch_size):
            logits = method.predict(x[start:start + config.eval_batch_size].to(device))
            t = targets[start:start + config.eval_batch_size]
            n_aware += int((logits[:, part].argmax(1) + part.start == t).sum())
            n_agnostic += int((logits.argmax(1) == t).sum())
        aware.append(n_aware)
        agnostic.append(n_agnostic)
        counts.append(len(x))
    return {"aware": aware, "agnostic": agnostic, "counts": counts}


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's: each differing option with both values
    inside a group of options (the training settings), otherwise the name of the differing entry."""
    found = []
    for key, value in now.items():
        if saved.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            found.append(", ".join(f"{k} {saved[key].get(k)!r} then, {v!r} now" for k, v in value.items()
                                   if saved[key].get(k) != v))
        else:
            found.append(key)
    return found


def _fingerprint(scenario: Scenario, method: Method, config: TrainConfig) -> dict:
    """What must be equal for a checkpoint to be resumed."""
    train = {k: v for k, v in asdict(config).items() if k not in ("progress", "eval_batch_size")}
    return {"scenario": scenario.name, "scenario_config": scenario.config, "method": method.name,
            "setting": method.setting, "train": train}


def _nan_matrix(n: int) -> list[list[float]]:
    return [[math.nan] * n for _ in range(n)]


def run(method: Method, scenario: Scenario, config: TrainConfig, out_dir=None, resume: bool = False) -> dict:
    """Learn the tasks of `scenario` in order with `method`; return (and write, when `out_dir` is given) the results.

    The results hold the accuracy matrix R[i][j] (fractions, NaN/null for tasks not yet seen) of the setting
    (task-aware accuracy in the task setting, task-agnostic otherwise) and both matrices, plus the metrics
    derived from it (see `lifelong.metrics`) and the wall time of each task.
    """
    n_tasks = len(scenario)
    empty = [task.id + 1 for task in scenario.tasks if len(task.x_train) == 0]
    if empty:  # found before any training, not hours into a sequence
        raise ConfigError(f"task(s) {', '.join(map(str, empty))} of {scenario.name} have no training samples: "
                          "nothing to learn (a validation_fraction that takes them all?)")
    method.check(scenario)
    out_dir = Path(out_dir) if out_dir is not None else None
    fingerprint = _fingerprint(scenario, method, config)
    torch.manual_seed(config.seed)  # the global generator: weight initialisation, dropout
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and augmentation
    history = {"correct_aware": [], "correct_agnostic": [], "counts": [], "val_aware": [], "val_agnostic": [],
               "val_counts": [], "train_time_s": [], "eval_time_s": []}
    start_task = 0
    checkpoint_path = out_dir / "checkpoint.pt" if out_dir else None

    if not resume and out_dir is not None and any((out_dir / f).exists() for f in ("checkpoint.pt", "results.json")):
        raise ConfigError(f"{out_dir} already holds a run: add --resume (resume=True) to continue it, or choose "
                          "another --out (or delete that directory) to start a new one")
    # first: what the method restores below (head parts, importance, recorded state) is made where the model is
    method.model.to(config.device)
    if resume:
        if checkpoint_path is None or not checkpoint_path.exists():
            raise ConfigError(f"nothing to resume: no checkpoint.pt in {out_dir}; run without --resume to start")
        try:
            checkpoint = load_checkpoint(checkpoint_path)
        except pickle.UnpicklingError as error:  # weights_only refused a global: a crafted or foreign file
            raise DataError(f"{checkpoint_path} holds more than tensors and plain data, and loading it could run "
                            f"code, so it was not loaded ({str(error).splitlines()[0]}). Only resume runs that "
                            "lifelong wrote; delete the checkpoint and run again into a new --out") from None
        except (EOFError, OSError, RuntimeError) as error:
            raise DataError(f"{checkpoint_path} cannot be read ({type(error).__name__}: {error}): it is damaged. "
                            "The results.json beside it keeps the finished tasks' numbers; delete the checkpoint "
                            "and run again into a new --out") from None
        saved = checkpoint["fingerprint"]
        # a checkpoint from before a TrainConfig field existed ran with that field's default
        saved["train"] = {**{k: v for k, v in asdict(TrainConfig()).items() if k in fingerprint["train"]},
                          **saved["train"]}
        if saved != fingerprint:
            raise ConfigError(f"the run in {out_dir} was started with other options "
                              f"({'; '.join(_differences(saved, fingerprint))}): "
                              "resume with the same options, or choose another --out")
        start_task = checkpoint["completed_tasks"]
        method.load_state_dict(checkpoint["method"], scenario.tasks[:start_task])
        history = checkpoint["history"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        generator.set_state(checkpoint["rng"]["generator"])
        if checkpoint["rng"].get("cuda") is not None and torch.cuda.is_available():  # dropout on a GPU
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
        restore_optimizer(method, checkpoint.get("optimizer"), config)  # its state follows its parameters' device
    method.augmented_inputs = scenario.augment
    results = None
    for task in scenario.tasks[start_task:]:
        started = time.perf_counter()
        method.before_task(task)
        train_task(method, task, scenario, config, generator)
        method.after_task(task)
        trained = time.perf_counter()
        seen = scenario.tasks[: task.id + 1]
        test = evaluate(method, seen, config, "test")
        history["correct_aware"].append(test["aware"])
        history["correct_agnostic"].append(test["agnostic"])
        history["counts"] = test["counts"]
        if task.x_val is not None:
            val = evaluate(method, seen, config, "val")
            history["val_aware"].append(val["aware"])
            history["val_agnostic"].append(val["agnostic"])
            history["val_counts"] = val["counts"]
        history["train_time_s"].append(trained - started)
        history["eval_time_s"].append(time.perf_counter() - trained)

        results = build_results(history, scenario, method, config, complete=task.id + 1 == n_tasks)
        if out_dir is not None:  # the checkpoint first: a results.json always has a checkpoint to resume from
            save_checkpoint(checkpoint_path, {
                "completed_tasks": task.id + 1, "method": method.state_dict(), "history": history,
                "optimizer": optimizer_state(method),
                "rng": {"torch": torch.get_rng_state(), "generator": generator.get_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                "fingerprint": fingerprint,
            })
            write_json(out_dir / "results.json", results)
    if results is None:  # resumed a run that had already finished
        results = build_results(history, scenario, method, config, complete=True)
    return results


def _accuracy_matrix(correct: list[list[int]], counts: list[int], n_tasks: int) -> list[list[float]]:
    R = _nan_matrix(n_tasks)
    for i, row in enumerate(correct):
        for j, c in enumerate(row):
            R[i][j] = c / counts[j] if counts[j] else math.nan
    return R


def build_results(history: dict, scenario: Scenario, method: Method, config: TrainConfig, complete: bool) -> dict:
    """The results document (see the README for its schema)."""
    n_tasks = len(scenario)
    done = len(history["correct_aware"])
    aware = _accuracy_matrix(history["correct_aware"], history["counts"], n_tasks)
    agnostic = _accuracy_matrix(history["correct_agnostic"], history["counts"], n_tasks)
    main = aware if method.setting == "task" else agnostic
    main_correct = history["correct_aware" if method.setting == "task" else "correct_agnostic"]
    seen_R = np.asarray(main)[:done, :done]
    results = {
        "status": "complete" if complete else f"running: {done} of {n_tasks} tasks done",
        "method": method.name,
        "setting": method.setting,
        "scenario": scenario.name,
        "scenario_config": scenario.config,
        "seed": config.seed,
        "class_order": scenario.class_order,
        "task_classes": [task.classes for task in scenario.tasks],
        "config": asdict(config),
        "versions": versions(),
        "accuracy_matrix": main,
        "task_aware_accuracy_matrix": aware,
        "task_agnostic_accuracy_matrix": agnostic,
        **metrics.summarize(seen_R),
        "accuracy_seen_classes": metrics.seen_classes_accuracy(
            [row + [0] * (done - len(row)) for row in main_correct], history["counts"][:done]),
        "method_details": method.describe(),
        "test_counts": history["counts"],
        "train_time_s": history["train_time_s"],
        "eval_time_s": history["eval_time_s"],
        "wall_time_s": sum(history["train_time_s"]) + sum(history["eval_time_s"]),
    }
    if history["val_aware"]:
        val = history["val_aware" if method.setting == "task" else "val_agnostic"]
        results["validation_accuracy_matrix"] = _accuracy_matrix(val, history["val_counts"], n_tasks)
    return results
