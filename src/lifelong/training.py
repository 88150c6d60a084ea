"""Training one task: the configuration, the optimizers and schedules, the epochs of mini-batches, evaluation.

`train_task` runs a method's hooks over one task's data (sliced from in-memory tensors, no per-sample Python work;
or, for data on disk, the same batches read by a DataLoader: `input_batches`);
`evaluate` measures task-aware and task-agnostic accuracy. The learner (`lifelong.learner`) calls them task by task,
and the engine (`lifelong.engine`) drives a learner over a whole scenario.
"""

import math
import numbers
import sys
import time
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import torch
from tqdm.auto import tqdm

from . import distributed
from .checks import check_device
from .errors import ConfigError, TrainingError
from .inputs import concat, in_order, input_batches
from .limits import MAX_INT, MAX_SEED
from .methods import Method
from .scenarios import Task
from .transforms import crop_and_flip

OPTIMIZERS = ("sgd", "adam")
LINE_EVERY_S = 5.0  # without a terminal: at most one epoch line every this many seconds
SCHEDULES = ("none", "step", "cosine")


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
    # train the new head alone first, on frozen features (Li & Hoiem); None: the method's own (LwF: the paper's
    # warm-up, the others none); 0: no warm-up
    warmup_epochs: int | None = None
    warmup_lr: float | None = None  # default: lr
    # the tasks after the first (FSCIL's few-shot sessions: 25 images, not a base session's thousands); None: as the
    # first task
    incremental_epochs: int | None = None
    incremental_lr: float | None = None
    seed: int = 0
    eval_batch_size: int = 1024
    progress: bool = True
    device: str = "cpu"
    # False: one optimizer for the whole sequence, its moment estimates carried from task to task (the default of
    # Hsu et al.'s benchmark code, `reset_optimizer=False`); parameters new to it (a new head part) join it
    reset_optimizer: bool = True
    # the stream setting: one pass over each task's samples in mini-batches, the method never told where a task ends
    # (its before_task / after_task are not called; every task's head outputs exist from the start, `enter_stream`);
    # evaluation still after each task. Methods that work at task boundaries are refused (`check_stream`)
    stream: bool = False
    # stream only: the share of each next task's training samples moved into the current task's stream (blurry
    # boundaries), drawn with the seed; 0: sharp boundaries
    blurry: float = 0.0
    extra: dict = field(default_factory=dict)  # anything else to record (method options...)

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (1 <= self.batch_size <= MAX_INT, f"batch size must be from 1 to {MAX_INT}, got {self.batch_size}"),
            (1 <= self.eval_batch_size <= MAX_INT,
             f"eval batch size must be from 1 to {MAX_INT}, got {self.eval_batch_size}"),
            (isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and 0 <= self.seed <= MAX_SEED,
             f"seed must be a whole number from 0 to {MAX_SEED} (torch's seeds), got {self.seed!r}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be a positive number, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose {' or '.join(OPTIMIZERS)}"),
            (self.warmup_epochs is None or self.warmup_epochs >= 0,
             f"warm-up epochs must be >= 0, got {self.warmup_epochs}"),
            (self.warmup_lr is None or self.warmup_lr > 0, f"warm-up lr must be positive, got {self.warmup_lr}"),
            (self.incremental_epochs is None or self.incremental_epochs >= 1,
             f"incremental epochs must be at least 1, got {self.incremental_epochs}"),
            (self.incremental_lr is None or (self.incremental_lr > 0 and math.isfinite(self.incremental_lr)),
             f"the incremental learning rate must be a positive number, got {self.incremental_lr}"),
            (self.momentum >= 0, f"momentum must be >= 0, got {self.momentum}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"),
            (self.gamma > 0, f"the schedule's gamma must be > 0 (it multiplies the learning rate), got {self.gamma}"),
            (all(0 < m <= 1 for m in self.milestones),
             f"milestones are fractions of the epochs in (0, 1], got {self.milestones}"),
            (self.reset_optimizer or self.schedule == "none",
             f"a learning-rate schedule ({self.schedule!r}) restarts with each task's optimizer: with one optimizer "
             "for the whole sequence (--one-optimizer, reset_optimizer=False) use --schedule none"),
            (not self.stream or (self.epochs == 1 and (self.incremental_epochs or 1) == 1),
             f"a stream is one pass over each task's samples: epochs must be 1 with --stream (stream=True), got "
             f"{self.epochs if self.epochs != 1 else self.incremental_epochs}"),
            (not self.stream or not self.warmup_epochs,
             "a stream has no task boundary to warm a new head up at: leave --warmup-epochs out with --stream"),
            (isinstance(self.blurry, numbers.Real) and 0 <= self.blurry < 1,
             f"blurry is the share of the next task's samples mixed into the current one, from 0 to below 1, got "
             f"{self.blurry!r}"),
            (self.stream or not self.blurry, "blurry boundaries are a stream's: add --stream (stream=True)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        check_device(self.device)


def check_options_used(config: TrainConfig, given) -> None:
    """An option given that `config` would never read is an error, not silence: momentum with Adam, a warm-up
    learning rate without warm-up epochs, a milestone or gamma without the step schedule."""
    unused = {"momentum": config.optimizer != "sgd", "warmup_lr": config.warmup_epochs == 0,
              "milestones": config.schedule != "step", "gamma": config.schedule != "step"}
    why = {"momentum": f"the optimizer is {config.optimizer} (momentum is SGD's)",
           "warmup_lr": "there is no warm-up (give warmup_epochs too)",
           "milestones": f"the schedule is {config.schedule!r}, not 'step'",
           "gamma": f"the schedule is {config.schedule!r}, not 'step'"}
    for name in given:
        if unused.get(name):
            raise ConfigError(f"{name} has no effect here: {why[name]}; leave it out or change what it depends on")


def warmup_epochs(method: Method, config: TrainConfig) -> int:
    """The head warm-up's epochs: the configuration's, else the method's own (`Method.warmup_epochs`)."""
    if config.warmup_epochs is not None:
        return config.warmup_epochs
    return 0 if getattr(method, "local_learning", False) else method.warmup_epochs(config)


def check_warmup_used(method: Method, config: TrainConfig, option: str = "warmup_lr",
                      needs: str = "warmup_epochs") -> None:
    """A warm-up learning rate for a method that, in this configuration, has no warm-up is an error."""
    if config.warmup_lr is not None and not warmup_epochs(method, config):
        raise ConfigError(f"{option} has no effect: {method.name} has no head warm-up here (give {needs} too)")


def check_stream(method: Method, config: TrainConfig) -> None:
    """A method that must be told where tasks end cannot learn from a stream, which hides them: refused in one
    line, before any training."""
    from .methods import METHODS
    from .methods.base import boundary_hooks, needs_task_boundaries

    if config.stream and needs_task_boundaries(method):
        hooks = boundary_hooks(type(method))
        why = f" (its {', '.join(hooks)})" if hooks else ""
        fit = [name for name, cls in METHODS.items() if not needs_task_boundaries(cls)]
        if not needs_task_boundaries(type(method)):  # the method can, its options cannot (A-GEM's task_memory)
            raise ConfigError(f"{method.name} with these options cannot learn from a stream: they make it work at "
                              f"task boundaries{why}, which a stream hides; leave out --stream, or change them "
                              f"(`lifelong list --method {method.name}`)")
        raise ConfigError(f"{method.name} cannot learn from a stream: it works at task boundaries{why}, which a "
                          f"stream hides; methods for a stream: {', '.join(fit)}")


def stream_data(method: Method, task: Task, scenario, config: TrainConfig) -> list:
    """Task `task`'s part of the stream: its training samples (inputs, targets, task ids), with blurry boundaries
    (`config.blurry` > 0) less the share moved into the previous task's part and plus the share moved in from the
    next task's. The share a task gives away is a draw of its own seed (the run's seed and the task id), the same
    on a resume and whatever else was drawn."""
    tasks = getattr(scenario, "tasks", None)
    if tasks is None and config.blurry:
        raise ConfigError("blurry boundaries mix the next task's samples in: they need a scenario's run (lifelong "
                          "run, run_experiment), not tasks learned one at a time")

    def part(t: Task, keep):
        x, y = t.x_train, t.y_train
        if keep is not None:
            x, y = x[keep], y[keep]
        return [x, method.targets(t, y), torch.full_like(y, t.id)]

    def moved(t: Task):  # the indices of task t's samples that stream with task t - 1
        n = len(t.y_train)
        draw = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + t.id))
        return draw[:round(config.blurry * n)].sort().values

    own = None
    if config.blurry and task.id > 0:
        mask = torch.ones(len(task.y_train), dtype=torch.bool)
        mask[moved(task)] = False
        own = mask.nonzero().squeeze(1)
    parts = [part(task, own)]
    if config.blurry and task.id + 1 < len(tasks):
        parts.append(part(tasks[task.id + 1], moved(tasks[task.id + 1])))
    if len(parts) == 1:  # sharp boundaries: the task's own inputs, not a copy of them (a task's size in memory)
        return parts[0]
    return [concat([p[i] for p in parts]) for i in range(3)]


