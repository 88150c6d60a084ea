"""CEC, the Continually Evolved Classifier (Zhang, Song, Lin, Zheng, Pan & Xu, "Few-Shot Incremental Learning with
Continually Evolved Classifiers", CVPR 2021), as its official code (icoz69/CEC-CVPR2021: models/cec/Network.py,
fscil_trainer.py, helper.py; models/base/ for the pre-training) runs it: representation and classifier decoupled,
the classifier a set of prototypes that a graph attention model adapts jointly. The abstract: "only the classifiers
are updated in each incremental session"; CEC "employs a graph model to propagate context information between
classifiers for adaptation", learned by "a pseudo incremental learning paradigm that episodically constructs a pseudo
incremental learning task to optimize the graph parameters by sampling data from the base dataset". (The paper's
full text was not reachable from this machine: the numbers below are its code's README commands and defaults.)

    (1) Base session (the engine's epochs): train the backbone with a cosine classifier,
            logits_c = T * cos(f(x), w_c),  T = temperature = 16   (`-temperature 16`, `-base_mode ft_cos`)
        over the base classes, cross-entropy.
    (2) End of the base session (`after_task` of session 0): the head is replaced by class means,
            p_c = mean of f(x) over the training images of class c,
        and the graph model G (one-head self-attention, residual + LayerNorm, as the official MultiHeadAttention(1,
        d, d, d, dropout=0.5)) is meta-trained on pseudo-incremental episodes drawn from the base classes:
            N-way K-shot base classes (N = ways = 15, K = shots = 1) and N' = pseudo_ways = 15 pseudo-new classes,
            the first N' of the episode's classes turned by 90, 180 or 270 degrees (one angle per class, drawn at
            random): each turned class is a new label; Q = queries (15) queries of each of the N + N' classes;
            prototypes = the K shots' mean features; for each query q, the set {p_1..p_{N+N'}, q} goes through G
            together (the "graph" over all classifiers and the query) and
                logits_c(q) = T * cos(G(q), G(p_c)),   L = CE(logits, label)
        minimised over G (lr attention_lr = 0.0002) and the encoder (lr encoder_lr: 0.002 in the README's CIFAR-100
        command, 0.0002 for miniImageNet and CUB-200; 0 keeps it frozen), SGD with Nesterov momentum 0.9, weight
        decay 5e-4, the rate halved every fifth of the epochs (`-step 20 -gamma 0.5` of 100 epochs). After it the
        prototypes of the base classes are the class means again, with the final encoder.
    (3) Sessions t > 0: no training (the model is frozen: the engine's step has no parameter to train). Each new
        class's prototype is the mean of its shots' features (`-new_mode avg_cos`).
    Prediction: every prototype seen so far and the test image go through G together, query by query (the
        official `test`: each query appended to all the prototypes), logits_c = T * cos(G(x), G(p_c)).

Where the official code differs from the paper or from itself, an option (the default and why):
- `selection`: the official trainer picks the meta-training epoch with the best accuracy on the *test* sets of all
  the incremental sessions (`validation()`; icoz69/CEC-CVPR2021 issue 19), unless `-set_no_val`. Here the last
  epoch is kept, always (the `-set_no_val` path): no choice is made on test data. Not an option.
- `episode_mode="eval"`: the official trainer calls `model.eval()` before meta-training, so batch-norm keeps its
  statistics and the attention's dropout (0.5) never acts during training; "train" runs both in training mode
  (the dropout as the paper's module has it, batch norm on the episode's statistics).
- `meta_epochs=10`, `episodes=50`: the official runs 100 epochs of 50 episodes on a GPU; a tenth by default here
  (the rate schedule scales with it), `meta_epochs=100` for the official length.
- `queries=None`: the official 15, or fewer where a base class has fewer than shots + 15 training images
  (Omniglot's characters have 15 drawings: 14 queries).
- pseudo-new classes take the first `shots` shots of their class (`-low_shot 1` = `-episode_shot 1` in every
  README command), so there is no separate low_shot option.
- episodes are augmented as the scenario's training batches are (CIFAR's crop + flip), after the turns; the
  official applies each data set's training transform to the loaded images.
- the base-session pre-training: the official code loads a released checkpoint (trained 100 epochs, kept at its
  best *test* epoch); here the base session is trained by the engine, with the scenario's configuration, and its
  last epoch kept.
"""

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_choice, check_float, check_int
from ..errors import ConfigError
from ..inputs import read
from ..transforms import crop_and_flip, rotate
from .base import Method

