"""The exemplar memory: a small, fixed store of old training samples that rehearsal methods train on again.

    memory = ExemplarMemory(budget=2000, selection="herding")      # iCaRL's rule: 2000 / classes seen, per class
    memory = ExemplarMemory(per_class=20)                          # a fixed number per class (the store grows)
    memory.update(x, targets, task_ids, features=model.backbone)   # after a task: shrink old classes, add new ones
    x, targets, task_ids = memory.data()

Classes are keyed by (task id, head output): a class of the domain setting, whose tasks share their outputs, is
one class per task, and the store serves every setting. Each
class keeps its exemplars in priority order, so shrinking a class is a truncation (iCaRL's ReduceExemplarSet):
herding's order is the order it picked them in, random selection's a seeded permutation. Samples are stored as
given, in the inputs' own dtype (uint8 stays uint8), and nothing else is kept: the memory is the budget.
"""

import torch

from .checks import check_choice
from .errors import ConfigError
from .inputs import concat, restored, stored

SELECTIONS = ("herding", "random")


def herding(features: torch.Tensor, m: int) -> torch.Tensor:
    """Indices of `m` rows chosen greedily so that the mean of the chosen rows stays closest to the mean of all
    (Welling 2009; Rebuffi et al. 2017, Algorithm 4): p_k = argmin_x || mu - (x + sum_{j<k} p_j) / k ||, each
    row chosen at most once. Vectorised: one distance computation over all rows per pick, no loop over rows."""
    n = len(features)
    if not 0 <= m <= n:
        raise ConfigError(f"herding: cannot choose {m} exemplars among {n} samples")
    mu = features.double().mean(0)
    # k^2 || mu - (f + total) / k ||^2 = ||f||^2 - 2k f.(mu - total / k) + a term the same for every row: one
    # matrix-vector product per pick (addmv, in the features' precision: the product is the cost, and float64
    # halves its speed). A picked row's squared norm becomes inf, so it is never picked again.
    squared_norms = (features.double() ** 2).sum(1).to(features.dtype)
    chosen = torch.empty(m, dtype=torch.long)
    total = torch.zeros_like(mu)  # sum of the features picked so far, in float64 over thousands of picks
    for k in range(1, m + 1):
        a = (mu - total / k).to(features.dtype)
        i = int(torch.addmv(squared_norms, features, a, alpha=-2 * k).argmin())
        chosen[k - 1] = i
        squared_norms[i] = float("inf")
        total += features[i].double()
    return chosen


class ExemplarMemory:
    """Exemplars of every class seen, within a budget.

    budget: a total number of samples shared evenly by every class seen so far (the quota per class, budget //
        classes, shrinks as classes arrive: iCaRL). per_class: a fixed number per class instead. One of the two.
    selection: "herding" (closest running mean to the class mean in feature space: iCaRL) or "random" (a seeded
        draw, as in naive rehearsal).
    """

    def __init__(self, budget: int | None = None, per_class: int | None = None, selection: str = "herding",
                 seed: int = 0):
        if (budget is None) == (per_class is None):
            raise ConfigError("an exemplar memory needs a size: give either a total budget (--memory N) or a number "
                              "per class (--memory-per-class M), not both")
        for name, value in (("memory", budget), ("memory_per_class", per_class)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive number of samples, got {value!r}")
        self.budget, self.per_class = budget, per_class
        self.selection = check_choice("exemplar selection", selection, SELECTIONS)
        self.seed = seed
        self.x: dict[tuple[int, int], torch.Tensor] = {}  # (task id, target) -> exemplars in priority order

    # ------------------------------------------------------------------ sizes
    def quota(self, n_classes: int) -> int:
        """Exemplars per class once `n_classes` classes are stored."""
        return self.per_class if self.per_class is not None else self.budget // max(n_classes, 1)

    def check_room(self, n_classes: int) -> None:
        """A budget must leave every class at least one exemplar."""
        if self.quota(n_classes) < 1:
            raise ConfigError(f"a memory of {self.budget} samples cannot hold one exemplar for each of {n_classes} "
                              f"classes: raise --memory to at least {n_classes}, or use --memory-per-class")

    @property
    def classes(self) -> list[tuple[int, int]]:
        return list(self.x)

    def __len__(self) -> int:
        return sum(len(v) for v in self.x.values())

    # ------------------------------------------------------------------ filling
    def reduce(self, m: int) -> None:
        """Keep the first `m` exemplars of every class (their priority order)."""
        self.x = {c: x[:m].clone() if m < len(x) else x for c, x in self.x.items()}  # a copy frees the rest

    @torch.no_grad()
    def select(self, x: torch.Tensor, m: int, features=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """`m` of the rows of `x` in priority order: by herding on `features(x)` or at random."""
        m = min(m, len(x))
        if self.selection == "random":
            return x[torch.randperm(len(x), generator=generator)[:m]]
        if features is None:
            raise ConfigError("herding needs a feature extractor: pass features=model.backbone")
        return x[herding(features(x), m)]

    def update(self, x: torch.Tensor, targets: torch.Tensor, task_id: int, features=None, m: int | None = None) -> None:
        """Add the classes of (x, targets), a task's training data, and shrink every class to the new quota (or to
        `m` per class, for a method that splits its quota). `features`: a function from a batch of inputs to
        feature vectors, for herding (the caller puts the model in evaluation mode)."""
        new = [(task_id, c) for c in sorted(set(targets.tolist())) if (task_id, c) not in self.x]
        n_classes = len(self.x) + len(new)
        self.check_room(n_classes)
        m = self.quota(n_classes) if m is None else m
        self.reduce(m)
        generator = torch.Generator().manual_seed(self.seed * 100003 + task_id)  # the same draw on a resume
        for key in new:
            self.x[key] = self.select(x[targets == key[1]], m, features, generator).clone()

    # ------------------------------------------------------------------ reading
    def data(self, classes=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs, targets, task ids) of the stored exemplars, class by class (of `classes`, default all)."""
        classes = self.classes if classes is None else classes
        if not classes:
            raise ConfigError("the exemplar memory is empty")
        x = concat([self.x[key] for key in classes])
        sizes = [len(self.x[key]) for key in classes]
        targets = torch.tensor([c for (_, c), n in zip(classes, sizes) for _ in range(n)], dtype=torch.long)
        task_ids = torch.tensor([t for (t, _), n in zip(classes, sizes) for _ in range(n)], dtype=torch.long)
        return x, targets, task_ids

    def describe(self) -> dict:
        """What results.json records about the memory."""
        return {"budget": self.budget, "per_class": self.per_class, "selection": self.selection,
                "stored": len(self), "classes": len(self.x), "quota_now": self.quota(len(self.x)) if self.x else None}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"x": {key: stored(x) for key, x in self.x.items()}, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.seed = {key: restored(x) for key, x in state["x"].items()}, state["seed"]
