"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017).

The algorithm box:
    Start with theta_s (shared), theta_o (old task heads); new task data X_n, Y_n.
    Initialise: Y_o <- CNN(X_n; theta_s, theta_o)        # old heads' responses to the new data, recorded once
                theta_n <- random                         # a new head
    Warm-up:    train theta_n alone, theta_s and theta_o frozen   ("to convergence"; `warmup`, on by default: as
                many epochs as the task's training, on features computed once; `--warmup-epochs N` sets N)
    Train:      minimise lambda_o * L_old(Y_o, Y_o_hat) + L_new(Y_n, Y_n_hat) + R(theta_s, theta_o, theta_n)
                over theta_s, theta_o and theta_n, with L_old the distillation loss at T = 2 and R weight decay.

Settings. Task-incremental (multi-head, as in the paper): L_old is summed over the old tasks, each head's outputs
distilled separately ("we take the loss for each output and each task", section 3). Class-incremental (one
growing head, as users run LwF there too): L_old distils the old classes' logits as one distribution, or
(`class_distillation="all-classes"`, van de Ven & Tolias's code) every class's logits, the new classes' targets
0. Domain-incremental: the shared head's outputs are distilled.

Recorded responses. Without augmentation the inputs never change, so Y_o is computed once per task before training
(as the algorithm box says), turned into soft targets softmax(Y_o / T) at once, and the old model is dropped:
LwF costs about what fine-tuning costs. With augmentation (CIFAR crop + flip) Y_o must match the augmented batch,
so the old model is kept and run on each batch. In the task setting with heads of one size the targets of every
head (soft ones for the old heads, the one-hot label for the new head) are laid out once per task too, weighted,
and the whole loss is one softmax over (sample, head) rows (`per_head_loss`): the same number as the two terms
computed apart, with fewer operations per step.
"""

import copy

import torch
import torch.nn.functional as F

from ..checks import check_choice, check_weight
from ..distillation import check_temperature, soft_cross_entropy, soft_targets
from ..errors import ConfigError
from ..inputs import in_order
from ..models import ContinualModel
from .base import Method


WEIGHTINGS = ("li-hoiem", "van-de-ven")
CLASS_DISTILLATIONS = ("old-classes", "all-classes")


class LwF(Method):
    name = "lwf"

    def __init__(self, model: ContinualModel, setting: str = "task", lamb: float = 1.0, temperature: float = 2.0,
                 weighting: str = "li-hoiem", class_distillation: str = "old-classes", warmup: bool = True):
        """lamb: lambda_o, the weight of L_old ("set to 1 for most our experiments", Li & Hoiem section 4.1).
        temperature: T of the distillation ("T = 2 ... as suggested by Hinton et al.", section 3).
        weighting: "li-hoiem" (the paper): L_new + lamb * L_old, L_old summed over old heads. "van-de-ven": the
        weighting of van de Ven & Tolias's benchmark code, whose split-MNIST numbers Hsu et al. and van de Ven et
        al. report: (1/t) L_new + (1 - 1/t) T^2 L_old, t the number of tasks so far, L_old averaged over old
        heads (lamb is not used).
        class_distillation (class setting only): "old-classes" distils softmax(old logits / T) towards the recorded
        old outputs; "all-classes" (van de Ven & Tolias's code) distils softmax(all logits / T) towards the recorded
        outputs with probability 0 for the new classes, which also pulls the new classes' logits down on the new
        task's images and so offsets the bias of a growing head towards the newest classes.
        warmup: Li & Hoiem's warm-up ("we first freeze theta_s and theta_o and train theta_n to convergence, and
        then jointly train all weights", section 3): the new head alone for as many epochs as the task's own
        training (the engine's `warmup_epochs` overrides the count). False: none, as in van de Ven's and Hsu et
        al.'s code, which our Hsu reproduction follows."""
        super().__init__(model, setting)
        if not isinstance(warmup, bool):
            raise ConfigError(f"warmup must be true or false, got {warmup!r}")
        self.warmup = warmup
        check_weight("lamb (LwF's lambda_o)", lamb)
        check_temperature(temperature)
        self.lamb = lamb
        self.temperature = temperature
        self.weighting = check_choice("LwF weighting", weighting, WEIGHTINGS)
        if self.weighting == "van-de-ven" and lamb != 1.0:
            raise ConfigError(f"lamb={lamb} has no effect with weighting='van-de-ven' (its weights are 1/t and "
                              "1 - 1/t): leave lamb out, or use weighting='li-hoiem'")
        self.class_distillation = check_choice("LwF class_distillation", class_distillation, CLASS_DISTILLATIONS)
        if self.class_distillation == "all-classes" and setting != "class":
            raise ConfigError("class_distillation='all-classes' is for the class-incremental setting (one growing "
                              f"head); this LwF runs in the {setting!r} setting: leave it at 'old-classes'")
        self.old_model: ContinualModel | None = None  # kept only when inputs are augmented
        self.recorded: torch.Tensor | None = None  # Y_o for the current task's training inputs
        self.old_targets: torch.Tensor | None = None  # their soft targets softmax(Y_o / T), made once with Y_o
        self.per_head = False  # whether training_data gives `head_targets` (task setting, heads of one size)
        self.head_temperatures: torch.Tensor | None = None  # (heads, 1): T for each old head, 1 for the new one

    def warmup_epochs(self, config) -> int:
        return config.epochs if self.warmup else 0

    def before_task(self, task):
        self.old_model, self.recorded, self.old_targets = None, None, None
        if self.offsets:  # the model is still the old one (theta_s, theta_o): the new head comes below
            if self.augmented_inputs:  # Y_o must follow the augmented batches: keep a frozen copy
                self.old_model = copy.deepcopy(self.model).eval().requires_grad_(False)
            else:
                self.recorded = self.seen(self._responses(self.model.eval(), task.x_train))  # Y_o, once
        super().before_task(task)
        self.model.head.requires_grad_(True)  # LwF trains the old heads theta_o too
        if self.recorded is not None:
            self.old_targets = self.soft_targets(self.recorded)
        # task setting, heads of one size: L_new and L_old are one cross-entropy over (sample, head) rows
        self.per_head = (self.recorded is not None and self.setting == "task"
                         and all(size == self.sizes[0] for size in self.sizes))
        if self.per_head:
            temperatures = [self.temperature] * (len(self.sizes) - 1) + [1.0]  # old heads at T, the new at 1
            self.head_temperatures = torch.tensor(temperatures, device=self._device).view(-1, 1)

    @staticmethod
    @torch.no_grad()
    def _responses(model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        device = next(model.parameters()).device
        return torch.cat([model(batch) for batch in in_order(x, batch_size, device)])

    def training_data(self, task):
        data = super().training_data(task)
        if self.old_targets is None:
            return data
        return (*data, self.head_targets(data[1]) if self.per_head else self.old_targets)

    def after_task(self, task):
        super().after_task(task)
        self.old_model, self.recorded, self.old_targets = None, None, None  # nothing old outlives its task
        self.per_head = False

    def _n_old_tasks(self) -> int:
        """The number of old tasks, once there is one to distil from."""
        if len(self.sizes) < 2:
            raise ConfigError("LwF has no previous task to distil from: L_old exists from the second task on")
        return len(self.sizes) - 1

    def loss_weights(self) -> tuple[float, float]:
        """(weight of L_new, weight of L_old) for the current task, as the `weighting` option says."""
        if self.weighting == "li-hoiem":
            return 1.0, self.lamb
        t = len(self.sizes)  # tasks so far, this one included
        n_old_heads = t - 1 if self.setting == "task" else 1
        return 1 / t, (1 - 1 / t) * self.temperature**2 / n_old_heads

    def soft_targets(self, recorded: torch.Tensor) -> torch.Tensor:
        """softmax(Y_o / T) for the distillation, laid out like the logits it is compared with: per old head in the
        task setting; over the old classes in the class setting (followed by a 0 for each new class with
        `class_distillation="all-classes"`); over the shared head in the domain setting."""
        n_old = self._n_old_tasks()
        if self.setting == "task":
            return torch.cat([soft_targets(recorded[:, self.task_slice(t)], self.temperature) for t in range(n_old)], 1)
        targets = soft_targets(recorded, self.temperature)
        if self.class_distillation == "all-classes":
            targets = F.pad(targets, (0, sum(self.sizes) - targets.shape[1]))
        return targets

    def old_task_loss(self, logits: torch.Tensor, old_targets: torch.Tensor) -> torch.Tensor:
        """L_old: the distillation loss (at temperature T, no T^2) of the old outputs towards `old_targets`, the
        soft targets `soft_targets(Y_o)`: summed over the old heads in the task setting."""
        n_old = self._n_old_tasks()
        if self.setting == "task":
            return sum(soft_cross_entropy(logits[:, self.task_slice(t)], old_targets[:, self.task_slice(t)],
                                          self.temperature, False) for t in range(n_old))
        return soft_cross_entropy(logits[:, :old_targets.shape[1]], old_targets, self.temperature, False)

    def head_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """Task setting, heads of one size: the target distribution of each (sample, head) row times its weight,
        shape (samples, heads, size): w_old * softmax(Y_o / T) for each old head, w_new * one-hot(label) for the
        new head. w_new L_new + w_old L_old is then one soft cross-entropy over these rows (`per_head_loss`)."""
        n_old, size = self._n_old_tasks(), self.sizes[-1]
        w_new, w_old = self.loss_weights()
        old = self.old_targets.reshape(-1, n_old, size) * w_old
        new = F.one_hot(targets.to(old.device) - self.offsets[-1], size).unsqueeze(1).to(old.dtype) * w_new
        return torch.cat([old, new], 1)

    def per_head_loss(self, logits: torch.Tensor, head_targets: torch.Tensor) -> torch.Tensor:
        """sum over heads of the batch mean of -sum_i p_i log softmax(z / T_h)_i, each head at its temperature
        (T for the old heads, 1 for the new one): one softmax for the whole batch, not one per loss term."""
        n_heads, size = head_targets.shape[1:]
        rows = logits.view(len(logits), n_heads, size) / self.head_temperatures
        return n_heads * soft_cross_entropy(rows, head_targets, temperature=1.0, t2_scaling=False)

    def loss(self, x, targets, task_ids, old_targets=None):
        """`old_targets`: the batch's rows of what `training_data` added: `head_targets` when `self.per_head`
        (the new task's labels included), else the soft targets `soft_targets(Y_o)`. LwF trains on the new
        task's data alone, so every sample's own head is the new one."""
        logits = self.model(x)
        if self.old_model is not None:  # augmented inputs: the old model sees this very batch
            old_targets = self.soft_targets(self._responses(self.old_model, x)[:, :self.n_outputs(len(self.sizes) - 1)])
        if old_targets is None:
            return self.classification_loss(logits, targets, task_ids)
        if self.per_head:
            return self.per_head_loss(logits, old_targets)
        w_new, w_old = self.loss_weights()
        return w_new * self.classification_loss(logits, targets, task_ids) + w_old * self.old_task_loss(logits,
                                                                                                         old_targets)