EPISODE_MODES = ("eval", "train")
ANGLES = (90.0, 180.0, 270.0)  # the turns that make a pseudo-new class (one per class and episode)
OFFICIAL_QUERIES = 15


class GraphAttention(nn.Module):
    """The official one-head attention block over a set of d-dimensional vectors (B, L, d) -> (B, L, d):
        Q, K, V = X W_q, X W_k, X W_v   (no bias; initialised normal with std sqrt(2 / (d + d)))
        A = softmax(Q K^T / sqrt(d))     (its own dropout 0.1, as the official ScaledDotProductAttention)
        out = LayerNorm(X + dropout(A V W_fc + b_fc))   (W_fc Xavier-normal, dropout 0.5)"""

    def __init__(self, dim: int, dropout: float = 0.5, attention_dropout: float = 0.1):
        super().__init__()
        self.w_q, self.w_k, self.w_v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        for w in (self.w_q, self.w_k, self.w_v):
            nn.init.normal_(w.weight, mean=0.0, std=math.sqrt(2.0 / (dim + dim)))
        self.fc = nn.Linear(dim, dim)
        nn.init.xavier_normal_(self.fc.weight)
        self.norm = nn.LayerNorm(dim)
        self.attention_dropout = nn.Dropout(attention_dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(x.shape[-1]), dim=2)
        out = self.fc(self.attention_dropout(attention) @ v)
        return self.norm(self.dropout(out) + x)

    def adapt(self, prototypes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """`forward` of the set {p_1..p_C, q} for each query q ((C, d) prototypes, (B, d) queries -> (B, C + 1, d),
        the query last), without projecting the prototypes once per query: Q, K, V of the prototypes are computed
        once, and the output layer is linear, so (A V) W_fc^T = A (V W_fc^T) is taken on the C + 1 values. The
        same numbers as `forward` on the B sets (to rounding), a (C + 1)^2 / d share of its cost per query."""
        n, d = prototypes.shape
        b = len(queries)
        x = torch.cat([prototypes, queries])
        q, k = self.w_q(x), self.w_k(x)
        v = self.w_v(x) @ self.fc.weight.T
        (pq, qq), (pk, qk), (pv, qv) = (t.split([n, b]) for t in (q, k, v))
        top = torch.cat([(pq @ pk.T).expand(b, n, n), (qk @ pq.T)[:, :, None]], dim=2)  # the prototypes' rows
        bottom = torch.cat([qq @ pk.T, (qq * qk).sum(1, keepdim=True)], dim=1)[:, None]  # the query's row
        attention = torch.softmax(torch.cat([top, bottom], dim=1) / math.sqrt(d), dim=2)
        values = torch.cat([pv.expand(b, n, d), qv[:, None]], dim=1)
        out = self.attention_dropout(attention) @ values + self.fc.bias
        residual = torch.cat([prototypes.expand(b, n, d), queries[:, None]], dim=1)
        return self.norm(self.dropout(out) + residual)

    def cosines(self, prototypes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """cos(q', p'_c) of each query q with each prototype p_c, both adapted in the set {p_1..p_C, q}: (B, C).
        Without dropout acting (evaluation mode, or dropout 0) in closed form, never making the (B, C, d) adapted
        prototypes: for query b, prototype c's row before the LayerNorm is
            r_cb = h_c + w1_cb u_c + w2_cb v_b,   h_c = p_c + b_fc,  u_c = sum_j exp(s_cj - m_c) V'_j,  v_b = V'_q,
        (V' = V W_fc^T; s the attention scores; m_c = max_j s_cj; w1_cb, w2_cb the softmax's normalisation of the
        prototypes' part and the query's weight), so the LayerNorm's mean and variance and the cosine with the
        adapted query are sums of inner products of h, u and v: (C, B) matrices. The same numbers as `adapt` (to
        rounding), at a cost that does not grow with B x C x d element-wise work, forward or backward."""
        dropping = self.training and (self.dropout.p > 0 or self.attention_dropout.p > 0)
        if dropping:  # random masks on each set's attention and outputs: the sets themselves, in chunks
            n, d = prototypes.shape
            out = []
            for part in queries.split(max(1, (1 << 22) // ((n + 1) * max(n + 1, d)))):
                adapted = self.adapt(prototypes, part)
                out.append(F.cosine_similarity(adapted[:, n:], adapted[:, :n], dim=-1))
            return torch.cat(out)
        n, d = prototypes.shape
        scale = math.sqrt(d)
        x = torch.cat([prototypes, queries])
        q, k = self.w_q(x), self.w_k(x)
        v = self.w_v(x) @ self.fc.weight.T
        (pq, qq), (pk, qk), (pv, qv) = (t.split([n, len(queries)]) for t in (q, k, v))
        # the query's own row: attends to the prototypes and itself; (B, d), as in `adapt`
        query_scores = torch.cat([qq @ pk.T, (qq * qk).sum(1, keepdim=True)], dim=1) / scale
        a = torch.softmax(query_scores, dim=1)
        query = self.norm(a[:, :n] @ pv + a[:, n:] * qv + self.fc.bias + queries)
        # the prototypes' rows: their scores among themselves (shared) and towards each query (C, B)
        own = pq @ pk.T / scale
        towards = pq @ qk.T / scale
        top = own.max(1, keepdim=True).values
        weights = torch.exp(own - top)
        u = weights @ pv  # (C, d), normalised by exp(top) * Z below
        log_z = top + weights.sum(1, keepdim=True).log()  # (C, 1)
        total = torch.logaddexp(log_z, towards)  # log of the softmax's denominator, (C, B)
        w1 = torch.exp(top - total)  # the weight of u_c
        w2 = torch.exp(towards - total)  # the query's attention weight
        h = prototypes + self.fc.bias
        centre = lambda t: t - t.mean(-1, keepdim=True)  # noqa: E731  (the LayerNorm's mean is linear)
        h, u, v = centre(h), centre(u), centre(qv)
        gamma, beta = self.norm.weight, self.norm.bias

        def inner(a_, b_, weight=None):  # <a_i, b_j> (weighted), a (C or B, d)
            return (a_ * weight) @ b_.T if weight is not None else a_ @ b_.T

        def rowwise(a_, b_, weight=None):  # <a_i, b_i>, as a column
            return ((a_ * b_ * weight) if weight is not None else a_ * b_).sum(1, keepdim=True)

        # |r~|^2 / d: the variance of each row (C, B)
        var = (rowwise(h, h) + w1 ** 2 * rowwise(u, u) + w2 ** 2 * rowwise(v, v).T + 2 * w1 * rowwise(h, u)
               + 2 * w2 * inner(h, v) + 2 * w1 * w2 * inner(u, v)) / d
        sigma = torch.sqrt(var + self.norm.eps)
        g2 = gamma * gamma
        # |gamma . r~|^2, <gamma beta, r~>, <gamma . query', r~>
        r_gamma = (rowwise(h, h, g2) + w1 ** 2 * rowwise(u, u, g2) + w2 ** 2 * rowwise(v, v, g2).T
                   + 2 * w1 * rowwise(h, u, g2) + 2 * w2 * inner(h, v, g2) + 2 * w1 * w2 * inner(u, v, g2))
        gb = gamma * beta
        r_beta = h @ gb[:, None] + w1 * (u @ gb[:, None]) + w2 * (v @ gb[:, None]).T
        gq = query * gamma
        r_query = inner(h, gq) + w1 * inner(u, gq) + w2 * rowwise(v, gq).T
        dot = r_query / sigma + (query @ beta)[None]  # <p'_cb, q'_b>
        norm_p = torch.sqrt((r_gamma / sigma ** 2 + 2 * r_beta / sigma + beta @ beta).clamp_min(0))
        eps = 1e-8  # F.cosine_similarity's
        return (dot / (norm_p.clamp_min(eps) * query.norm(dim=1).clamp_min(eps)[None])).T


class CEC(Method):
    name = "cec"
    settings = ("class",)

    def __init__(self, model, setting: str = "class", temperature: float = 16.0, meta_epochs: int = 10,
                 episodes: int = 50, ways: int = 15, shots: int = 1, queries: int | None = None,
                 pseudo_ways: int = 15, encoder_lr: float = 0.002, attention_lr: float = 0.0002,
                 lr_step: int | None = None, lr_gamma: float = 0.5, weight_decay: float = 5e-4, dropout: float = 0.5,
                 episode_mode: str = "eval"):
        """temperature: T of the cosine logits, in the base session and after it (official 16).
        meta_epochs, episodes: the pseudo-incremental meta-training, epochs of `episodes` episodes each (official
        100 x 50; 10 x 50 here by default; 0 epochs: no meta-training, the attention left at its initialisation).
        ways, shots, queries: an episode's base classes, shots per class (its prototype) and queries per class
        (official 15, 1, 15; queries None: 15, or the most the base session's smallest class allows).
        pseudo_ways: the pseudo-new classes of an episode, the first pseudo_ways of its classes turned (official
        15; at most ways).
        encoder_lr, attention_lr: SGD rates of the backbone and of the attention during meta-training (the CIFAR-100
        README command: 0.002 and 0.0002; encoder_lr 0: the backbone frozen after the base session).
        lr_step, lr_gamma: both rates times lr_gamma every lr_step epochs (official 20 of 100, 0.5; None: a fifth
        of meta_epochs). weight_decay: of the meta-training's SGD (official 5e-4).
        dropout: the attention's output dropout (official 0.5). episode_mode: "eval" (official: the model in
        evaluation mode during meta-training, so batch norm keeps its statistics and dropout is off) or "train"."""
        super().__init__(model, setting)
        self.temperature = check_float("temperature", temperature)
        self.meta_epochs = check_int("meta_epochs", meta_epochs, low=0)
        self.episodes = check_int("episodes", episodes)
        self.ways = check_int("ways", ways)
        self.shots = check_int("shots", shots)
        self.queries = None if queries is None else check_int("queries", queries)
        self.pseudo_ways = check_int("pseudo_ways", pseudo_ways, low=0)
        if self.pseudo_ways > self.ways:
            raise ConfigError(f"pseudo_ways ({self.pseudo_ways}) must be at most ways ({self.ways}): the pseudo-new "
                              "classes are turned copies of the episode's classes")
        self.encoder_lr = check_float("encoder_lr", encoder_lr, low_open=False)
        self.attention_lr = check_float("attention_lr", attention_lr)
        self.lr_step = None if lr_step is None else check_int("lr_step", lr_step)
        self.lr_gamma = check_float("lr_gamma", lr_gamma, high=1.0)
        self.weight_decay = check_float("weight_decay", weight_decay, low_open=False)
        self.dropout = check_float("dropout", dropout, low_open=False, high=1.0)
        self.episode_mode = check_choice("episode_mode", episode_mode, EPISODE_MODES)
        self.attention: GraphAttention | None = None  # made at the end of the base session
        self.prototypes: torch.Tensor | None = None  # (classes seen, features), rows in head-output order
        self.meta_losses: list[float] = []  # each meta-training epoch's mean loss
        self.meta_seconds = 0.0  # the meta-training's wall time (the base session's time includes it)

    # ------------------------------------------------------------------ checks
    def check(self, scenario) -> None:
        base = scenario.tasks[0]
        if len(base.y_train) == 0 or self.meta_epochs == 0:  # a learner keeps no task data: checked before
            return
        if self.ways > base.n_classes:
            raise ConfigError(f"cec: {self.ways}-way episodes but the base session has {base.n_classes} classes; "
                              f"use --param ways=N with N <= {base.n_classes}")
        fewest = int(torch.bincount(base.y_train, minlength=base.n_classes).min())
        if fewest < self.shots + (self.queries or 1):
            raise ConfigError(f"cec: an episode takes {self.shots} shot(s) + {self.queries or 1} queries of a class, "
                              f"but a base class has only {fewest} training images; lower shots or queries")

    def episode_queries(self, base_counts: torch.Tensor) -> int:
        """The queries per class of an episode: `queries`, or the official 15 where the classes have enough."""
        return self.queries if self.queries is not None else min(OFFICIAL_QUERIES, int(base_counts.min()) - self.shots)

    # ------------------------------------------------------------------ the cosine classifier and the graph
    def cosine_logits(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """T * cos(f, w_c) for every row f of `features` and w_c of `weights`."""
        return self.temperature * F.normalize(features, dim=1) @ F.normalize(weights, dim=1).T

    def adapted_logits(self, queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """(B, d) queries and (C, d) prototypes -> (B, C): for each query, {p_1..p_C, q} through the attention
        together, then T * cos(q', p'_c) (`GraphAttention.cosines`)."""
        return self.temperature * self.attention.cosines(prototypes, queries)

    def loss(self, x, targets, task_ids):
        """The base session: cross-entropy of the cosine classifier (the head's weights; its bias is not used)."""
        weights = torch.cat([part.weight for part in self.model.head.parts])
        return self.classification_loss(self.cosine_logits(self.model.features(x), weights), targets, task_ids)

    @torch.no_grad()
    def predict(self, x):
        self.model.eval()
        if self.prototypes is None:  # inside the base session, before the prototypes exist: the cosine head
            weights = torch.cat([part.weight for part in self.model.head.parts])
            return self.seen(self.cosine_logits(self.model.features(x), weights))
        self.attention.eval()
        return self.adapted_logits(self.model.features(x), self.prototypes)

    # ------------------------------------------------------------------ sessions
    def before_task(self, task):
        super().before_task(task)
        if task.id > 0:  # decoupled: nothing is trained after the base session
            self.model.requires_grad_(False)

    @torch.no_grad()
    def class_means(self, x, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Each class's mean feature (the backbone in evaluation mode)."""
        f = self.features(x)
        y = y.to(f.device)
        sums = torch.zeros(n_classes, f.shape[1], device=f.device).index_add_(0, y, f)
        return sums / torch.bincount(y, minlength=n_classes).clamp_min(1)[:, None]

    def after_task(self, task):
        if task.id == 0:
            self.attention = GraphAttention(self.model.head.in_features, self.dropout).to(self._device)
            if self.meta_epochs:
                started = time.perf_counter()
                self.meta_train(task)
                self.meta_seconds = time.perf_counter() - started
            self.prototypes = self.class_means(task.x_train, task.y_train, task.n_classes)
            self.model.requires_grad_(False)
            self.attention.requires_grad_(False)
            return
        self.prototypes = torch.cat([self.prototypes, self.class_means(task.x_train, task.y_train, task.n_classes)])

    # ------------------------------------------------------------------ pseudo-incremental meta-training
    def draw_episode(self, by_class: list[torch.Tensor], queries: int):
        """One episode's indices into the base training set and its turns: (support (shots, ways), query (queries,
        ways) indices; the angle of each pseudo-new class). The ways classes and each one's shots + queries images
        are drawn without replacement, as the official CategoriesSampler does."""
        classes = torch.randperm(len(by_class))[:self.ways]
        picks = torch.stack([by_class[c][torch.randperm(len(by_class[c]))[:self.shots + queries]] for c in classes])
        angles = torch.tensor(ANGLES)[torch.randint(len(ANGLES), (self.pseudo_ways,))]
        return picks[:, :self.shots].T, picks[:, self.shots:].T, angles

    def episode_inputs(self, x, support: torch.Tensor, query: torch.Tensor, angles: torch.Tensor):
        """The images of an episode, in the order `episode_logits` reads them: the support (shots x ways), the
        turned support of the pseudo-new classes (shots x pseudo_ways), the queries (queries x ways), the turned
        queries (queries x pseudo_ways); and the query labels (0..ways - 1 the classes, ways.. their turns)."""
        n = self.pseudo_ways
        images = read(x[torch.cat([support.flatten(), query.flatten()])]).to(self._device)
        shots = images[:support.numel()].view(*support.shape, *images.shape[1:])
        asked = images[support.numel():].view(*query.shape, *images.shape[1:])
        turned = [rotate(part[:, :n].flatten(0, 1), angles.repeat(len(part)), "nearest")  # row-major: angle j
                  .view(len(part), n, *part.shape[2:]) for part in (shots, asked)]
        inputs = torch.cat([shots.flatten(0, 1), turned[0].flatten(0, 1), asked.flatten(0, 1),
                            turned[1].flatten(0, 1)])
        if self.augmented_inputs:
            inputs = crop_and_flip(inputs)
        labels = torch.arange(self.ways + n, device=self._device).repeat(len(query))
        return inputs, labels

    def episode_logits(self, features: torch.Tensor, n_shots: int, n_queries: int) -> torch.Tensor:
        """An episode's logits from its features (`episode_inputs`' order): prototypes = mean of the shots of each
        class and of each turned class; each query adapted jointly with them (`adapted_logits`)."""
        ways, n, d = self.ways, self.pseudo_ways, features.shape[1]
        parts = features.split([n_shots * ways, n_shots * n, n_queries * ways, n_queries * n])
        prototypes = torch.cat([parts[0].view(n_shots, ways, d).mean(0), parts[1].view(n_shots, n, d).mean(0)])
        queries = torch.cat([parts[2].view(n_queries, ways, d), parts[3].view(n_queries, n, d)], dim=1)
        return self.adapted_logits(queries.flatten(0, 1), prototypes)

    def meta_train(self, task) -> list[float]:
        """Stage (2): `meta_epochs` x `episodes` pseudo-incremental episodes on the base classes; returns each
        epoch's mean loss."""
        y = task.y_train
        by_class = [torch.nonzero(y == c).flatten() for c in range(task.n_classes)]
        queries = self.episode_queries(torch.bincount(y, minlength=task.n_classes))
        groups = [{"params": list(self.attention.parameters()), "lr": self.attention_lr}]
        if self.encoder_lr > 0:
            groups.append({"params": list(self.model.backbone.parameters()), "lr": self.encoder_lr})
        else:
            self.model.backbone.requires_grad_(False)
        optimizer = torch.optim.SGD(groups, lr=self.attention_lr, momentum=0.9, nesterov=True,
                                    weight_decay=self.weight_decay)
        step = self.lr_step or max(1, self.meta_epochs // 5)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=self.lr_gamma)
        losses = []
        for _ in range(self.meta_epochs):
            self.model.train(self.episode_mode == "train")
            self.attention.train(self.episode_mode == "train")
            total = 0.0
            for _ in range(self.episodes):
                support, query, angles = self.draw_episode(by_class, queries)
                inputs, labels = self.episode_inputs(task.x_train, support, query, angles)
                loss = F.cross_entropy(self.episode_logits(self.model.features(inputs), self.shots, queries), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            schedule.step()
            losses.append(total / self.episodes)
        self.meta_losses = losses
        return losses

    # ------------------------------------------------------------------ what it keeps
    def describe(self):
        return {"prototypes": 0 if self.prototypes is None else len(self.prototypes), "temperature": self.temperature,
                "meta_episodes": self.meta_epochs * self.episodes, "ways": self.ways, "shots": self.shots,
                "queries": self.queries, "pseudo_ways": self.pseudo_ways, "encoder_lr": self.encoder_lr,
                "attention_lr": self.attention_lr, "episode_mode": self.episode_mode,
                "meta_losses": self.meta_losses, "meta_training_s": self.meta_seconds}

    def state_dict(self):
        return {**super().state_dict(), "prototypes": self.prototypes,
                "attention": None if self.attention is None else self.attention.state_dict(),
                "meta_losses": list(self.meta_losses), "meta_seconds": self.meta_seconds}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.prototypes = state["prototypes"]
        self.meta_losses, self.meta_seconds = list(state["meta_losses"]), float(state["meta_seconds"])
        if self.prototypes is not None:
            self.prototypes = self.prototypes.to(self._device)
        if state["attention"] is not None:
            with torch.random.fork_rng(devices=[]):  # its initial draws are overwritten: leave the caller's state
                self.attention = GraphAttention(self.model.head.in_features, self.dropout).to(self._device)
            self.attention.load_state_dict(state["attention"])
            self.attention.requires_grad_(False)
        if tasks:  # after the base session nothing is trained
            self.model.requires_grad_(False)