def import_optimizers(config: TrainConfig) -> None:
    """Pay for what the first optimizer of a process imports (torch._dynamo: 1.6 s here) now, not inside the
    first task's measured training time."""
    make_optimizer([torch.nn.Parameter(torch.zeros(1, device=config.device))], config)


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


def task_config(config: TrainConfig, task: Task) -> TrainConfig:
    """The configuration task `task` trains with: the first task's, or the incremental epochs and learning rate."""
    if task.id == 0:
        return config
    return replace(config, epochs=config.incremental_epochs or config.epochs, lr=config.incremental_lr or config.lr)


def train_task(method: Method, task: Task, scenario, config: TrainConfig, generator: torch.Generator):
    """Train `method` on `task`: `config.epochs` passes over `method.training_data(task)` in shuffled batches.

    `training_data` returns (inputs, targets, task ids, *extras); the extras (say LwF's recorded old-task responses)
    are sliced with the same batch indices and handed to `method.loss` after the task ids.
    Gradient methods: loss, backward, optimizer step per batch; on several processes (`lifelong.distributed`)
    each computes the loss on its share of the batch and the gradients are added up before the step. Local
    learners (`method.local_learning`, the Hebbian and competitive methods) are given each batch through
    `method.local_update` instead (on several processes, each the whole batch: there is no gradient to add up).
    With a warm-up (`warmup_epochs`), the new head part is first trained alone on frozen features (Li & Hoiem).
    `scenario` (or None) gives whether batches are augmented (`scenario.augment`) and the task count shown.
    Returns the mean loss of each epoch (the warm-up's left out; empty for local learners).
    """
    config = task_config(config, task)
    device = torch.device(config.device)
    source = stream_data(method, task, scenario, config) if config.stream else method.training_data(task)
    data = [t.to(device) if isinstance(t, torch.Tensor) else t for t in source]
    local = getattr(method, "local_learning", False)
    if warmup_epochs(method, config):
        warm_up_head(method, task, data, scenario, config, generator)
    if local:
        def step(*batch, weight):
            return method.local_update(*batch)

        optimizer = schedule = None
    else:
        params = method.trainable_parameters()
        if not params:
            return []
        optimizer = task_optimizer(method, params, config)
        schedule = make_schedule(optimizer, config)
        step = _stepper(method, optimizer)

    before_epoch = own_hook(method, "before_epoch")

    def start_epoch(epoch):
        method.train_mode()
        if before_epoch is not None:
            before_epoch(epoch, config.epochs)

    # a stream: shuffled within the task as an epoch is, or in its given order where the task says so (`ordered`)
    shuffle = not (config.stream and getattr(task, "ordered", False))
    losses = _run_epochs(step, start_epoch, data, config.epochs, schedule, scenario, config, generator,
                         _label(task, scenario), shard=not local, shuffle=shuffle)
    distributed.settle(method.model)
    return losses


