"""FACT: forward-compatible training for few-shot class-incremental learning (Zhou, Wang, Ye, Ma, Pu & Zhan, CVPR
2022, "Forward Compatible Few-Shot Class-Incremental Learning"; official code zhoudw-zdw/CVPR22-Fact @ 825933b,
`models/fact/Network.py`, `helper.py`, `fscil_trainer.py`).

The head is allocated to every class of the sequence before the base session (C = B base + V virtual rows, bias-free,
orthogonal initialisation); the V rows beyond the base classes are *virtual prototypes* P_v that reserve embedding
space for the classes to come. Logits are cosines times s = 16: f(x)_c = s * cos(phi(x), w_c).

Base session (the only one that trains), for a batch of (x_i, y_i), phi = g2(g1(x)) split at the mixup layer:

    L1 = CE(f(x)[:, :B], y)                                                   (base classes only)
    L2 = CE(Mask(f(x), y), v*),   v* = argmax over the virtual classes allowed for y of f(x)
         Mask(., y): the logit of y set to -inf; each virtual class is allowed for `mask_classes` = 3 base classes
         drawn at random once (the official `masknum`); the virtual rows are read through a frozen view in L1/L2
         (no gradient to them there), as the official `dummy_orthogonal_classifier`
    z  = g2(lam * g1(x_i) + (1 - lam) * g1(x_perm(i))),  lam ~ Beta(alpha, alpha) once per batch, kept only the pairs
         with y_i != y_perm(i) (manifold mixup of different classes: instances of a "virtual class")
    L3 = CE(f(z), v'),            v' = argmax over all virtual classes of f(z)
    L4 = CE(Mask(f(z), v'), b'),  b' = argmax over the base classes of f(z)          (the bimodal target)
    L  = L1 + balance * (L2 + L3 + L4)          from epoch `loss_iter` on; L1 alone before

After the base session, the base rows w_c are replaced by the class means of the base training features (the
official `replace_base_fc`), the virtual prototypes P (normalised) are kept aside, and the backbone is frozen.
Session t: nothing is trained; each new class's row (one of the virtual rows) becomes the mean of its shots'
features. Prediction over the C_t classes seen, from session 1 on (the official `test_intergrate`):

    a = top-k of cos(phi(x), P_v) over v (the others 0), k = 40;   M = P @ N(W_t^T)     (V x C_t)
    p(y | x) = eta * softmax(a @ M) + (1 - eta) * softmax(s * cos(phi(x), W_t)),   eta = 0.1

with N normalising each feature dimension over the classes (the official `F.normalize(W.T, dim=-1)`;
`projection="class"` normalises each class's row instead, a cosine between prototypes). The base session is tested
with the cosine classifier alone, as the official code does. `predict` returns log p, whose argmax and softmax are
p's.

The paper's text could not be fetched on this machine: the terms are named as the paper's Figure 2 names them (L1 the
cross-entropy, L2 the assignment to a virtual class, then the forecast instances' symmetric reserving), and every
formula and default is the official code's, as quoted below.

Where the official code differs, and what is done here:
- the 0/1 mask bug: the official code multiplies the masked logits by the 0/1 mask before the argmax, so a virtual
  class not allowed for y (0) beats every allowed one whose cosine is negative; here the classes not allowed are
  set to -inf, so v* is always an allowed one (the paper's intent);
- `train.py`'s defaults (balance 1, loss_iter 200, alpha 2, 100 epochs) differ from the README's commands that
  gave the paper's numbers; the defaults here are the README's CIFAR-100 command's (balance 0.001, loss_iter 0,
  alpha 0.5), which the tao2020-fscil-cifar100 row uses; miniImageNet's and CUB-200's commands use balance 0.01;
- the official base session keeps the epoch of best *test* accuracy; here the last epoch is kept (no selection on
  test data);
- a batch whose shuffled pairs are all of one class has no mixed instance: L3 = L4 = 0 here (the official code
  takes a cross-entropy over an empty batch, NaN);
- the official mixup runs the first layers twice (once in `encode`, once in `pre_encode`); here once, g1(x) shared
  by L1/L2 and the mix: the same losses, the lower layers' batch-norm running statistics updated once per batch
  rather than twice;
- the total class count comes from the scenario (`check`), or from `total_classes` for a learner fed task by task.

The mixup layer (a backbone contract, `split_backbone`): a backbone whose layers are `blocks`, an nn.Sequential
(the library's MLP and CIFAR ResNets), is split after its first `mix_at` blocks; None takes the paper's place: after
the CIFAR ResNet's second stage (the official `layer2`), after the MLP's first half of hidden layers. `mix_at=0`
mixes the inputs (input mixup), with any backbone.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_choice, check_float, check_int, check_weight
from ..errors import ConfigError
from ..models import MLP, CifarResNet
from .base import Method

PROJECTIONS = ("official", "class")


def split_backbone(backbone: nn.Module, mix_at: int | None):
    """(g1, g2, mix_at) with g2(g1(x)) == backbone(x): the backbone split after its first `mix_at` blocks. A
    backbone of `blocks` (an nn.Sequential; the MLP flattens its input first) splits after any of them (after the
    last: the features are mixed); None: the paper's place (after a CIFAR ResNet's stem and two stages,
    `blocks[:3]`; after the first half of an MLP's hidden layers, at least one); 0: input mixup, any backbone."""
    if mix_at == 0:
        return (lambda x: x), backbone, 0
    blocks = getattr(backbone, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or not len(blocks):
        raise ConfigError(f"fact cannot split a {type(backbone).__name__} for its manifold mixup (it needs the "
                          "layers as an nn.Sequential `blocks`): give mix_at=0 (input mixup)")
    if mix_at is None:
        mix_at = 3 if isinstance(backbone, CifarResNet) else max(1, len(blocks) // 2)
    if not 0 < mix_at <= len(blocks):
        raise ConfigError(f"mix_at must be 0 (the inputs) to {len(blocks)} (the features, after every block of this "
                          f"{type(backbone).__name__}), got {mix_at}")
    lower, upper = blocks[:mix_at], blocks[mix_at:]
    if isinstance(backbone, MLP):
        return (lambda x: lower(x.flatten(1))), upper, mix_at
    return lower, upper, mix_at


def cosine_logits(features: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    return scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T


class FACT(Method):
    name = "fact"
    settings = ("class",)

    def __init__(self, model, setting: str = "class", balance: float = 0.001, alpha: float = 0.5,
                 loss_iter: int = 0, mask_classes: int = 3, scale: float = 16.0, eta: float = 0.1, top_k: int = 40,
                 projection: str = "official", mix_at: int | None = None, total_classes: int | None = None):
        """balance: gamma, the weight of L2 + L3 + L4 (the README's CIFAR-100 command, `-balance 0.001`;
        miniImageNet's and CUB-200's: 0.01; train.py's default 1).
        alpha: the Beta(alpha, alpha) of the mixup's lambda (README CIFAR-100 and miniImageNet `-alpha 0.5`;
        train.py's default 2).
        loss_iter: the epoch from which the virtual losses join L1 (README CIFAR-100 and CUB-200 `-loss_iter 0`;
        miniImageNet 150; train.py 200).
        mask_classes: the base classes each virtual class is allowed for in L2 (the official `masknum = 3`).
        scale: s, the logits are s * cosine (`-temperature 16`).
        eta: the weight of the virtual prototypes' prediction in sessions (`-eta 0.1`).
        top_k: the virtual similarities kept in that prediction (the official 40; all of them where fewer).
        projection: "official": the prototypes' matrix normalised per feature dimension over the classes, as the
        official `test_intergrate`; "class": each class's row normalised (a cosine between prototypes).
        mix_at: the backbone's blocks before the manifold mixup (None: the paper's place, after the second stage
        of a CIFAR ResNet, after half an MLP's hidden layers; 0: input mixup, any backbone).
        total_classes: the classes of the whole sequence, base + every session's (None: the scenario's, given to
        `check`); the head gets a row for each from the start."""
        super().__init__(model, setting)
        self.balance = check_weight("balance (FACT's gamma)", balance)
        self.alpha = check_float("alpha (the mixup's Beta(alpha, alpha))", alpha)
        self.loss_iter = check_int("loss_iter", loss_iter, low=0)
        self.mask_classes = check_int("mask_classes", mask_classes)
        self.scale = check_float("scale", scale)
        self.eta = check_float("eta", eta, low=0.0, high=1.0, low_open=False)
        self.top_k = check_int("top_k", top_k)
        self.projection = check_choice("FACT projection", projection, PROJECTIONS)
        if mix_at is not None:
            check_int("mix_at", mix_at, low=0)
        self.lower, self.upper, self.mix_at = split_backbone(model.backbone, mix_at)
        self.total_classes = None if total_classes is None else check_int("total_classes", total_classes, low=2)
        self.scenario_classes = 0  # the classes of the largest scenario `check` was shown
        self.mask: torch.Tensor | None = None  # (B, V) bool: the virtual classes each base class may be assigned to
        self.virtual: torch.Tensor | None = None  # (V, features): the normalised virtual prototypes, after the base
        self.epoch = 0

    # ------------------------------------------------------------------ the sequence's classes, the head
    def check(self, scenario):
        tasks = list(scenario.tasks)
        n = sum(task.n_classes for task in tasks)
        self.scenario_classes = max(self.scenario_classes, n)
        if self.total_classes is not None and self.total_classes < n:
            raise ConfigError(f"total_classes={self.total_classes}, but the scenario has {n} classes: give at least "
                              f"{n}, or leave it out to take the scenario's")
        if tasks and self.mask_classes > tasks[0].n_classes:
            raise ConfigError(f"mask_classes={self.mask_classes}, but the base session has {tasks[0].n_classes} "
                              "classes: each virtual class is allowed for at most that many")

    @property
    def n_base(self) -> int:
        return self.sizes[0]

    def before_task(self, task):
        if task.id == 0:
            total = self.total_classes or self.scenario_classes
            if total <= task.n_classes:
                raise ConfigError(f"fact reserves a virtual class for each class to come, so it needs the total class "
                                  f"count up front: {total or 'none'} known, {task.n_classes} in the base session; "
                                  "run a scenario, or give total_classes")
            if self.model.head.out_features:
                raise ConfigError("fact allocates its own head (the base rows, then a virtual row for each class to "
                                  "come): leave preallocate_head off")
            self._register_task(task)
            self.output_mask = self.output_mask.to(self._device)
            head = self.model.head
            head.add(task.n_classes)
            head.add(total - task.n_classes)  # the virtual rows, which the new classes' rows will replace
            weight = torch.empty(total, head.in_features)
            nn.init.orthogonal_(weight)  # the official initialisation of the whole head
            with torch.no_grad():
                for part, rows in head.part_columns():
                    part.weight.copy_(weight[rows])
            # each virtual class allowed for `mask_classes` base classes drawn at random (the official mask)
            n_virtual = total - task.n_classes
            picks = torch.rand(n_virtual, task.n_classes).argsort(1)[:, :self.mask_classes]
            mask = torch.zeros(n_virtual, task.n_classes, dtype=torch.bool).scatter_(1, picks, True)
            self.mask = mask.T.contiguous().to(self._device)
            return
        if self.offsets[-1] + self.sizes[-1] + task.n_classes > self.model.head.out_features:
            raise ConfigError(f"session {task.id + 1} brings classes beyond the {self.model.head.out_features} "
                              "the head was allocated: give total_classes for the whole sequence")
        super().before_task(task)
        self.model.requires_grad_(False)  # the sessions train nothing

    def head_weight(self) -> torch.Tensor:
        """W: every row of the head (base classes, then the virtual or the new classes' rows)."""
        return torch.cat([part.weight for part in self.model.head.parts])

    def before_epoch(self, epoch, n_epochs):
        self.epoch = epoch

    # ------------------------------------------------------------------ the base session's losses
    def virtual_target(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """v*: the virtual class of highest logit among those the mask allows for each sample's class."""
        virtual = logits[:, self.n_base:].masked_fill(~self.mask[targets], float("-inf"))
        return virtual.argmax(1) + self.n_base

    @staticmethod
    def masked(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Mask(f, c): the logit of each sample's class c set to -inf."""
        return logits.scatter(1, classes[:, None], float("-inf"))

    def mixup_losses(self, mixed_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L3, L4) of the mixed instances' logits: towards the best virtual class, then (it masked) the best base
        class."""
        if len(mixed_logits) == 0:
            zero = mixed_logits.sum()
            return zero, zero
        best_virtual = mixed_logits[:, self.n_base:].argmax(1) + self.n_base
        best_base = mixed_logits[:, :self.n_base].argmax(1)
        return (F.cross_entropy(mixed_logits, best_virtual),
                F.cross_entropy(self.masked(mixed_logits, best_virtual), best_base))

    def losses(self, x, targets, lam: float, order: torch.Tensor) -> dict:
        """The base session's terms L1 .. L4 of one batch, for the mixup weight `lam` and pairing `order`."""
        hidden = self.lower(x)
        features = self.upper(hidden)
        weight = self.head_weight()
        frozen_view = torch.cat([weight[:self.n_base], weight[self.n_base:].detach()])
        logits = cosine_logits(features, frozen_view, self.scale)
        terms = {"L1": F.cross_entropy(logits[:, :self.n_base], targets)}
        terms["L2"] = F.cross_entropy(self.masked(logits, targets), self.virtual_target(logits, targets))
        pairs = targets != targets[order]
        mixed = lam * hidden + (1 - lam) * hidden[order]
        # the whole mixed batch through g2, then its pairs of different classes (as the official code: batch-norm
        # statistics of the whole batch)
        mixed_logits = cosine_logits(self.upper(mixed), weight, self.scale)[pairs]
        terms["L3"], terms["L4"] = self.mixup_losses(mixed_logits)
        return terms

    def loss(self, x, targets, task_ids):
        if len(self.sizes) > 1:
            raise ConfigError("fact trains the base session only")  # sessions freeze everything: never reached
        if self.epoch < self.loss_iter or self.balance == 0:
            features = self.model.features(x)
            return F.cross_entropy(cosine_logits(features, self.head_weight()[:self.n_base], self.scale), targets)
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample().item()
        order = torch.randperm(len(targets), device=targets.device)
        terms = self.losses(x, targets, lam, order)
        return terms["L1"] + self.balance * (terms["L2"] + terms["L3"] + terms["L4"])

    # ------------------------------------------------------------------ prototypes, prediction
    @torch.no_grad()
    def after_task(self, task):
        features = self.features(task.x_train)
        y = task.y_train.to(self._device)
        sums = torch.zeros(task.n_classes, features.shape[1], device=features.device).index_add_(0, y, features)
        means = sums / torch.bincount(y, minlength=task.n_classes).clamp_min(1)[:, None]
        if task.id == 0:
            self.virtual = F.normalize(self.head_weight()[self.n_base:], dim=1).clone()
        first = self.offsets[task.id]
        for part, rows in self.model.head.part_columns():  # the task's rows: class means (base) or shot means
            lo, hi = max(rows.start, first), min(rows.stop, first + task.n_classes)
            if lo < hi:
                part.weight[lo - rows.start:hi - rows.start] = means[lo - first:hi - first]
        self.model.requires_grad_(False)

    def virtual_logits(self, features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """a @ M: the top-k virtual similarities of each sample projected onto the classes' rows."""
        similarity = F.normalize(features, dim=1) @ self.virtual.T
        top, indices = similarity.topk(min(self.top_k, len(self.virtual)), dim=1)
        kept = torch.zeros_like(similarity).scatter_(1, indices, top)
        rows = F.normalize(weight.T, dim=1).T if self.projection == "official" else F.normalize(weight, dim=1)
        return kept @ (self.virtual @ rows.T)

    @torch.no_grad()
    def predict(self, x):
        self.model.eval()
        features = self.model.features(x)
        weight = self.head_weight()[:self.output_mask.shape[1]]
        cosine = cosine_logits(features, weight, self.scale)
        if len(self.sizes) < 2:  # the base session: the cosine classifier alone, as the official code tests it
            return cosine
        mixed = self.eta * F.softmax(self.virtual_logits(features, weight), 1) + (1 - self.eta) * F.softmax(cosine, 1)
        return mixed.log()

    def describe(self):
        return {"virtual_classes": None if self.virtual is None else len(self.virtual), "balance": self.balance,
                "alpha": self.alpha, "loss_iter": self.loss_iter, "mask_classes": self.mask_classes,
                "scale": self.scale, "eta": self.eta, "top_k": self.top_k, "projection": self.projection,
                "mix_at": self.mix_at}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        return {**super().state_dict(), "mask": self.mask, "virtual": self.virtual,
                "scenario_classes": self.scenario_classes}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.scenario_classes = max(self.scenario_classes, state["scenario_classes"])
        self.mask = None if state["mask"] is None else state["mask"].to(self._device)
        self.virtual = None if state["virtual"] is None else state["virtual"].to(self._device)
        if tasks:
            self.model.requires_grad_(False)
