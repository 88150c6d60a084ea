"""BiC: Bias Correction (Wu, Chen, Wang, Ye, Liu, Guo & Fu, "Large Scale Incremental Learning", CVPR 2019).

Each step, on the rehearsal base (`Replay`), with n old and m new classes:
    split:   the old classes' exemplars and the new classes' samples into training and validation sets; the
             validation set is balanced, v samples per class for old and new classes alike, and its old part is
             taken out of the exemplar budget ("9:1 train:val for old exemplars": v = floor(0.1 * budget per class)).
    stage 1: train backbone and head on the training set with
                 L = lambda * L_d + (1 - lambda) * L_c,   lambda = n / (n + m),
             L_c the cross-entropy over all n + m classes, L_d = - sum_{k<=n} pi_hat_k(T) log pi_k(T) the
             distillation at T = 2 from the old model, pi = softmax over the n old logits at T.
    stage 2: with backbone and head frozen, one linear model on the m newest classes' logits only,
                 q_k = o_k (k <= n),  q_k = alpha * o_k + beta (k > n),
             trained with the cross-entropy of softmax(q) on the validation set.
    predict: argmax of q (the current step's alpha, beta on its new classes; earlier steps' pairs are not applied:
             stage 1 of a step retrains every logit).

Where the paper is silent we follow the official code (wuyuebupt/LargeScaleIncrementalLearning, resnet.py and
imagenet_main.py):
- the old model's logits for the previous step's new classes are bias-corrected with that step's (alpha, beta)
  before distillation (resnet.py, "apply bias corrected classifier for distilling loss");
- L_d has no T^2 factor; L_c of stage 1 is taken over the raw logits (no bias layer in stage 1);
- stage 2: alpha = 1, beta = 0 at start, loss CE + 0.1 * beta^2 / 2 (an L2 penalty on beta only), SGD momentum
  0.9, lr 0.1 divided by 10 at epochs 60, 120, 160 and 180 of 200, batches of 256 (the official batch size);
- exemplars by herding on the raw (unnormalised) features; per old class: ceil(budget / n) - floor(0.1 * budget /
  n) for training and floor(0.1 * budget / n) for validation (ours: quota - v and v, quota = budget // n).
  The official code holds the largest v (the first step's) out of every class's training data; ours holds out
  of a new class the v its step uses.
Stage 2 runs on logits cached once per step: it never runs the backbone again.

Ablation (Table 6 of the paper): `distill=False, bias_correction=False` is baseline-1 (classification loss with
exemplars), `bias_correction=False` baseline-2 (+ distillation), the defaults BiC (+ bias removal), and
`retrain_head=True` the upper bound (+ the last layer retrained on all data of old and new classes: every task's
training data is kept for it, as by joint training, and no bias correction is needed on balanced data).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_float
from ..distillation import check_temperature, soft_cross_entropy, soft_targets
from ..errors import ConfigError
from ..inputs import concat, in_order, restored, stored
from ..memory import ExemplarMemory
from .replay import Replay

BIAS_EPOCHS, BIAS_LR, BIAS_MILESTONES, BIAS_BATCH, BETA_L2 = 200, 0.1, (60, 120, 160, 180), 256, 0.1


class BiasLayer(nn.Module):
    """q = o on the old outputs, alpha * o + beta on outputs `start` onwards (the newest classes): one pair."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))
        self.beta = nn.Parameter(torch.zeros(()))
        self.start = None  # first output corrected; None: nothing corrected yet (the first step)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if self.start is None:
            return logits
        return torch.cat([logits[:, :self.start], self.alpha * logits[:, self.start:] + self.beta], 1)


