"""TOPIC, the TOpology-Preserving knowledge InCrementer (Tao et al., "Few-Shot Class-Incremental Learning",
CVPR 2020): a neural gas in the network's feature space stands for what the base session learned, and the few-shot
sessions are trained to keep it. Its authors released no code for the method; this one follows the paper's text.

    Base session:  train the network with cross-entropy; then learn a neural gas (NG) on the L2-normalised features
                   of the base training data (lifelong.hebbian: Martinetz's rank-based update, competitive Hebbian
                   edges). Node j keeps a centroid m_j, a per-dimension variance Lambda_j, a label c_j and an anchor
                   sample z_j.
    Session t > 1: grow the NG with a node per new class; train on the shots with
                       L = CE + anchor_weight * AL + minmax_weight * MML,
                   AL  (stabilisation)  = mean_j mean_d (f_d(z_j) - m_jd)^2 / Lambda_jd   over the nodes of earlier
                                          sessions: the anchors' features stay at their recorded centroids;
                   MML (adaptation)     = min term  |f(x) - m_y|^2, each shot pulled to its class's new node,
                                        + max term  sum over the `neighbours` nearest nodes k of other labels of
                                          max(0, margin - |f(x) - m_k|)^2, pushed beyond the margin.
    Prediction:    the label of the nearest node.

What the paper leaves open is an option here, with its default and why:
    nodes=None       400, the node count of the official repository's scripts (anchor_num, every data set), or the
                     base session's number of samples where it has fewer (a node needs a sample to stand for);
    gas_epochs=5     passes of the NG over the base features, eps 0.5 -> 0.005 and lambda 10 -> 0.01 annealed over
                     all of them (Martinetz et al. 1993, the library's NeuralGas defaults);
    a node's label, anchor and variance: the majority label of the base samples nearest it, the sample of that
                     label nearest its centroid, and the variance of those samples' features (as the official
                     repository's anchor preparation does); a node no sample is nearest to is dropped, and a base
                     class left without a node gets one at its mean;
    new nodes:       one per new class, at the mean of its shots' features, its anchor the shot nearest that mean,
                     its variance the base nodes' mean variance (five shots cannot estimate one per dimension);
                     after the session its centroid is re-estimated as the mean of the shots' new features, and
                     joined to its nearest node by a competitive Hebbian edge;
    old nodes:       never moved after the session that made them (they are the anchor loss's targets);
    margin=0.5       the official repository's max-loss margin, on unit-length features;
    neighbours=5     the other-label nodes each shot is pushed from (the paper gives no number);
    anchor_weight=1, minmax_weight=1: not tuned (the paper's lambdas do not carry over to these normalised means).
"""

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_float, check_int, check_weight
from ..errors import ConfigError
from ..inputs import read
from ..hebbian.rules import annealed, neural_gas_step
from .base import Method

DEFAULT_NODES = 400  # anchor_num in the official repository's scripts