def fit(method: Method, data, optimizer: torch.optim.Optimizer, epochs: int, batch_size: int, config: TrainConfig,
        generator: torch.Generator, description: str, augment: bool = False) -> list[float]:
    """`epochs` shuffled passes of `batch_size` over `data` ((inputs, targets, task ids, ...) tensors) with the one
    step loop (`method.loss`, backward, `method.before_step`, `optimizer.step()`): the `fit` a method's
    `before_evaluation` is handed, to train on data of its own (GDumb's memory) with an optimizer of its own.
    Returns the mean loss of each pass."""
    device = torch.device(config.device)
    data = [t.to(device) for t in data]
    step = _stepper(method, optimizer)
    config = replace(config, batch_size=batch_size, lr=optimizer.param_groups[0]["lr"])  # the lr its errors name
    losses = _run_epochs(step, lambda epoch: method.train_mode(), data, epochs, None,
                         SimpleNamespace(augment=augment), config, generator, description)
    distributed.settle(method.model)
    return losses


def _stepper(method: Method, optimizer):
    """`step(*batch, weight)`: the gradient steps one batch makes. One step on `method.loss(*batch)`; or, for a
    method with a `batch_losses` hook of its own, one step per loss it yields (none: it only kept the batch;
    several: it trains several times on what it holds), each with backward, `before_step` and the optimizer's step
    before the next loss is asked for. Returns the loss of the batch's first step (before any of its steps moved the model,
    as a one-step batch's), or None where it made no step."""
    descend, loss_of = _descender(optimizer, own_hook(method, "before_step")), method.loss
    batch_losses = own_hook(method, "batch_losses")
    if batch_losses is None:
        def step(*batch, weight):
            return descend(loss_of(*batch), weight)

        return step

    def step(*batch, weight):
        first = None
        for loss in batch_losses(*batch):
            done = descend(loss, weight)
            first = done if first is None else first
        return first

    return step


