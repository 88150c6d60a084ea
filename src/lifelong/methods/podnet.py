"""PODNet: Pooled Outputs Distillation (Douillard, Cord, Ollion, Robert & Valle, "PODNet: Pooled Outputs
Distillation for Small-Tasks Incremental Learning", ECCV 2020).

Each step, on the rehearsal base (`Replay`: the new classes' data plus the exemplar memory), with N classes seen
(the new ones included) of which T are new, h_l the maps of the backbone's stages (`backbone.stages`, the contract of
`lifelong.models.stages`) and h the final embedding, of the model now (t) and before the step (t-1):

    POD-spatial  Phi(h_l) = normalise([ sum_w h_l^2 (C x H) , sum_h h_l^2 (C x W) ])     (width and height pooling)
                 L_spatial = mean_l mean_i || Phi(h_l^{t-1}) - Phi(h_l^t) ||_2
    POD-flat     L_flat    = mean_i (1 - cos(h^{t-1}, h^t))
    LSC          y_c = sum_k softmax_k(s_{c,.}) s_{c,k}, K = 10 proxies per class (`lifelong.models.lsc`)
    NCA          L_nca = mean_i [ -eta (y_{i,y} - delta) + log sum_{c != y} exp(eta y_{i,c}) ]_+ ,  delta = 0.6,
                 eta learned (initial value 1); the default is the official code's form (nca="official", below)
    loss         L = L_nca + sqrt(N / T) (lambda_c L_spatial + lambda_f L_flat),  lambda_c = 3, lambda_f = 1
                 (the distillation terms from the second step on)

Before a step, each new class's K proxies are imprinted: k-means (K centres) on the class's L2-normalised features
from the model before the step, each centre times the mean norm of the proxies already there ("weight_generation:
imprinted, multi_class_diff: kmeans"); the first step's proxies are random. During the step the old classes' proxies
do not move ("groupwise_factors: old_weights: 0"); the scale eta does. After the step (from the second on), once the
memory holds the same number of exemplars of every class, the classifier alone is fine-tuned on the memory: every
proxy, 20 epochs of SGD (momentum 0.9, weight decay 5e-4, batches of 128) at lr 0.05 with the NCA loss, eta fixed
(the CIFAR options file `podnet_cnn_cifar100.yaml`, "finetuning_config: undersampling, classifier, lr 0.05, epochs
20"; in the code, not the paper: issues #21, #48). Every gradient is clamped to [-5, 5] before each step (the code's
`register_hook(clamp(grad, -5, 5))`). Exemplars by herding (the paper: iCaRL's herding); prediction by the LSC's
argmax ("CNN"), or the nearest mean of exemplars (`classifier="ncm"`, the paper's NME).

Defaults, from the paper: "lambda_c = 3, lambda_f = 1" (CIFAR-100), "10 proxies per class", "margin delta 0.6",
the factors "adaptive ... sqrt(N/T)" as LUCIR's, exemplars by herding. Where the official code
(arthurdouillard/incremental_learning.pytorch, `inclearn/models/podnet.py`, `lib/losses/{distillation,base}.py`,
`lib/network/classifiers.py`) differs, each difference is an option or a stated choice:
- the NCA loss (`nca`). "paper" is Eq. 9 as written: the margin subtracted from the target's similarity only, the
  target left out of the denominator, clamped at zero ([.]_+). "official" is the code's `nca(...)`: the margin
  subtracted from *every* similarity, where it cancels between numerator and denominator and has no effect at all
  (the author agreed it is a bug, issue #59), the target's term zeroed rather than removed from the denominator
  (exp(0) = 1 stays after the max shift), no clamp (hinge_proxynca=False); PyCIL copies it. The default is
  "official", against the paper, because the paper's loss with a *learned* eta is degenerate: the similarities are
  at most 0 ("distance") or 1 ("cosine"), so y_y - delta rarely exceeds the negatives and lowering eta lowers the
  loss; with two classes the clamped loss is 0 at eta = 0. Measured on split-digits (memory 200, SGD lr 0.1, 10
  epochs): with "paper" eta ends at -4.8 and the final accuracy is 10.0 %, with "official" eta grows to 14.1 and the
  accuracy is 91.5 % (Adam lr 0.001: eta hardly moves, 36.8 % against 70.4 %). "paper" stays an option, to study it.
- the similarity (`similarity`): the paper writes a cosine <theta, h>; the CIFAR options file uses
  `neg_stable_cosine_distance`, -||theta - h||^2 = 2 cos - 2 of the normalised vectors. Default "distance", the
  code's: delta = 0.6 and eta's initial value 1 were tuned with it (PyCIL's plain cosine falls short of the paper).
- POD-spatial as the code computes it (activations squared, the width- and height-pooled sums concatenated,
  L2-normalised, the unsquared L2 distance, the mean over samples and over stages). The official maps are the
  pre-ReLU outputs of the last block of each stage plus a fourth one-block stage (ResNet-32 "rebuffi", last_relu
  False), its embedding the pre-ReLU pooled map; ours are what the backbone's `stages` give (the library's ResNets:
  the three stages' post-ReLU outputs, the embedding their pooled last map).
- On an MLP the "maps" are vectors (no width or height): POD-spatial would treat a (B, C) output as a (B, C, 1, 1)
  map, both pooled sums being the squared activations themselves, and the loss the L2 distance between the
  normalised squared activations of each hidden layer: no pooling is left, every unit's share of the layer's energy
  is pinned, with a gradient of constant size however close the two are. Measured, it blocks the new classes (class-IL
  split-MNIST, MLP 400-400, memory 2,000, one seed: 51.8 % against 93.0 % with POD-flat alone and replay's
  93.3 %; split-digits, memory 200: 70.4 % against 97.4 % with POD-flat alone). So a backbone whose stages give vectors is refused in one line before any training (`check`, one
  forward pass on two inputs) unless lambda_spatial=0 (POD-flat alone) or spatial_on_vectors=True (the degenerate
  form, to study it); a backbone that declares no stages is refused in `__init__` unless lambda_spatial=0.
- Features: the official network feeds the LSC and POD-flat the pre-ReLU pooled map ("classifier_no_act",
  "extract_no_act"); so do we by default (`remove_last_relu=True`: `remove_final_activation()`, the backbone contract
  LUCIR uses; a backbone without it then needs remove_last_relu=False). Measured on the digits as 1x8x8 images
  (resnet20, memory 200, SGD 0.05, one seed): 95.2 % with it against 92.8 % with the post-ReLU features (replay
  90.8 %); with batches of 128 and 4 epochs (few steps) 78.0 % against 38.9 % (replay 79.3 %); split-MNIST with
  resnet20 (500 samples per task, memory 200, SGD 0.05, 4 epochs) 42.8 % against 21.0 % (replay 47.3 %). On
  non-negative features every cosine is >= 0 and the classes share one orthant. The MLP (POD-flat alone) goes the
  other way: 87.7 % against 93.0 % (replay 93.3 %).
- The code's classifier fine-tuning trains through the network in training mode on augmented memory batches (its
  batch-norm statistics move); ours trains the proxies on the memory's features computed once, the backbone in
  evaluation mode (nothing but the proxies changes), as `bic.py` and the balanced head do.
- k-means: scikit-learn's KMeans, as the code, with one seeding (n_init=1) where the code kept the default of its
  day (ten seedings, the best kept: ten times the cost), and Elkan's iterations as that default (`models.lsc.kmeans`);
  the centres of the normalised features, not normalised again, as the code.
Color jitter and the cosine schedule are the training configuration's (`--schedule cosine`), not the method's.

Measured (one seed; docs/methods/exemplars.md has the commands), with the post-ReLU features (remove_last_relu=False,
before it became the default): class-IL split-MNIST with the MLP and POD-flat alone 93.0 % (replay 93.3 %); with
resnet20 on 500 samples per task, memory 200, SGD 0.05, 4 epochs, 21.0 % against replay's 47.3 %, the old classes lost
even without any distillation (9.0 %): not verified against the paper's numbers.

The old model's outputs (its embedding and pooled maps) are recorded once per step when inputs are not augmented
(the pooled maps are small: C x (H + W) per stage), computed per batch by a kept copy when they are.
"""