class TOPIC(Method):
    name = "topic"
    settings = ("class",)

    def __init__(self, model, setting: str = "class", nodes: int | None = None, gas_epochs: int = 5,
                 anchor_weight: float = 1.0, minmax_weight: float = 1.0, margin: float = 0.5, neighbours: int = 5,
                 eps_initial: float = 0.5, eps_final: float = 0.005, lambda_initial: float = 10.0,
                 lambda_final: float = 0.01):
        """nodes: the base session's neural-gas nodes (default 400, or its samples if fewer); gas_epochs: its passes over the base features; anchor_weight
        and minmax_weight: the weights of the anchor loss (stabilisation) and the min-max loss (adaptation); margin:
        the distance, on unit-length features, beyond which the max term stops pushing; neighbours: how many of the
        nearest other-label nodes it pushes from; eps_*, lambda_*: the gas's annealed step size and range."""
        super().__init__(model, setting)
        self.n_nodes = None if nodes is None else check_int("nodes", nodes)
        self.gas_epochs = check_int("gas_epochs", gas_epochs)
        self.anchor_weight = check_weight("anchor_weight", anchor_weight)
        self.minmax_weight = check_weight("minmax_weight", minmax_weight)
        self.margin = check_float("margin", margin)
        self.neighbours = check_int("neighbours", neighbours)
        self.eps = (check_float("eps_initial", eps_initial, high=1.0), check_float("eps_final", eps_final, high=1.0))
        self.lam = (check_float("lambda_initial", lambda_initial), check_float("lambda_final", lambda_final))
        # the gas: one row per node; labels are head outputs; ages[i, j] the age of edge i-j (inf: none)
        self.centroids = self.variances = self.labels = self.anchors = self.ages = None
        self.n_old = 0  # nodes made before the current session: the anchor loss's

    def check(self, scenario) -> None:
        n_base = len(scenario.tasks[0].y_train)  # 0 once learned: a learner keeps no task data
        if self.n_nodes is not None and 0 < n_base < self.n_nodes:
            raise ConfigError(f"topic: {self.n_nodes} nodes but the base session has {n_base} training samples; "
                              f"use --param nodes=N with N <= {n_base}")

    # ------------------------------------------------------------------ features in the gas's space
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.features(x), dim=1)

    def embed_all(self, x: torch.Tensor) -> torch.Tensor:
        """`embed` of many inputs, in evaluation mode and in batches."""
        return F.normalize(self.features(x), dim=1)

    # ------------------------------------------------------------------ a session
    def before_task(self, task):
        super().before_task(task)
        if task.id == 0:
            return
        self.n_old = len(self.centroids)
        shots = read(task.x_train).to(self._device)  # a few shots: in memory even when the data set is on disk
        f, targets = self.embed_all(shots), self.targets(task, task.y_train).to(self._device)
        means, nearest = self.class_means(f, targets, task)
        self.add_nodes(means, self.variances[:self.n_old].mean(0).expand_as(means), targets[nearest],
                       shots[nearest])

    def class_means(self, f, targets, task):
        """Each new class's mean feature, and the index of its shot nearest that mean (its anchor)."""
        classes = self.targets(task, torch.arange(task.n_classes)).to(f.device)
        means = torch.stack([f[targets == c].mean(0) for c in classes])
        distance = torch.cdist(f, means).masked_fill(targets[:, None] != classes[None], float("inf"))
        return means, distance.argmin(0)

    def add_nodes(self, centroids, variances, labels, anchors):
        n, k = len(self.centroids), len(centroids)
        self.centroids = torch.cat([self.centroids, centroids])
        self.variances = torch.cat([self.variances, variances])
        self.labels = torch.cat([self.labels, labels])
        self.anchors = torch.cat([self.anchors, anchors])
        ages = torch.full((n + k, n + k), float("inf"), device=self.ages.device)
        ages[:n, :n] = self.ages
        self.ages = ages

    def loss(self, x, targets, task_ids):
        if task_ids[0] == 0:  # the base session: cross-entropy alone
            return super().loss(x, targets, task_ids)
        anchors = self.anchors[:self.n_old]
        features = self.model.features(torch.cat([x, anchors]))  # one pass: batch norm sees both
        ce = self.classification_loss(self.model.head(features[:len(x)]), targets, task_ids)
        f, f_anchor = F.normalize(features[:len(x)], dim=1), F.normalize(features[len(x):], dim=1)
        anchor_loss = ((f_anchor - self.centroids[:self.n_old]).square() / self.variances[:self.n_old]).mean()
        return ce + self.anchor_weight * anchor_loss + self.minmax_weight * self.minmax_loss(f, targets)

    def minmax_loss(self, f, targets):
        """Pull each shot to its class's node; push it beyond `margin` from its nearest nodes of other labels."""
        distance = torch.cdist(f, self.centroids)
        own = self.labels[None] == targets[:, None]
        pull = distance.masked_fill(~own, float("inf")).min(1).values.square()
        k = min(self.neighbours, int((~own).sum(1).min()))
        nearest_other = distance.masked_fill(own, float("inf")).topk(k, dim=1, largest=False).values
        push = F.relu(self.margin - nearest_other).square().sum(1)
        return (pull + push).mean()

    @torch.no_grad()
    def after_task(self, task):
        x = task.x_train
        f, targets = self.embed_all(x), self.targets(task, task.y_train).to(self._device)
        if task.id == 0:
            self.grow_gas(f, targets, x)
            return
        means, _ = self.class_means(f, targets, task)
        self.centroids[self.n_old:] = means  # re-estimated with the session's final features
        for j in range(self.n_old, len(self.centroids)):  # a competitive Hebbian edge to its nearest node
            other = torch.cdist(self.centroids[j:j + 1], self.centroids[:j])[0].argmin()
            self.ages[j, other] = self.ages[other, j] = 0
        self.n_old = len(self.centroids)

    def grow_gas(self, f, targets, x):
        """The base session's gas: neural gas on the features, then each node's label, anchor and variance."""
        rng = np.random.RandomState(int(torch.randint(2**31, (1,))))  # from the run's seeded generator
        features = f.cpu().double().numpy()
        n_nodes = self.n_nodes or min(DEFAULT_NODES, len(features))
        units = features[rng.choice(len(features), n_nodes, replace=False)].copy()
        ages = np.full((n_nodes, n_nodes), np.inf)
        t_max = self.gas_epochs * len(features)
        for epoch in range(self.gas_epochs):
            for t, i in enumerate(rng.permutation(len(features)), start=epoch * len(features)):
                neural_gas_step(units, ages, features[i], annealed(*self.eps, t, t_max),
                                annealed(*self.lam, t, t_max), annealed(20.0, 200.0, t, t_max))
        units = torch.as_tensor(units, dtype=f.dtype, device=f.device)
        ages = torch.as_tensor(ages, dtype=f.dtype, device=f.device)
        nearest = torch.cdist(f, units).argmin(1)
        n_classes = int(targets.max()) + 1
        counts = torch.zeros(len(units), n_classes, device=f.device).index_put_(
            (nearest, targets), torch.ones_like(targets, dtype=f.dtype), accumulate=True)
        keep = counts.sum(1) > 0  # a node no sample is nearest to has no label
        labels = counts.argmax(1)
        rows, centroid_list, variance_list, label_list, anchor_list = [], [], [], [], []
        for j in torch.nonzero(keep).flatten().tolist():
            members = (nearest == j) & (targets == labels[j])
            rows.append(j)
            centroid_list.append(units[j])
            variance_list.append(f[members].var(0, unbiased=False) if members.sum() > 1 else None)
            label_list.append(labels[j])
            anchor_list.append(torch.nonzero(members).flatten()[(f[members] - units[j]).norm(dim=1).argmin()])
        for c in sorted(set(range(n_classes)) - {int(label) for label in label_list}):  # a class without a node
            members = targets == c
            centroid_list.append(f[members].mean(0))
            variance_list.append(f[members].var(0, unbiased=False) if members.sum() > 1 else None)
            label_list.append(torch.tensor(c, device=f.device))
            anchor_list.append(torch.nonzero(members).flatten()[(f[members] - centroid_list[-1]).norm(dim=1).argmin()])
        known = torch.stack([v for v in variance_list if v is not None])
        floor = known.mean(0).clamp_min(1e-6)  # a node of one sample: the mean variance; never zero
        self.variances = torch.stack([floor if v is None else v for v in variance_list]).maximum(floor * 1e-2)
        self.centroids, self.labels = torch.stack(centroid_list), torch.stack(label_list)
        self.anchors = read(x[torch.stack(anchor_list).cpu()]).to(f.device)  # a copy of each node's anchor input
        n = len(self.centroids)
        self.ages = torch.full((n, n), float("inf"), device=f.device)
        self.ages[:len(rows), :len(rows)] = ages[rows][:, rows]
        self.n_old = n

    # ------------------------------------------------------------------ prediction: the nearest node's label
    @torch.no_grad()
    def predict(self, x):
        self.model.eval()
        distance = torch.cdist(self.embed(x), self.centroids)
        scores = torch.full((len(x), self.output_mask.shape[1]), float("-inf"), device=distance.device)
        return scores.scatter_reduce(1, self.labels.expand_as(distance), -distance, reduce="amax")

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        if self.centroids is None:
            return {}
        node_bytes = sum(t.numel() * t.element_size() for t in (self.centroids, self.variances, self.labels))
        return {"nodes": len(self.centroids), "edges": int(torch.isfinite(self.ages).sum()) // 2,
                "node_bytes": node_bytes, "anchor_bytes": self.anchors.numel() * self.anchors.element_size()}

    def state_dict(self):
        gas = {key: getattr(self, key) for key in ("centroids", "variances", "labels", "anchors", "ages")}
        return {**super().state_dict(), "gas": gas, "n_old": self.n_old}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        for key, value in state["gas"].items():
            setattr(self, key, None if value is None else value.to(self._device))
        self.n_old = state["n_old"]