class BiC(Replay):
    name = "bic"
    distills = True
    settings = ("class",)

    def __init__(self, model, setting: str = "class", memory: int | None = None, memory_per_class: int | None = None,
                 selection: str = "herding", temperature: float = 2.0, validation_share: float = 0.1,
                 distill: bool = True, bias_correction: bool = True, retrain_head: bool = False,
                 head_epochs: int = 30, head_lr: float = 0.001, classifier: str = "softmax"):
        """memory: the total budget, validation included ("2,000 exemplars" on CIFAR-100); temperature: T = 2;
        validation_share: the share of each old class's exemplars held out for stage 2 ("9:1", i.e. 0.1);
        distill, bias_correction, retrain_head: the ablation switches (module docstring); head_epochs, head_lr:
        the upper bound's retraining of the last layer on cached features (Adam; the paper gives no schedule)."""
        if setting != "class":
            raise ConfigError(f"bic is a class-incremental method (one growing head, no task id); got the "
                              f"{setting!r} setting: use --setting class")
        super().__init__(model, setting, memory, memory_per_class, selection, "union", classifier)
        check_temperature(temperature)
        self.temperature = temperature
        self.validation_share = check_float("validation_share", validation_share, 0.0, 1.0)
        self.distill, self.bias_correction, self.retrain_head = bool(distill), bool(bias_correction), bool(retrain_head)
        if retrain_head and bias_correction:
            raise ConfigError("retrain_head (the upper bound) retrains the last layer on all data, which is balanced: "
                              "use it with bias_correction=False")
        self.distills = self.distill
        self.head_epochs, self.head_lr = int(head_epochs), float(head_lr)
        self.validation = ExemplarMemory(memory, memory_per_class, "random", seed=self.memory.seed + 1)
        self.bias = BiasLayer().to(self._device)
        self.old_bias: BiasLayer | None = None
        self.held_out = None  # (x, targets) of the new classes' validation samples, this step
        self.kept = None  # the mask of this step's new samples left for training
        self.all_data = []  # retrain_head only: every task's (x, targets)

    # ------------------------------------------------------------------ the budget's split
    def validation_per_class(self, n_classes: int) -> int:
        """v = floor(share * quota): the validation samples per class once `n_classes` classes are stored."""
        return math.floor(self.validation_share * self.memory.quota(n_classes)) if self.bias_correction else 0

    def check(self, scenario):
        super().check(scenario)
        if not self.bias_correction:
            return
        seen = 0
        for task in scenario.tasks:
            held_out = self.validation_per_class(seen if seen else task.n_classes)  # as hold_out_validation draws
            counts = torch.unique(torch.as_tensor(task.y_train), return_counts=True)[1]  # none: a task learned before
            fewest = int(counts.min()) if len(counts) else math.inf
            if fewest <= held_out:
                raise ConfigError(f"bic: a class of task {task.id + 1} has {fewest} training samples; holding out "
                                  f"{held_out} for validation leaves none to train on: lower validation_share or "
                                  "the memory size")
            seen += task.n_classes
            v = self.validation_per_class(seen)
            if v < 1 or self.memory.quota(seen) - v < 1:
                raise ConfigError(f"bic: after {seen} classes each keeps {self.memory.quota(seen)} exemplars, of which "
                                  f"validation_share={self.validation_share} gives {v} to validation: every class "
                                  "needs at least one validation and one training exemplar; raise --memory or change "
                                  "validation_share")

    # ------------------------------------------------------------------ stage 1
    def before_task(self, task):
        self.old_bias = None
        if self.offsets and self.bias.start is not None:  # the old model's bias-corrected newest classes
            self.old_bias = BiasLayer().to(self._device)
            self.old_bias.load_state_dict(self.bias.state_dict())
            self.old_bias.start = self.bias.start
        super().before_task(task)
        self.bias.start = None  # stage 1 trains on the raw logits; stage 2 sets the new pair
        self.held_out, self.kept = self.hold_out_validation(task)

    def hold_out_validation(self, task):
        """The new classes' v validation samples per class, drawn once per step: ((x, targets), the mask of the
        samples kept for training), or (None, None) without bias correction."""
        x, targets, _ = super().new_task_data(task)
        n_old = len(self.memory.classes)
        v = self.validation_per_class(n_old if n_old else task.n_classes)
        if v == 0:
            return None, None
        generator = torch.Generator().manual_seed(self.memory.seed + 7919 * (task.id + 1))
        keep = torch.ones(len(x), dtype=torch.bool)
        for c in targets.unique().tolist():
            idx = torch.nonzero(targets == c).flatten()
            if len(idx) <= v:
                raise ConfigError(f"bic: class {c} of task {task.id + 1} has {len(idx)} training samples; "
                                  f"holding out {v} for validation leaves none to train on: lower validation_share "
                                  "or the memory size")
            keep[idx[torch.randperm(len(idx), generator=generator)[:v]]] = False
        return (x[~keep], targets[~keep]), keep

    def new_task_data(self, task):
        """The new task's data without the samples held out for validation."""
        x, targets, task_ids = super().new_task_data(task)
        if self.kept is None:
            return x, targets, task_ids
        return x[self.kept], targets[self.kept], task_ids[self.kept]

    @torch.no_grad()
    def old_logits(self, x):
        logits = super().old_logits(x)
        return self.old_bias(logits) if self.old_bias is not None else logits

    def distillation_loss(self, logits, targets, task_ids, old_logits):
        """lambda * L_d + (1 - lambda) * L_c, lambda = n / (n + m)."""
        logits = self.seen(logits)
        n_old = old_logits.shape[1]
        lam = n_old / logits.shape[1]
        distillation = soft_cross_entropy(logits[:, :n_old], soft_targets(old_logits, self.temperature),
                                          self.temperature, t2_scaling=False)
        return lam * distillation + (1 - lam) * F.cross_entropy(logits, targets)

    # ------------------------------------------------------------------ stage 2, the upper bound, the memory
    def after_task(self, task):
        if self.retrain_head:
            x, targets, _ = Replay.new_task_data(self, task)
            self.all_data.append((x, targets))
            self.retrain_last_layer()
        elif self.bias_correction and task.id > 0:
            self.correct_bias(task)
        super().after_task(task)  # the training exemplars (herding), class means for NCM
        if self.bias_correction:
            self.update_validation(task)

    def update_memory(self, task):
        """Training exemplars: quota - v per class (the rest of the quota is the validation memory's)."""
        x, targets, _ = self.new_task_data(task)
        n = len(self.memory.classes) + task.n_classes
        m = self.memory.quota(n) - self.validation_per_class(n)
        self.memory.update(x, targets, task.id, features=self.features, m=m)

    def validation_set(self):
        """The balanced validation set of this step: the old classes' stored samples and the new ones held out."""
        old_x, old_targets, _ = self.validation.data()
        new_x, new_targets = self.held_out
        return concat([old_x, new_x]), torch.cat([old_targets, new_targets])

    def correct_bias(self, task):
        """Stage 2: (alpha, beta) on the newest classes' cached logits, CE on the validation set."""
        x, targets = self.validation_set()
        self.model.eval()
        with torch.no_grad():  # the only pass through the network in stage 2
            logits = torch.cat([self.seen(self.model(batch)) for batch in in_order(x, 1024, self._device)])
        targets = targets.to(self._device)
        self.bias = BiasLayer().to(self._device)
        self.bias.start = self.offsets[-1]
        self.fit_bias(logits, targets, torch.Generator().manual_seed(self.memory.seed + task.id))

    def fit_bias(self, logits: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> None:
        """SGD with momentum on (alpha, beta) with their gradients in closed form: two parameters do not need
        autograd, whose per-step overhead was most of stage 2's time. With p = softmax(q), y one-hot, and the
        corrected outputs k >= start of a batch of B: dL/dalpha = sum_k (p_k - y_k) o_k / B, dL/dbeta =
        sum_k (p_k - y_k) / B + 0.1 beta. The same steps as torch.optim.SGD(momentum=0.9) on the autograd loss.
        The old outputs never change, so their log-sum-exp is computed once; a validation set within one batch
        is not shuffled (a full-batch gradient does not depend on the order)."""
        start, lr = self.bias.start, BIAS_LR
        alpha, beta = self.bias.alpha.item(), self.bias.beta.item()
        momentum_alpha = momentum_beta = 0.0
        # float64 numpy on a few hundred rows: torch's per-operation overhead would be most of the time here
        logits = logits.detach().double().cpu()
        old_lse = torch.logsumexp(logits[:, :start], 1).numpy()
        new = logits[:, start:].numpy()
        y_new = F.one_hot(targets.cpu(), logits.shape[1])[:, start:].double().numpy()
        for epoch in range(BIAS_EPOCHS):
            if epoch in BIAS_MILESTONES:
                lr *= 0.1
            if len(new) <= BIAS_BATCH:
                batches = [slice(None)]
            else:
                order = torch.randperm(len(new), generator=generator).numpy()
                batches = [order[first:first + BIAS_BATCH] for first in range(0, len(new), BIAS_BATCH)]
            for idx in batches:
                o, o_lse = new[idx], old_lse[idx]
                q = alpha * o + beta
                top = np.maximum(q.max(1), o_lse)  # log-sum-exp over old and new outputs, shifted for stability
                lse = top + np.log(np.exp(o_lse - top) + np.exp(q - top[:, None]).sum(1))
                error = np.exp(q - lse[:, None]) - y_new[idx]
                g_alpha = float((error * o).sum()) / len(o)
                g_beta = float(error.sum()) / len(o) + BETA_L2 * beta
                momentum_alpha = 0.9 * momentum_alpha + g_alpha  # torch.optim.SGD's first step: buffer = gradient
                momentum_beta = 0.9 * momentum_beta + g_beta
                alpha, beta = alpha - lr * momentum_alpha, beta - lr * momentum_beta
        with torch.no_grad():
            self.bias.alpha.fill_(alpha)
            self.bias.beta.fill_(beta)

    def update_validation(self, task):
        """Keep v samples per class (old classes shrink to the new v, new classes bring their held-out ones)."""
        n_classes = len(self.memory.classes)
        v = self.validation_per_class(n_classes)
        x, targets = self.held_out
        if len(x) == 0 or any((targets == c).sum() < v for c in targets.unique()):  # the first step holds out v of its own
            raise ConfigError("bic: not enough held-out samples for the validation memory")
        self.validation.update(x, targets, task.id, m=v)
        self.held_out = None

    def retrain_last_layer(self):
        """The upper bound: the head retrained on cached features of every seen class's training data."""
        x = concat([x for x, _ in self.all_data])
        targets = torch.cat([t for _, t in self.all_data]).to(self._device)
        features = self.features(x)
        head = self.model.head
        optimizer = torch.optim.Adam(head.parameters(), lr=self.head_lr)
        generator = torch.Generator().manual_seed(self.memory.seed + len(self.all_data))
        for _ in range(self.head_epochs):
            order = torch.randperm(len(features), generator=generator).to(features.device)
            for start in range(0, len(features), 128):
                idx = order[start:start + 128]
                loss = F.cross_entropy(self.seen(head(features[idx])), targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    # ------------------------------------------------------------------ prediction and checkpoints
    @torch.no_grad()
    def predict(self, x):
        if self.classifier == "ncm":
            return super().predict(x)
        self.model.eval()
        return self.bias(self.seen(self.model(x)))

    def describe(self):
        return {**super().describe(), "validation_per_class": self.validation_per_class(len(self.memory.classes)),
                "alpha": self.bias.alpha.item(), "beta": self.bias.beta.item(), "corrected_from": self.bias.start}

    def state_dict(self):
        return {**super().state_dict(), "validation": self.validation.state_dict(),
                "bias": {k: v.detach().clone() for k, v in self.bias.state_dict().items()},
                "bias_start": self.bias.start, "all_data": [(stored(x), t) for x, t in self.all_data]}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.validation.load_state_dict(state["validation"])
        self.bias.load_state_dict(state["bias"])
        self.bias.to(self._device)
        self.bias.start = state["bias_start"]
        self.all_data = [(restored(x), t) for x, t in state["all_data"]]
