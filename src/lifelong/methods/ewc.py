"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) and online EWC (Schwarz et al., ICML 2018):
`ewc` and `online-ewc`. Importance is the diagonal of the Fisher information, i.e. how sensitive the loss is:

    F_i = (1/N) sum_k ( d log p(y_k | x_k; theta) / d theta_i )^2,  y_k = the model's most probable label
    EWC:         L(theta) = L_B(theta) + sum_{old tasks A} lambda * F_A,i (theta_i - theta*_A,i)^2      (eq. 3)
    online EWC:  F* = gamma F*_old + F_new, one penalty around the latest theta*                         (Schwarz)

(`strength` = lambda is Kirkpatrick's lambda / 2, Hsu et al.'s reg_coef.) F is measured over the task's whole
training set, in evaluation mode, with the predicted label (as in Hsu et al.'s code; the true Fisher samples y from
the model, the "empirical" one uses the true label): exactly per sample by default (`fisher="per-sample"`), or as
Hsu et al.'s code does (`fisher="batch"`): the mean over batches of B * (gradient of the batch's mean loss)^2, which
is what their coefficients were tuned with (on split-MNIST it is about 100 times smaller than the per-sample F).

EWC's one penalty per old task costs memory that grows with the tasks; summed, those quadratics are one quadratic
with the same gradient: sum_A F_A (theta - a_A)^2 = Omega (theta - theta*)^2 + const, Omega = sum_A F_A and
theta* = sum_A F_A a_A / Omega. So EWC here keeps only Omega and theta*, like the others, and trains exactly the same.
"""

import torch
import torch.nn.functional as F

from ..checks import check_choice, check_weight
from .regularization import Regularizer, batch_gradient_statistic, measuring_mode, per_sample_statistic

FISHER_ESTIMATES = ("per-sample", "batch")


class EWC(Regularizer):
    """Options: `strength` (lambda; default 100, Hsu et al.'s task-IL split-MNIST value; 100 / 100 / 600 for
    task / domain / class-IL), `fisher` ("per-sample", default, or "batch": Hsu et al.'s estimate)."""

    name = "ewc"
    description = "EWC: quadratic penalty weighted by the Fisher information of each old task (Kirkpatrick 2017)"

    def __init__(self, model, setting: str = "class", strength: float = 100.0, fisher: str = "per-sample"):
        super().__init__(model, setting, strength)
        self.fisher = check_choice("Fisher estimate", fisher, FISHER_ESTIMATES)

    def log_likelihood_loss(self, out: torch.Tensor, labels: torch.Tensor, task_id: int) -> torch.Tensor:
        """-log p(y_k | x_k) per sample, over the outputs the task is read through."""
        return F.cross_entropy(self.outputs(out, task_id), labels, reduction="none")

    def task_importance(self, task):
        fisher, n, n_batches = {}, 0, 0
        for x in self.importance_batches(task.x_train):
            with measuring_mode(self.model), torch.no_grad():  # evaluation mode, restored afterwards
                labels = self.outputs(self.model(x), task.id).argmax(1)
            loss = lambda out, y: self.log_likelihood_loss(out, y, task.id)  # noqa: E731
            if self.fisher == "per-sample":  # sum_k g_k^2
                batch = per_sample_statistic(self.model, loss, x, labels, transform="square")
            else:  # (sum_k g_k)^2 / B = B * (gradient of the batch mean)^2
                batch = {k: v / len(x) for k, v in
                         batch_gradient_statistic(self.model, loss, x, labels, transform="square").items()}
            fisher = {k: fisher[k] + v for k, v in batch.items()} if fisher else batch
            n, n_batches = n + len(x), n_batches + 1
        return {k: v / (n if self.fisher == "per-sample" else n_batches) for k, v in fisher.items()}

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
    old Fisher, default 1.0 as in Hsu et al. and van de Ven et al.; Schwarz et al. tune gamma < 1), `fisher`."""

    name = "online-ewc"
    description = "online EWC: one running Fisher (old one decayed by gamma), one penalty around the latest weights"

    def __init__(self, model, setting: str = "class", strength: float = 400.0, gamma: float = 1.0,
                 fisher: str = "per-sample"):
        super().__init__(model, setting, strength, fisher)
        self.gamma = check_weight("gamma", gamma)

    def combine(self, new):
        for name, fisher in new.items():
            old = self._importance.get(name)
            self._importance[name] = fisher if old is None or old.shape != fisher.shape else self.gamma * old + fisher
        self._anchor = self.snapshot()