import math

import torch
import torch.nn.functional as F

from ..checks import check_choice, check_float, check_int, check_weight
from ..errors import ConfigError
from ..inputs import in_order
from ..models.cosine import mean_cosine_distance
from ..models.lsc import SIMILARITIES, LocalSimilarityHead, kmeans
from ..models.stages import StageOutputs, remove_final_activation, stage_modules
from .replay import Replay

NCA_VARIANTS = ("paper", "official")
CLASSIFIERS = ("lsc", "ncm")
FINETUNE_MOMENTUM, FINETUNE_WEIGHT_DECAY, FINETUNE_BATCH = 0.9, 5e-4, 128  # the official CIFAR fine-tuning


# ---------------------------------------------------------------------- the losses
def pod_pooled(h: torch.Tensor) -> torch.Tensor:
    """Phi(h): the squared map summed over its width (C x H) and over its height (C x W), concatenated and
    L2-normalised per sample. A map of shape (B, C) (a vector) is (B, C, 1, 1), (B, C, L) is (B, C, L, 1)."""
    if h.dim() < 2 or h.dim() > 4:
        raise ConfigError(f"POD-spatial pools maps of shape (batch, channels[, height[, width]]), got {tuple(h.shape)}")
    h = h.reshape(*h.shape, *([1] * (4 - h.dim())))
    a = h.pow(2)
    pooled = torch.cat([a.sum(3).flatten(1), a.sum(2).flatten(1)], 1)
    return F.normalize(pooled, dim=1)


