"""TOPIC, the TOpology-Preserving knowledge InCrementer (Tao et al., "Few-Shot Class-Incremental Learning",
CVPR 2020): a neural gas (NG) in the network's feature space, its nodes joined by competitive Hebbian edges, stands
for what the sessions learned; each few-shot session keeps its old part still (anchor loss) and grows new nodes that
are pulled to their shots and pushed away from the old nodes they are connected to (min-max loss).

    Base session:  train the network with cross-entropy; then learn a NG on the L2-normalised features of the base
                   training data (lifelong.hebbian: Martinetz's rank-based update, competitive Hebbian edges). Node j
                   keeps a centroid m_j, a per-dimension variance Lambda_j, a label c_j and an anchor sample z_j.
    Session t > 1: insert a node per new class at its shots' mean, joined to the graph by competitive Hebbian
                   learning over the shots (each shot joins its nearest and second-nearest nodes); record the
                   anchors' features a_j = f(z_j) with the network as the session starts; train on the shots with
                       L = CE + anchor_weight * AL + minmax_weight * MML,
                   AL  (stabilisation) = mean_j mean_d (f_d(z_j) - a_jd)^2 / max(Lambda_jd, floor)   over the old
                                         nodes: zero until the network moves; floor: the mean of the nodes' variances;
                   MML (adaptation)    = min term  mean_x |f(x) - m~_y|^2: each shot pulled to its class's new node
                                                   m~_y, and the node to its shots (m~ is learned, by SGD at node_lr);
                                       + max term  (1 / new nodes) sum over the edges j-k from a new node j to a node
                                                   k of another label of max(0, margin - |m~_j - m_k|)^2: each new
                                                   node pushed at least the margin from its graph neighbours.
                   After the session the new nodes stay where they were learned, and the graph's edges are refreshed
                   by competitive Hebbian learning over the shots' final features.
    Prediction:    the label of the nearest node (edges play no part, in the paper's Fig. 3 or here).

The paper (as its figure captions say it; its section 3 gives the losses):
    "To maintain the topology, the shift of NG nodes is penalized by the anchor-loss term."             (Fig. 3c)
    "NG grows for new class y by inserting a new vertex v~7. A new class training sample f~ is mismatched to v5,
     due to d(f~, m5) < d(f~, m7)."                                                                      (Fig. 3d)
    "The min-max loss term adapts F7 by pushing f~ to v~7 and pulling v~7 away from the neighbors v4, v5 and
     v6."                                                                                                (Fig. 3e)
    "The topology is updated after the adaptation in (e), where v~7 has been moved to v7, and the connection between
     v4 and v7 is removed due to expired age."                                                           (Fig. 3f)
    "Then NG incrementally grows for new classes by inserting new nodes and edges"                       (Fig. 2)
The official repository (xyutao/fscil, MXNet) releases the training script but not its loss or anchor modules
(tools/loss.py, tools/ng_anchor.py are imported, absent). What the script shows: the anchors' features are computed
once as each session starts, with autograd paused (`anchor_feat = net(anc_data, sess-1)`), and the anchor loss is the
distance of their current features from those (`loss_fn_AL(anchor_h, anchor_feat, ...)`); the min term is a module
with one learnable centre per new class, trained by its own SGD at 0.1 ("alpha=0.1 in the paper"); the max term has
margin 0.5 and acts on the shots' features; 400 nodes (anchor_num); the test scores the network's softmax head;
each session keeps its best epoch by test accuracy (not copied: nothing here is chosen on the test set).

Every choice the paper leaves open is an option; the default is the faithful reading, the other value the variant:
    anchor_target="start"  the anchors' features recorded as the session starts (the official script; "the shift of
                           NG nodes is penalized": zero when nothing moved). "centroid": the node's centroid m_j, the
                           equation read literally, which is not zero at the start (the anchor is the sample nearest
                           m_j, not m_j) and so moves the base representation instead of holding it.
                           The anchors pass in evaluation mode, as recorded, so AL is zero before the first step with
                           batch norm too.
    variance_floor="mean"  the weights 1 / max(Lambda_jd, floor), floor the mean of the base nodes' per-dimension
                           variances (from the data: no weight above 1 / floor); "median": their median. A node with
                           one member (no variance to estimate) and every new node get the floor.
    push="node"            the max term moves the new node away from its neighbours (Fig. 3e: "pulling v~7 away from
                           the neighbors"). "shots": each shot pushed from its class node's neighbours (the official
                           script applies its max loss to the shots' features).
    new_nodes="learned"    the new nodes are parameters of the session, pulled to their shots by the min term and
                           pushed by the max term, kept where learned (Fig. 3f: "v~7 has been moved to v7"); "mean":
                           held at the shots' mean during the session and re-estimated after it (this file's
                           earlier behaviour).
    node_lr=0.1            the new nodes' SGD step size ("alpha=0.1 in the paper", the official script's comment).
    classifier="node"      the nearest node's label. "head": the network's softmax head (the official script's test).
    margin=0.5             the official script's max-loss margin, here on unit-length features.
    neighbours=5           with use_edges=False only: the nearest other-label nodes pushed from instead of the edges.
    nodes=None             400 (anchor_num in the official scripts), or the base session's samples where fewer.
    gas_epochs=5, eps 0.5 -> 0.005, lambda 10 -> 0.01: the gas (Martinetz et al. 1993, the library's NeuralGas);
                           a node's label, anchor and variance: the majority label of the base samples nearest it, the
                           sample of that label nearest its centroid, the variance of those samples' features.
    anchor_weight=1, minmax_weight=1: not tuned (the official script's per-session weights, 120, 75, ... for its
                           quick CNN, belong to its unnormalised features).
Ablation switches (the rows of `lifelong reproduce fscil-omniglot`): anchor_loss, minmax_loss (each term off),
use_edges=False (the max term ignores the graph: the `neighbours` nearest other-label nodes instead).
"""

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..checks import check_choice, check_float, check_int, check_weight
from ..errors import ConfigError
from ..inputs import read
from ..hebbian.rules import annealed, neural_gas_step
from .base import Method

