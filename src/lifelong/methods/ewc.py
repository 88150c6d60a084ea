"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) and online EWC (Schwarz et al., ICML 2018):
`ewc` and `online-ewc`. Importance is the diagonal of the Fisher information, i.e. how sensitive the loss is:

    F_i = (1/N) sum_k E_{y ~ p(y | x_k)} ( d log p(y | x_k; theta) / d theta_i )^2
    EWC:         L(theta) = L_B(theta) + sum_{old tasks A} lambda * F_A,i (theta_i - theta*_A,i)^2      (eq. 3)
    online EWC:  F* = gamma F*_old + F_new, one penalty around the latest theta*                         (Schwarz)

(`strength` = lambda is Kirkpatrick's lambda / 2, Hsu et al.'s reg_coef.) F is measured over the task's whole
training set, in evaluation mode. Which y (`fisher`):
    "true"       (default) the paper's Fisher: the expectation over the model's own predictive distribution,
                 sum_y p(y | x_k) g_y^2, computed exactly (one per-sample pass per output the task is read through);
    "empirical"  the true label y_k of each sample (the "empirical Fisher");
    "weighted-empirical"  the true label, its g^2 weighted by p(y_k | x_k): Mammoth's `ewc_on` (the oEWC rows of
                 Buzzega et al.), which down-weights the samples the model gets wrong (their gradients are the
                 largest);
    "sampled"    one label per sample drawn from p(y | x_k): an unbiased Monte Carlo estimate of the true Fisher at
                 the cost of one per-sample pass (the true Fisher costs one per output; 2.06x fine-tuning against
                 1.25x on split-MNIST, benchmarks/results/strategy_cost.md);
    "predicted"  the model's most probable label, as Hsu et al.'s code does (its coefficients were tuned with it).
How (`estimate`): exactly per sample ("per-sample", default), or as Hsu et al.'s code does ("batch"): the mean
over batches of B * (gradient of the batch's mean loss)^2 (on split-MNIST about 100 times smaller than the
per-sample F), with the predicted or the empirical label only.