def pod_spatial(old: list[torch.Tensor], new: list[torch.Tensor]) -> torch.Tensor:
    """mean over stages of mean over samples of || Phi_old - Phi_new ||_2, from pooled maps (`pod_pooled`)."""
    if len(old) != len(new) or not old:
        raise ConfigError(f"POD-spatial compares the same stages: {len(old)} old maps, {len(new)} new")
    return torch.stack([(a - b).norm(dim=1).mean() for a, b in zip(old, new)]).mean()


def pod_flat(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """mean over samples of 1 - cos(old embedding, new embedding) (the code's cosine_embedding_loss with target 1)."""
    return mean_cosine_distance(old, new)


def nca_loss(similarities: torch.Tensor, targets: torch.Tensor, scale, margin: float,
             variant: str = "paper") -> torch.Tensor:
    """The NCA loss with a margin on the class similarities y (batch, classes); `variant` as the module docstring."""
    rows = torch.arange(len(targets), device=targets.device)
    if similarities.shape[1] < 2:  # one class: nothing to tell it from
        return similarities.sum() * 0
    if variant == "paper":
        z = scale * similarities
        positive = z[rows, targets] - scale * margin
        negatives = z.masked_fill(F.one_hot(targets, z.shape[1]).bool(), float("-inf"))
        return (torch.logsumexp(negatives, 1) - positive).clamp_min(0).mean()
    z = scale * (similarities - margin)  # the official code: every similarity, the margin cancels
    z = z - z.max(1, keepdim=True).values
    positive = z[rows, targets]
    denominator = z - F.one_hot(targets, z.shape[1]).to(z.dtype) * positive[:, None]  # zeroed, not removed
    return (torch.logsumexp(denominator, 1) - positive).mean()


# ---------------------------------------------------------------------- the method
class PODNet(Replay):
    name = "podnet"
    distills = True
    settings = ("class",)

    def __init__(self, model, setting: str = "class", memory: int | None = None, memory_per_class: int | None = None,
                 selection: str = "herding", lambda_spatial: float = 3.0, lambda_flat: float = 1.0,
                 proxies: int = 10, margin: float = 0.6, nca: str = "official", similarity: str = "distance",
                 imprint: bool = True, finetune_epochs: int = 20, finetune_lr: float = 0.05,
                 grad_clamp: float = 5.0, classifier: str = "lsc", spatial_on_vectors: bool = False,
                 remove_last_relu: bool = True):
        """memory: the total budget (2,000 on CIFAR-100; "fixed_memory" in the code, 20 per class, is
        memory_per_class=20); selection: herding (the paper) or random; lambda_spatial, lambda_flat: lambda_c = 3,
        lambda_f = 1, each times sqrt(N seen / T new); proxies: K per class (10); margin: delta (0.6); nca:
        "official" (the default, the code's: the margin on every similarity, where it cancels, issue #59) or "paper"
        (Eq. 9: the margin on the target only, the target out of the denominator, clamped at 0; with the learned
        scale it drives the scale to 0 and below: see the module docstring); similarity: "distance" (-||theta - h||^2 of the
        normalised vectors, the code's) or "cosine" (the paper's text); imprint: new proxies by k-means on the new
        class's normalised features (False: random); finetune_epochs, finetune_lr: the classifier's class-balanced
        fine-tuning on the memory after each step (20, 0.05; 0 epochs: none); grad_clamp: every gradient clamped to
        [-c, c] (5; 0: none); classifier: "lsc" (the LSC's argmax, "CNN") or "ncm" (nearest mean of exemplars, "NME");
        spatial_on_vectors: run POD-spatial on stages that give vectors (an MLP's hidden layers), where it degenerates
        to the distance of the normalised squared activations (False: such a backbone is refused unless
        lambda_spatial=0); remove_last_relu: features (and the last stage's map) taken before the backbone's last
        ReLU, as the official code's (`remove_final_activation()`, the contract LUCIR uses; False: as the backbone
        gives them)."""
        if setting != "class":
            raise ConfigError(f"podnet is a class-incremental method (one growing head, no task id); got the "
                              f"{setting!r} setting: use --setting class")
        check_choice("podnet classifier", classifier, CLASSIFIERS)
        super().__init__(model, setting, memory, memory_per_class, selection, "union",
                         "softmax" if classifier == "lsc" else "ncm")
        self.lambda_spatial = check_weight("lambda_spatial", lambda_spatial)
        self.lambda_flat = check_weight("lambda_flat", lambda_flat)
        self.proxies = check_int("proxies", proxies)
        self.margin = check_weight("margin", margin)
        self.nca = check_choice("podnet nca", nca, NCA_VARIANTS)
        self.similarity = check_choice("podnet similarity", similarity, SIMILARITIES)
        self.imprint = bool(imprint)
        self.finetune_epochs = check_int("finetune_epochs", finetune_epochs, low=0)
        self.finetune_lr = check_float("finetune_lr", finetune_lr)
        self.grad_clamp = check_weight("grad_clamp", grad_clamp)
        self.spatial_on_vectors = bool(spatial_on_vectors)
        self._maps_checked = False
        if self.lambda_spatial > 0:  # refused here, before any training, rather than at the second task
            stage_modules(model.backbone, "podnet's POD-spatial (lambda_spatial > 0)")
        if not isinstance(remove_last_relu, bool):
            raise ConfigError(f"podnet remove_last_relu must be true or false, got {remove_last_relu!r}")
        if remove_last_relu:
            remove_final_activation(model.backbone, "podnet")
        self.remove_last_relu = remove_last_relu
        if model.head.out_features:
            raise ConfigError("podnet replaces the model's head with its local similarity classifier: give it a "
                              "model whose head has no outputs yet")
        model.head = LocalSimilarityHead(model.head.in_features, self.proxies, self.similarity).to(self._device)
        self._clamped = None  # the parameters whose gradients are clamped, this step

    def check(self, scenario):
        super().check(scenario)
        if self.model.head.out_features > sum(self.sizes):  # preallocate_head grew it after __init__
            raise ConfigError("podnet grows its classifier class by class (new proxies imprinted): a head with every "
                              "output from the start (preallocate_head) is not supported")
        if self.lambda_spatial and not self.spatial_on_vectors and not self._maps_checked:
            self.check_maps(scenario.tasks[0].x_train)

    @torch.no_grad()
    def check_maps(self, x):
        """POD-spatial pools maps over their width and height: a stage that gives vectors is refused (one forward pass
        on two inputs, before any training), unless spatial_on_vectors."""
        self.model.eval()
        with StageOutputs(self.model.backbone, "podnet") as maps:
            self.model.backbone(next(iter(in_order(x, 2, self._device))))
        names = self.model.backbone.stages
        flat = [f"{name} {tuple(h.shape[1:])}" for name, h in zip(names, maps) if h.dim() < 3]
        if flat:
            raise ConfigError(f"podnet: POD-spatial pools maps over their width and height, and the stages "
                              f"{', '.join(flat)} of {type(self.model.backbone).__name__} give vectors, where it only "
                              "pins each unit's normalised squared activation (it then blocks the new classes: "
                              "docs/methods/exemplars.md); use a convolutional backbone (--backbone resnet20), "
                              "--param lambda_spatial=0 (POD-flat alone) or --param spatial_on_vectors=true")
        self._maps_checked = True

    # ------------------------------------------------------------------ before the step: proxies
    def before_task(self, task):
        self._clamped = None
        super().before_task(task)  # the old model kept (second step on), the head grown by the new classes
        head = self.model.head
        for part in head.parts[:-1]:
            part.requires_grad_(False)  # the old classes' proxies do not move during the step

    @torch.no_grad()
    def imprint_proxies(self, task, features: torch.Tensor | None = None):
        """Each new class's K proxies: k-means centres of its normalised features (the model before the step: the
        recorded ones, `features`, or computed here when none were), times the mean norm of the proxies already
        there."""
        head = self.model.head
        x, targets, _ = Replay.new_task_data(self, task)
        features = F.normalize(self.features(x) if features is None else features, dim=1)
        targets = targets.to(features.device)
        norm = torch.cat([part.weight for part in head.parts[:-1]]).norm(dim=1).mean()
        generator = torch.Generator().manual_seed(self.memory.seed * 7 + 104729 * task.id)
        new = head.parts[-1].weight
        first = self.offsets[-1]
        for c in range(task.n_classes):
            mine = features[targets == first + c]
            if not len(mine):
                continue  # no sample to imprint from: its proxies stay random
            centres = kmeans(mine, self.proxies, generator)
            new[c * self.proxies:(c + 1) * self.proxies] = centres.to(new.dtype) * norm

    # ------------------------------------------------------------------ the step's loss
    def training_data(self, task):
        old_model, self.old_model = self.old_model, None
        data = super().training_data(task)  # the new data first, then the memory; nothing recorded
        self.old_model = old_model
        recorded = []
        if old_model is not None and not self.augmented_inputs:
            recorded = [torch.cat(parts) for parts in zip(*(self.old_outputs(b) for b in in_order(data[0], 1024)))]
            self.old_model = None  # recorded once: nothing old outlives this call
        if self.imprint and task.id > 0:  # before any step, from the recorded embedding where there is one
            n_new = len(Replay.new_task_data(self, task)[0])
            self.imprint_proxies(task, recorded[0][:n_new] if recorded else None)
        return (*data, *recorded)

    def outputs(self, model, x, stages: bool):
        """(embedding, pooled maps of the stages) of `model` on `x`, from the one forward pass."""
        if not stages:
            return model.backbone(x), []
        with StageOutputs(model.backbone, "podnet") as maps:
            features = model.backbone(x)
        return features, [pod_pooled(h) for h in maps]

    @torch.no_grad()
    def old_outputs(self, x):
        """The old model's embedding and pooled maps (only what the loss reads)."""
        features, pooled = self.outputs(self.old_model, x.to(self._device), self.lambda_spatial > 0)
        return (features, *pooled)

    def loss(self, x, targets, task_ids, *recorded):
        if self.old_model is not None:
            recorded = self.old_outputs(x)
        distil = bool(recorded)
        features, pooled = self.outputs(self.model, x, distil and self.lambda_spatial > 0)
        loss = nca_loss(self.seen(self.model.head(features)), targets, self.model.head.scale, self.margin, self.nca)
        if not distil:
            return loss
        factor = math.sqrt(self.output_mask.shape[1] / self.sizes[-1])  # sqrt(N seen / T new)
        old_features, *old_pooled = recorded
        if self.lambda_flat:
            loss = loss + self.lambda_flat * factor * pod_flat(old_features, features)
        if self.lambda_spatial:
            loss = loss + self.lambda_spatial * factor * pod_spatial(old_pooled, pooled)
        return loss

    def before_step(self):
        if not self.grad_clamp:
            return
        if self._clamped is None:
            self._clamped = [p for p in self.model.parameters() if p.requires_grad]
        for p in self._clamped:
            if p.grad is not None:
                p.grad.clamp_(-self.grad_clamp, self.grad_clamp)

    # ------------------------------------------------------------------ after the step: memory, balanced fine-tuning
    def after_task(self, task):
        super().after_task(task)  # the memory now holds every class seen, equally (and the class means for NCM)
        if task.id > 0 and self.finetune_epochs:
            self.finetune_classifier(task)

    def finetune_classifier(self, task):
        """Every proxy trained on the memory's features (computed once), NCA loss, eta fixed."""
        head = self.model.head
        x, targets, _ = self.memory.data()
        features = self.features(x)
        targets = targets.to(features.device)
        params = [part.weight for part in head.parts]
        head.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.SGD(params, lr=self.finetune_lr, momentum=FINETUNE_MOMENTUM,
                                    weight_decay=FINETUNE_WEIGHT_DECAY)
        generator = torch.Generator().manual_seed(self.memory.seed + 15485863 * task.id)
        for _ in range(self.finetune_epochs):
            order = torch.randperm(len(targets), generator=generator).to(features.device)
            for batch in order.split(FINETUNE_BATCH):
                loss = nca_loss(self.seen(head(features[batch])), targets[batch], head.scale.detach(), self.margin,
                                self.nca)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clamp:
                    for p in params:
                        p.grad.clamp_(-self.grad_clamp, self.grad_clamp)
                optimizer.step()
        head.requires_grad_(True)

    # ------------------------------------------------------------------ results
    def describe(self):
        stages = getattr(self.model.backbone, "stages", None)
        return {**super().describe(), "classifier": "lsc" if self.classifier == "softmax" else "ncm",
                "proxies": self.proxies, "similarity": self.similarity, "margin": self.margin, "nca": self.nca,
                "scale": self.model.head.scale.item(), "lambda_spatial": self.lambda_spatial,
                "lambda_flat": self.lambda_flat, "stages": list(stages) if stages else [], "imprint": self.imprint,
                "finetune_epochs": self.finetune_epochs, "finetune_lr": self.finetune_lr,
                "grad_clamp": self.grad_clamp, "spatial_on_vectors": self.spatial_on_vectors,
                "remove_last_relu": self.remove_last_relu}