def own_hook(method: Method, name: str):
    """`method`'s hook `name` (bound), or None where it is `Method`'s own, which does nothing: looked up once per
    task, so that a hook that does nothing for the method at hand costs no call per step. Whatever a subclass
    defines (or an instance is given) is called, even if it only calls the base class's."""
    hook = getattr(method, name)
    return None if getattr(hook, "__func__", None) is getattr(Method, name) else hook


def _label(task: Task, scenario) -> str:
    return f"task {task.id + 1}/{len(scenario)}" if hasattr(scenario, "__len__") else f"task {task.id + 1}"


def warm_up_head(method: Method, task: Task, data, scenario, config, generator) -> None:
    """Train only the new task's head part (theta_n) with the classification loss, the shared layers and old
    heads frozen (Li & Hoiem's warm-up). Frozen means fixed features: without augmentation they are computed once
    (the backbone in evaluation mode), and each warm-up epoch costs only the head's small linear layer."""
    params = method.new_head_parameters()
    if not params:
        return  # nothing new to warm up (the first task, or the domain setting's shared head)
    epochs = warmup_epochs(method, config)
    config = replace(config, lr=config.warmup_lr or config.lr)  # the warm-up's learning rate, also in its errors
    descend = _descender(make_optimizer(params, config))
    model = method.model
    augmented = getattr(scenario, "augment", False)
    x, targets, task_ids = data[:3]
    if not augmented:
        model.eval()
        with torch.no_grad():
            x = torch.cat([model.backbone(inputs.to(targets.device))
                           for inputs in in_order(x, config.eval_batch_size)])

    def step(inputs, targets, task_ids, weight):
        if augmented:
            with torch.no_grad():
                inputs = model.backbone(inputs)
        return descend(method.classification_loss(model.head(inputs), targets, task_ids), weight)

    _run_epochs(step, lambda epoch: model.eval(), [x, targets, task_ids], epochs, None, scenario, config,
                generator, f"{_label(task, scenario)} warm-up")