DEFAULT_NODES = 400  # anchor_num in the official repository's scripts
MAX_AGE = 200.0  # an edge's lifetime: the base gas's final one (annealed 20 -> 200)


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


class TOPIC(Method):
    name = "topic"
    settings = ("class",)

    def __init__(self, model, setting: str = "class", nodes: int | None = None, gas_epochs: int = 5,
                 anchor_loss: bool = True, minmax_loss: bool = True, use_edges: bool = True,
                 anchor_weight: float = 1.0, minmax_weight: float = 1.0, anchor_target: str = "start",
                 variance_floor: str = "mean", push: str = "node", new_nodes: str = "learned", node_lr: float = 0.1,
                 classifier: str = "node", margin: float = 0.5, neighbours: int = 5,
                 eps_initial: float = 0.5, eps_final: float = 0.005, lambda_initial: float = 10.0,
                 lambda_final: float = 0.01):
        """nodes: the base session's neural-gas nodes (default 400, or its samples if fewer); gas_epochs: its passes
        over the base features; anchor_loss, minmax_loss: each term on or off; use_edges: the max term along the
        graph's edges (false: from the `neighbours` nearest other-label nodes); anchor_weight, minmax_weight: the
        terms' weights; anchor_target: start (the anchors' features as the session starts) or centroid (the nodes'
        centroids); variance_floor: mean or median of the base nodes' variances, the least variance a weight divides
        by; push: node (the new nodes pushed from their neighbours) or shots (the shots); new_nodes: learned (trained
        at node_lr during the session) or mean (held at the shots' mean); classifier: node (nearest node) or head
        (the softmax head); margin: the max term's distance on unit-length features; eps_*, lambda_*: the gas's
        annealed step size and range."""
        super().__init__(model, setting)
        self.n_nodes = None if nodes is None else check_int("nodes", nodes)
        self.gas_epochs = check_int("gas_epochs", gas_epochs)
        self.anchor_loss = check_flag("anchor_loss", anchor_loss)
        self.minmax_loss = check_flag("minmax_loss", minmax_loss)
        self.use_edges = check_flag("use_edges", use_edges)
        self.anchor_weight = check_weight("anchor_weight", anchor_weight)
        self.minmax_weight = check_weight("minmax_weight", minmax_weight)
        self.anchor_target = check_choice("anchor_target", anchor_target, ("start", "centroid"))
        self.variance_floor = check_choice("variance_floor", variance_floor, ("mean", "median"))
        self.push = check_choice("push", push, ("node", "shots"))
        self.new_nodes = check_choice("new_nodes", new_nodes, ("learned", "mean"))
        self.node_lr = check_float("node_lr", node_lr)
        self.classifier = check_choice("classifier", classifier, ("node", "head"))
        self.margin = check_float("margin", margin)
        self.neighbours = check_int("neighbours", neighbours)
        self.eps = (check_float("eps_initial", eps_initial, high=1.0), check_float("eps_final", eps_final, high=1.0))
        self.lam = (check_float("lambda_initial", lambda_initial), check_float("lambda_final", lambda_final))
        # the gas: one row per node; labels are head outputs; ages[i, j] the age of edge i-j (inf: none)
        self.centroids = self.variances = self.labels = self.anchors = self.ages = None
        self.floor = None  # the least variance a weight divides by
        self.n_old = 0  # nodes made before the current session: the anchor loss's
        self.anchor_start = None  # the old anchors' features as the session started
        self.node_params = None  # the session's new nodes, learned (new_nodes="learned")

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

    def weights(self) -> torch.Tensor:
        """The anchor loss's per-node, per-dimension weights 1 / max(Lambda_jd, floor): none above 1 / floor."""
        return 1.0 / self.variances.clamp_min(self.floor)

    # ------------------------------------------------------------------ a session
    def before_task(self, task):
        super().before_task(task)
        if task.id == 0:
            return
        self.n_old = len(self.centroids)
        self.anchor_start = self.embed_all(self.anchors)  # where the anchors are as the session starts
        shots = read(task.x_train).to(self._device)  # a few shots: in memory even when the data set is on disk
        f, targets = self.embed_all(shots), self.targets(task, task.y_train).to(self._device)
        means, nearest = self.class_means(f, targets, task)
        self.add_nodes(means, torch.full_like(means, self.floor), targets[nearest], shots[nearest])
        self.connect(f)
        if self.new_nodes == "learned":
            self.node_params = self.centroids[self.n_old:].clone().requires_grad_(True)

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

    @torch.no_grad()
    def connect(self, f):
        """Competitive Hebbian learning over the features `f`, the nodes held still: each input joins its nearest
        and second-nearest nodes by an edge of age 0, the nearest node's other edges age by one and those past
        MAX_AGE go. A new node none of its shots joins (they all fell nearer old nodes) is joined to its nearest
        node of another label, so that every new node has a neighbour to be pushed from."""
        for v in f:
            neural_gas_step(self.centroids, self.ages, v, 0.0, 1.0, MAX_AGE)
        for j in range(self.n_old, len(self.centroids)):
            if not torch.isfinite(self.ages[j]).any():
                other = torch.cdist(self.centroids[j:j + 1], self.centroids)[0]
                k = other.masked_fill(self.labels == self.labels[j], float("inf")).argmin()
                self.ages[j, k] = self.ages[k, j] = 0

    def all_nodes(self) -> torch.Tensor:
        """Every node's centroid, the session's new ones as the parameters being learned."""
        if self.node_params is None:
            return self.centroids
        return torch.cat([self.centroids[:self.n_old], self.node_params])

    def loss(self, x, targets, task_ids):
        if task_ids[0] == 0:  # the base session: cross-entropy alone
            return super().loss(x, targets, task_ids)
        features = self.model.features(x)
        loss = self.classification_loss(self.model.head(features), targets, task_ids)
        if self.anchor_loss:
            loss = loss + self.anchor_weight * self.anchor_term()
        if self.minmax_loss:
            loss = loss + self.minmax_weight * self.minmax_term(F.normalize(features, dim=1), targets)
        return loss

    def anchor_term(self) -> torch.Tensor:
        """AL: the old anchors' weighted squared shift, from their features at the session's start (or from their
        nodes' centroids). The anchors pass in evaluation mode, as they were recorded."""
        modes = [module.training for module in self.model.modules()]
        self.model.eval()
        try:
            f = self.embed(self.anchors[:self.n_old])
        finally:  # back to the modes the step was in (train_mode's, or a warm-up's evaluation mode)
            for module, mode in zip(self.model.modules(), modes):
                module.training = mode
        target = self.anchor_start[:self.n_old] if self.anchor_target == "start" else self.centroids[:self.n_old]
        return ((f - target).square() * self.weights()[:self.n_old]).mean()

    def minmax_term(self, f, targets) -> torch.Tensor:
        """MML: the min term pulls each shot and its class's new node together; the max term pushes the new nodes
        (or the shots) at least `margin` from their neighbours of other labels."""
        nodes = self.all_nodes()
        own = self.labels[None] == targets[:, None]
        pull = torch.cdist(f, nodes).masked_fill(~own, float("inf")).min(1).values.square().mean()
        new = torch.arange(self.n_old, len(nodes), device=nodes.device)
        if self.push == "node":
            points, rows = nodes[new], new
        else:  # each shot from the neighbours of its class's node
            points, rows = f, new[(self.labels[new][None] == targets[:, None]).float().argmax(1)]
        distance = torch.cdist(points, nodes)
        other = self.labels[rows][:, None] != self.labels[None]
        if self.use_edges:
            pairs = torch.isfinite(self.ages[rows]) & other
        else:  # the graph ignored: the nearest nodes of other labels
            k = min(self.neighbours, int(other.sum(1).min()))
            nearest = distance.detach().masked_fill(~other, float("inf")).topk(k, dim=1, largest=False).indices
            pairs = torch.zeros_like(other).scatter_(1, nearest, True)
        push = (F.relu(self.margin - distance).square() * pairs).sum() / len(points)
        return pull + push

    def before_step(self):
        """The new nodes' own SGD step (as the official script's separate trainer of its min-loss centres); on several
        processes their gradient is first added up, as the engine adds up the model's (each share's loss is weighted
        by its share of the batch)."""
        if self.node_params is not None and self.node_params.grad is not None:
            distributed.add_up({"nodes": self.node_params.grad})
            with torch.no_grad():
                self.node_params -= self.node_lr * self.node_params.grad
                self.centroids[self.n_old:] = self.node_params
            self.node_params.grad = None

    @torch.no_grad()
    def after_task(self, task):
        x = task.x_train
        f, targets = self.embed_all(x), self.targets(task, task.y_train).to(self._device)
        if task.id == 0:
            self.grow_gas(f, targets, x)
            return
        if self.new_nodes == "mean":
            self.centroids[self.n_old:] = self.class_means(f, targets, task)[0]  # with the session's final features
        else:
            self.centroids[self.n_old:] = self.node_params.detach()
        self.node_params = None
        self.connect(f)  # the topology updated after the adaptation (Fig. 3f)
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
                                annealed(*self.lam, t, t_max), annealed(20.0, MAX_AGE, t, t_max))
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
        known = [v for v in variance_list if v is not None]
        known = torch.stack(known) if known else f.var(0, unbiased=False)[None]  # no node of 2 members: all data's
        floor = known.mean() if self.variance_floor == "mean" else known.median()
        self.floor = float(floor) if float(floor) > 0 else 1.0  # features that do not vary at all: unit weights
        self.variances = torch.stack([torch.full_like(f[0], self.floor) if v is None else v for v in variance_list])
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
        if self.classifier == "head":
            return super().predict(x)
        distance = torch.cdist(self.embed(x), self.centroids)
        scores = torch.full((len(x), self.output_mask.shape[1]), float("-inf"), device=distance.device)
        return scores.scatter_reduce(1, self.labels.expand_as(distance), -distance, reduce="amax")

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        if self.centroids is None:
            return {}
        node_bytes = sum(t.numel() * t.element_size() for t in (self.centroids, self.variances, self.labels))
        return {"nodes": len(self.centroids), "edges": int(torch.isfinite(self.ages).sum()) // 2,
                "variance_floor": self.floor, "node_bytes": node_bytes,
                "anchor_bytes": self.anchors.numel() * self.anchors.element_size()}

    def state_dict(self):
        gas = {key: getattr(self, key) for key in ("centroids", "variances", "labels", "anchors", "ages")}
        return {**super().state_dict(), "gas": gas, "n_old": self.n_old, "floor": self.floor}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        for key, value in state["gas"].items():
            setattr(self, key, None if value is None else value.to(self._device))
        self.n_old, self.floor = state["n_old"], state["floor"]
        self.anchor_start = self.node_params = None
