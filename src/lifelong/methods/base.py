"""The base class of every method: plain fine-tuning, with the hooks where methods differ.

The engine calls, for each task:

    method.before_task(task)                  # grow the head; a method may snapshot the old model, record...
    data = method.training_data(task)         # (inputs, targets, task ids) to train on
    for each epoch:
        method.train_mode()
        method.before_epoch(epoch, n_epochs)  # a method may start gathering statistics...
        for each batch:
            loss = method.loss(x, targets, task_ids)   # a method adds distillation... (`batch_losses`: the
                                                       # losses of none or several steps instead)
            method.before_step()                       # after backward: a penalty's gradient in closed form
    method.after_task(task)                   # a method may compute importance, update exemplars...
    method.before_evaluation(fit)             # stream or not: the model about to be evaluated (GDumb trains it)
    method.predict(x)                         # logits over every output, for evaluation

Targets are indices into the head's outputs. The setting decides how a task's within-task labels map there:
- "class":  one growing head; task t's classes get outputs offset_t .. offset_t + n_t - 1, and the loss and the
            prediction run over all outputs seen so far (no task id at test time);
- "task":   one head part per task (same offsets); the loss of a sample is taken over its own task's part
            only, and the prediction reads the part of the task (task id known at test time);
- "domain": a single head part of n outputs that every task shares (offset 0), no task id.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..inputs import in_order
from ..models import ContinualModel
from ..scenarios import SETTINGS, Task


BOUNDARY_HOOKS = ("before_task", "training_data", "before_epoch", "after_task", "warmup_epochs")


def boundary_hooks(cls) -> list[str]:
    """The hooks of `cls` that act where a task begins or ends (those it defines beyond fine-tuning's)."""
    return [name for name in BOUNDARY_HOOKS if getattr(cls, name) is not getattr(Method, name)]


def needs_task_boundaries(cls) -> bool:
    """Whether `cls` (a method class, or a method: its options may decide, A-GEM's `task_memory`) must be told where
    tasks end: its declaration, else whether it defines a boundary hook."""
    declared = cls.needs_task_boundaries
    return bool(boundary_hooks(cls if isinstance(cls, type) else type(cls))) if declared is None else declared


class Method:
    """Fine-tuning: all parameters trained on the current task, a new head part per task.

    As in Li & Hoiem's fine-tuning baseline, in the task-incremental setting the heads of earlier tasks are left
    unchanged (theta_o fixed); the shared layers and the new head are trained.
    """

    name = "finetune"
    settings = SETTINGS  # the settings the method runs in
    keeps_exemplars = False  # whether it takes a memory budget (--memory, --memory-per-class)
    augmented_inputs = False  # set by the engine: True when training batches are augmented (crop, flip)
    # whether the method must be told where tasks end, which a stream (`TrainConfig.stream`) hides. None: derived
    # from the hooks it defines (`boundary_hooks`): a method whose before_task, training_data, before_epoch,
    # after_task or warm-up does work at a boundary needs them; True/False: declared
    needs_task_boundaries: bool | None = None

    def __init__(self, model: ContinualModel, setting: str = "class"):
        if setting not in SETTINGS:
            raise ConfigError(f"unknown setting {setting!r}; choose one of: {', '.join(SETTINGS)}")
        self.model = model
        self.setting = setting
        self.offsets: list[int] = []  # first head output of each task seen
        self.sizes: list[int] = []  # number of classes of each task seen (no task data is kept: constant memory)
        self.optimizer = None  # the engine's optimizer when one is kept for the whole sequence (reset_optimizer)
        self.every_output = False  # `preallocate_head="all"`: every output of the head in the loss and prediction

    # ------------------------------------------------------------------ where the settings differ
    def task_slice(self, task_id: int) -> slice:
        """The head outputs that belong to task `task_id`."""
        return slice(self.offsets[task_id], self.offsets[task_id] + self.sizes[task_id])

    def _register_task(self, task: Task) -> None:
        """Give the task its head outputs: after the others, except in the domain setting (all share part 0)."""
        if task.id != len(self.offsets):
            raise ConfigError(f"tasks must arrive in order: expected task {len(self.offsets)}, got task {task.id}")
        if self.setting == "domain" and self.offsets and task.n_classes != self.sizes[0]:
            raise ConfigError("the domain-incremental setting needs the same number of classes in every task "
                              f"(task 0 has {self.sizes[0]}, task {task.id} has {task.n_classes})")
        self.offsets.append(0 if self.setting == "domain" else sum(self.sizes))
        self.sizes.append(task.n_classes)
        n_outputs = self.n_outputs(len(self.sizes))
        # outputs a sample may be classified into, per task id: used by the task-incremental loss
        mask = torch.zeros(len(self.sizes), n_outputs, dtype=torch.bool)
        for t in range(len(self.sizes)):
            mask[t, self.task_slice(t)] = True
        self.output_mask = mask

    def n_outputs(self, n_tasks: int) -> int:
        """The head outputs of the first `n_tasks` tasks: their classes one after the other, or the one shared part
        in the domain setting."""
        return self.sizes[0] if self.setting == "domain" else sum(self.sizes[:n_tasks])

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def targets(self, task: Task, y: torch.Tensor) -> torch.Tensor:
        """Within-task labels -> head output indices."""
        return y + self.offsets[task.id]

    def enter_stream(self, tasks: list[Task]) -> None:
        """The stream setting (`TrainConfig.stream`): the bookkeeping of every task of the stream at once, before its
        first batch, in place of `before_task` at each boundary: each task's head outputs (offsets, sizes, masks) and
        the head grown to all of them (Mammoth's head: every class's output from the start, the loss over all of
        them), so that nothing happens where a task ends. Nothing is frozen (the task setting's old heads: no task is
        old in a stream). Called again after a resume (it redoes the bookkeeping of `tasks`, grows nothing twice)."""
        if len(self.sizes) == len(tasks):
            return
        self._restore_tasks(tasks)
        end = max(self.offsets[t] + self.sizes[t] for t in range(len(tasks) if self.setting != "domain" else 1))
        if self.model.head.out_features < end:  # in one part (Mammoth's one linear layer): a head in task parts
            self.model.head.add(end - self.model.head.out_features)  # would stack them at every forward pass

    # ------------------------------------------------------------------ the hooks
    def check(self, scenario) -> None:
        """Called once before any training: raise a ConfigError if this method cannot run `scenario` (say a
        memory too small for its classes), rather than hours into the sequence. Fine-tuning runs anything."""

    def before_task(self, task: Task) -> None:
        """Called once before training on `task`. The base grows the head and freezes old task heads (task-IL)."""
        self._register_task(task)
        if self.model.head.out_features < self.offsets[-1] + self.sizes[-1]:
            self.model.head.add(task.n_classes)
        self.output_mask = self.output_mask.to(self._device)
        if self.setting == "task":
            for part in self.model.head.parts[:-1]:
                part.requires_grad_(False)

    def training_data(self, task: Task) -> tuple[torch.Tensor, ...]:
        """(inputs, targets, task ids) to train on for `task`: its own training data. A method may append more
        per-sample tensors (recorded responses...): the engine slices them with the batch and passes them to
        `loss` after the task ids."""
        task_ids = torch.full_like(task.y_train, task.id)
        return task.x_train, self.targets(task, task.y_train), task_ids

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def new_head_parameters(self) -> list[nn.Parameter]:
        """theta_n: the head part added for the current task (none in the domain setting, where all share one)."""
        if self.setting == "domain" or len(self.sizes) < 2:
            return []
        return list(self.model.head.parts[-1].parameters())

    def train_mode(self) -> None:
        """Put the model in training mode; batch-norm layers whose parameters are all frozen keep their statistics."""
        self.model.train()
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                params = list(module.parameters())
                if params and not any(p.requires_grad for p in params):
                    module.eval()

    def warmup_epochs(self, config) -> int:
        """Epochs of the new head alone on frozen features before each task, unless the training configuration
        sets them (`warmup_epochs`). Fine-tuning has no warm-up."""
        return 0

    def before_epoch(self, epoch: int, n_epochs: int) -> None:
        """Called at the start of each training epoch (0 .. n_epochs - 1), after `train_mode`. Nothing here."""

    def seen(self, logits: torch.Tensor) -> torch.Tensor:
        """The outputs of the tasks seen so far. The same logits, unless the head was built with every class's
        output from the start (`preallocate_head`, Hsu et al.'s class-IL head): later classes stay out until
        their task comes; with `preallocate_head="all"` (Mammoth's head, `every_output`) they are in from the first
        task, as in a stream. (The logits themselves when they are all seen: a slice of every column would still
        cost a step two operations, forward and backward.)"""
        n = self.output_mask.shape[1]
        return logits if logits.shape[1] == n or self.every_output else logits[:, :n]

    def classification_loss(self, logits: torch.Tensor, targets: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the outputs the setting allows: a sample's own task part in the task setting."""
        logits = self.seen(logits)
        if self.setting == "task":
            logits = logits.masked_fill(~self.output_mask[task_ids], float("-inf"))
        return F.cross_entropy(logits, targets)

    def loss(self, x: torch.Tensor, targets: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch. Fine-tuning: the classification loss alone."""
        return self.classification_loss(self.model(x), targets, task_ids)

    def batch_losses(self, x: torch.Tensor, targets: torch.Tensor, task_ids: torch.Tensor, *extras):
        """The gradient steps an incoming batch makes: yields each step's loss in turn; the engine runs backward,
        `before_step` and the optimizer's step on it before asking for the next, so what follows a `yield` sees the
        model after that step. A method may yield no loss (it only keeps the batch) or several (it trains several
        times on what it holds: task-free MAS's recent and hard buffers). The engine calls it only where a method
        defines it (`own_hook`); fine-tuning's is one step on `loss`, which every other method changes instead."""
        yield self.loss(x, targets, task_ids, *extras)

    def before_step(self) -> None:
        """Called after each training batch's backward pass, before the optimizer's step: a method may change the
        gradients here (the importance penalties add theirs in closed form). Fine-tuning changes nothing."""

    def after_task(self, task: Task) -> None:
        """Called once after training on `task`. Fine-tuning has nothing to do here."""

    def before_evaluation(self, fit) -> None:
        """Called at the end of learning each task, in a stream too (where no boundary hook is called), after
        `after_task`: the model is evaluated after it (the engine evaluates after each task) and a learner is saved
        and predicts with the model it leaves. A method whose evaluated model is not the one the stream trains makes
        it here: GDumb trains a model from its initial state on its memory alone. It is told nothing of the tasks.

        `fit(data, optimizer, epochs, batch_size)` trains the model on `data` ((inputs, targets, task ids) tensors)
        with the library's one step loop (shuffled batches with the run's generator, `loss`, backward,
        `before_step`, `optimizer.step()`; augmented as the training batches are) and returns each pass's mean
        loss, which the run records after the task's own. Fine-tuning does nothing here."""

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the outputs seen so far, in evaluation mode; the engine reads the part each setting needs."""
        return self.seen(self.model(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """The backbone's features of `x` in evaluation mode, in batches (what exemplar selection, class means and
        prototypes are computed from)."""
        self.model.eval()
        return torch.cat([self.model.features(batch) for batch in in_order(x, batch_size, self._device)])

    def describe(self) -> dict:
        """What the method keeps, for results.json (`method_details`): an exemplar memory's budget and choice..."""
        return {}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue after the tasks seen so far. Subclasses add their own state."""
        state = {"model": self.model.state_dict(), "sizes": list(self.sizes), "head_sizes": self.model.head.sizes}
        return {**state, "every_output": True} if self.every_output else state

    def load_state_dict(self, state: dict, tasks: list[Task]) -> None:
        """Restore the state after `tasks` (the tasks already learned, in order)."""
        for size in state["head_sizes"][len(self.model.head.sizes):]:
            self.model.head.add(size)
        self.model.load_state_dict(state["model"])
        self.every_output = state.get("every_output", False) is True
        self._restore_tasks(tasks)

    def _restore_tasks(self, tasks: list[Task]) -> None:
        """Redo the bookkeeping of `tasks` (offsets, sizes, masks) without growing anything."""
        self.offsets, self.sizes = [], []
        for task in tasks:
            self._register_task(task)
        self.output_mask = self.output_mask.to(self._device)