EWC's one penalty per old task costs memory that grows with the tasks; summed, those quadratics are one quadratic
with the same gradient: sum_A F_A (theta - a_A)^2 = Omega (theta - theta*)^2 + const, Omega = sum_A F_A and
theta* = sum_A F_A a_A / Omega. So EWC here keeps only Omega and theta*, like the others, and trains exactly the same.
"""

import torch
import torch.nn.functional as F

from .. import distributed
from ..checks import check_choice, check_weight
from ..errors import ConfigError
from ..inputs import in_order
from .regularization import Regularizer, batch_gradient_statistic, measuring_mode, per_sample_statistic

FISHERS = ("true", "sampled", "empirical", "weighted-empirical", "predicted")
ESTIMATES = ("per-sample", "batch")


class EWC(Regularizer):
    """Options: `strength` (lambda; default 100, Hsu et al.'s task-IL split-MNIST value; 100 / 100 / 600 for
    task / domain / class-IL), `fisher` ("true", default, "sampled", "empirical" or "predicted"), `estimate` ("per-sample",
    default, or "batch": Hsu et al.'s estimate)."""

    name = "ewc"

    def __init__(self, model, setting: str = "class", strength: float = 100.0, fisher: str = "true",
                 estimate: str = "per-sample"):
        """fisher: which label the Fisher is taken at: "true" (the paper: expectation over the model's predictive
        distribution), "sampled" (one label drawn from it per sample: the same in expectation, one pass instead of
        one per output), "empirical" (the true labels), "weighted-empirical" (the true labels, each sample's square
        weighted by the probability of its label: Mammoth's) or "predicted" (the argmax, Hsu et al.'s code); estimate:
        "per-sample" (exact) or "batch" (Hsu et al.'s B * squared gradient of each batch's mean)."""
        super().__init__(model, setting, strength)
        self.fisher = check_choice("fisher", fisher, FISHERS)
        self.fisher_estimate = check_choice("Fisher estimate", estimate, ESTIMATES)
        if fisher in ("true", "sampled", "weighted-empirical") and estimate == "batch":
            raise ConfigError("estimate=batch (Hsu et al.'s) squares a batch's summed gradient at one label per "
                              "sample: use it with fisher=predicted (theirs) or fisher=empirical")

    def log_likelihood_loss(self, out: torch.Tensor, labels: torch.Tensor, task_id: int) -> torch.Tensor:
        """-log p(y_k | x_k) per sample, over the outputs the task is read through."""
        return F.cross_entropy(self.outputs(out, task_id), labels, reduction="none")

    def label_passes(self, read: torch.Tensor, y: torch.Tensor):
        """(labels, weights) of each pass: the Fisher is sum over passes of weights^2 * g(labels)^2."""
        if self.fisher == "true":  # sum_c p_c g_c^2: g scaled by sqrt(p_c), squared
            p = torch.softmax(read, 1)
            return [(torch.full_like(y, c), p[:, c].sqrt()) for c in range(read.shape[1])]
        if self.fisher == "weighted-empirical":  # p_y g_y^2 at the true label: g scaled by sqrt(p_y), squared
            return [(y, torch.softmax(read, 1).gather(1, y[:, None]).squeeze(1).sqrt())]
        if self.fisher == "sampled":  # the default generator, which the learner seeds: same seed, same labels
            labels = torch.multinomial(torch.softmax(read, 1), 1).squeeze(1)
        else:
            labels = read.argmax(1) if self.fisher == "predicted" else y
        return [(labels, torch.ones(len(y), device=read.device))]

    def task_importance(self, task):
        # empirical labels as indices into the outputs read: within the task's part (task setting), else all seen
        labels = task.y_train if self.setting == "task" else self.targets(task, task.y_train)
        inputs = task.x_train  # read once (a permuted task makes its images when read)
        exact = self.fisher_estimate == "per-sample"
        size = self.importance_batch(exact)
        # on several processes each measures its part of the samples (whole batches for the batch estimate) and
        # the sums are added up; the sampled Fisher's labels come from the random state that every process shares,
        # so each process measures all samples, drawing what one process would draw
        shared = self.fisher == "sampled"
        if not shared:
            mine = distributed.part(len(inputs), 1 if exact else size)
            inputs, labels = inputs[mine], labels[mine]
        fisher = {name: torch.zeros_like(p) for name, p in self.model.named_parameters()}
        n = n_batches = 0
        for start, x in zip(range(0, len(inputs), size), in_order(inputs, size, self._device)):
            y = labels[start:start + size].to(self._device)
            with measuring_mode(self.model), torch.no_grad():  # evaluation mode, restored afterwards
                read = self.outputs(self.model(x), task.id)
            loss = lambda out, y, w: w * self.log_likelihood_loss(out, y, task.id)  # noqa: E731
            for pass_labels, weights in self.label_passes(read, y):
                if self.fisher_estimate == "per-sample":  # sum_k g_k^2
                    batch = per_sample_statistic(self.model, loss, x, pass_labels, weights, transform="square")
                else:  # (sum_k g_k)^2 / B = B * (gradient of the batch mean)^2
                    batch = {k: v / len(x) for k, v in batch_gradient_statistic(
                        self.model, loss, x, pass_labels, weights, transform="square").items()}
                fisher = {k: fisher[k] + v for k, v in batch.items()}
            n, n_batches = n + len(x), n_batches + 1
        if not shared:
            fisher, (n, n_batches) = distributed.add_up(fisher), distributed.total([n, n_batches])
        return {k: v / (n if exact else n_batches) for k, v in fisher.items()}

    def combine(self, new):
        """Omega = Omega_old + F; theta* = (Omega_old theta*_old + F theta) / Omega: the sum of every task's penalty."""
        theta = self.snapshot()
        for name, fisher in new.items():
            old, anchor = self._importance.get(name), self._anchor.get(name)
            if old is None or old.shape != fisher.shape:
                self._importance[name], self._anchor[name] = fisher, theta[name]
                continue
            total = old + fisher
            merged = (old * anchor + fisher * theta[name]) / total.clamp_min(torch.finfo(total.dtype).tiny)
            self._importance[name] = total
            self._anchor[name] = torch.where(total > 0, merged, theta[name])


class OnlineEWC(EWC):
    """Options: `strength` (default 400, Hsu et al.'s task-IL value; 400 / 700 / 100), `gamma` (the decay of the
    old Fisher, default 1.0 as in Hsu et al. and van de Ven et al.; Schwarz et al. tune gamma < 1), `fisher`,
    `estimate`."""

    name = "online-ewc"

    def __init__(self, model, setting: str = "class", strength: float = 400.0, gamma: float = 1.0,
                 fisher: str = "true", estimate: str = "per-sample"):
        super().__init__(model, setting, strength, fisher, estimate)
        self.gamma = check_weight("gamma", gamma)

    def combine(self, new):
        for name, fisher in new.items():
            old = self._importance.get(name)
            self._importance[name] = fisher if old is None or old.shape != fisher.shape else self.gamma * old + fisher
        self._anchor = self.snapshot()