def _descender(optimizer, before_step=None):
    """`descend(loss, weight)`: one gradient step on `loss`, the loss of this process's share `weight` of the batch
    (1 alone), with `before_step()` (None: nothing) between the backward pass and the step; it returns the whole
    batch's loss, detached. What does not change from step to step is settled here, once per task: the parameters
    whose gradients are cleared (those of the optimizer: its groups are complete before the task's first step), and
    whether the gradients are added up over processes (alone: `loss.backward()`, no message)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    alone = distributed.world_size() == 1

    def descend(loss: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        for p in params:  # optimizer.zero_grad(set_to_none=True) without its profiler scope: 8 us a step here
            p.grad = None
        if alone:
            loss.backward()
            loss = loss.detach()
        else:
            loss = distributed.backward(loss, weight, optimizer)  # the gradients added up over the processes
        if before_step is not None:
            before_step()  # after the sum: a penalty's gradient is added once, not once per process
        optimizer.step()
        return loss

    return descend


class _IndexBatches:
    """An epoch's batches of indices, each sliced from the shuffled `order` when it is reached: no list of views
    made at the start of the epoch, whose size would grow with the number of steps (6,000 a pass over MNIST at
    batch 10). `len` is the number of batches; iterating twice (`zip` with `input_batches`) slices each once
    per iteration."""

    def __init__(self, order: torch.Tensor, size: int):
        self.order, self.size = order, size

    def __len__(self) -> int:
        return -(-len(self.order) // self.size)

    def __iter__(self):
        order, size = self.order, self.size
        for start in range(0, len(order), size):
            yield order[start:start + size]


def _run_epochs(step, start_epoch, data, epochs, schedule, scenario, config, generator,
                description, shard: bool = True, shuffle: bool = True) -> list[float]:
    """`epochs` shuffled passes over the tensors in `data` (sliced together; the inputs, `data[0]`, may be a
    Dataset read from disk: `input_batches`): `start_epoch(epoch)` before each, then `step(*batch, weight=...)` per
    batch. On several processes each draws the same order and, with `shard`, takes its share of every batch
    (`weight`: its fraction of the batch). `shuffle=False`: the samples in their given order. Returns the mean loss
    of each epoch (none when `step` returns no loss)."""
    n = len(data[0])
    inputs, tensors = data[0], data[1:]
    device = tensors[0].device
    n_batches = math.ceil(n / config.batch_size)
    augment = getattr(scenario, "augment", False)
    # alone (one process, or a step that takes whole batches), every batch is all this process's: nothing to cut
    share = distributed.share if shard and distributed.world_size() > 1 else None
    bar = tqdm(total=epochs * n_batches, desc=description, unit="batch", leave=False,
               disable=None if config.progress else True)  # None: off when not a terminal
    last_line = time.monotonic()
    losses = []
    try:
        for epoch in range(epochs):
            start_epoch(epoch)
            order = (torch.randperm(n, generator=generator) if shuffle else torch.arange(n)).to(device)
            epoch_loss = torch.zeros((), device=device)
            stepped = 0  # batches that made a step (a method's `batch_losses` may make none: a batch it only keeps)
            batches = _IndexBatches(order, config.batch_size)
            for idx, x in zip(batches, input_batches(inputs, batches)):
                rest = [t.index_select(0, idx) for t in tensors]  # = t[idx], without indexing's parsing
                if augment:  # drawn for the whole batch: the generators stay in step
                    x = crop_and_flip(x, generator)
                if share is None:
                    loss = step(x, *rest, weight=1.0)
                else:
                    mine, weight = share(len(idx))
                    loss = step(x[mine], *(t[mine] for t in rest), weight=weight)
                if loss is not None:
                    epoch_loss += loss  # a tensor: no sync with the device, nothing that grows with the steps
                    stepped += 1
                bar.update()
            # one check per epoch: a check per batch would force a device sync at every step
            if not torch.isfinite(epoch_loss):
                # the caller (a run, a learner's `learn`) says how to start again
                raise TrainingError(f"the loss became {epoch_loss.item()} in {description.replace('/', ' of ')}, "
                                    f"epoch {epoch + 1}: lower the learning rate (now {config.lr})")
            if schedule is not None:
                schedule.step()
            if stepped:  # local learners have no loss to show; the mean over the batches that made a step
                losses.append(epoch_loss.item() / stepped)
                bar.set_postfix(loss=f"{epoch_loss.item() / stepped:.3f}", refresh=False)
            if config.progress and not sys.stderr.isatty() and time.monotonic() - last_line >= LINE_EVERY_S:
                # no terminal (a log file, CI, nohup): no bar, but a line at most every few seconds
                last_line = time.monotonic()
                shown = "" if not stepped else f": loss {epoch_loss.item() / stepped:.3f}"
                print(f"  {description} epoch {epoch + 1}/{epochs}{shown}", file=sys.stderr, flush=True)
    finally:
        bar.close()
    return losses


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
        counts.append(len(x))
        mine = distributed.part(len(x))  # on several processes each its part: the counts are added below
        x, y = x[mine], y[mine]  # inputs read from disk (`ImageFiles`): a subset of their files
        part = method.task_slice(task.id)
        targets = method.targets(task, y).to(device)
        # the classes of the tasks seen so far: a stream's head has every task's outputs from the start
        n_seen = method.n_outputs(len(tasks))
        n_aware = n_agnostic = 0
        for start, inputs in zip(range(0, len(x), config.eval_batch_size), in_order(x, config.eval_batch_size)):
            logits = method.predict(inputs.to(device))
            if logits.shape[1] > n_seen:
                logits = logits[:, :n_seen]
            t = targets[start:start + config.eval_batch_size]
            n_aware += int((logits[:, part].argmax(1) + part.start == t).sum())
            n_agnostic += int((logits.argmax(1) == t).sum())
        aware.append(n_aware)
        agnostic.append(n_agnostic)
    summed = distributed.total(aware + agnostic)
    return {"aware": summed[:len(tasks)], "agnostic": summed[len(tasks):], "counts": counts}
