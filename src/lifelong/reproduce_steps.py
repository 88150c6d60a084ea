"""Reproductions whose figure is the accuracy on all classes seen after each step (`accuracy_seen_classes`), mean
+- std over seeds, beside the paper's numbers:

BiC's ablation (Wu et al., CVPR 2019, "Large Scale Incremental Learning", Table 6) on CIFAR-100, and the same four
rows on the data sets at hand. Rows: baseline-1 (classification loss with exemplars), baseline-2 (+ distillation),
BiC (+ bias removal), upper bound (+ the last layer retrained on all data of old and new classes): `bic` with its
ablation switches.

    lifelong reproduce wu2019-bic-cifar100 --data-dir DATA --seeds 1                # the paper's protocol (a GPU)
    lifelong reproduce wu2019-bic-cifar100 --data-dir DATA --epochs 2               # scaled down
    lifelong reproduce wu2019-bic-split-mnist --data-dir DATA --seeds 3             # minutes on a CPU

Few-shot class-incremental learning (Tao et al., CVPR 2020, TOPIC's table on CIFAR-100), and the same methods on
Omniglot: Ft-CNN (finetune on the shots), Joint-CNN (joint: all data of every class seen), iCaRL, NCM (replay with
the nearest-mean-of-exemplars classifier), the decoupled cosine prototypes, TOPIC, CEC and FACT; besides each
session's accuracy, their mean and the drop (first minus last), as FSCIL papers report them. FACT's miniImageNet and
CUB-200 tables: the cosine prototypes and FACT.

    lifelong reproduce tao2020-fscil-cifar100 --data-dir DATA --seeds 1             # the paper's protocol (a GPU)
    lifelong reproduce fscil-omniglot --data-dir DATA --seeds 3                     # minutes on a CPU
    lifelong reproduce fscil-mini-imagenet --data-dir DATA --seeds 1                # FACT's miniImageNet (a GPU)
    lifelong reproduce fscil-cub200 --data-dir DATA --seeds 1                       # FACT's CUB-200 (a GPU)

LUCIR, WA and PODNet on CIFAR-100 (Hou et al. 2019, Zhao et al. 2020, Douillard et al. 2020): ResNet-32, 50 classes
then 5 or 10 phases (LUCIR), 25 or 50 steps (PODNet, in its three published class orders), or 5 steps of 20 (WA), the
papers' recipes and memories; the table adds the average incremental accuracy (a protocol's `averages`: over every
step, and without the first as WA's paper reports it) beside the papers' published averages (`paper_averages`).

    lifelong reproduce hou2019-lucir-cifar100-5 --data-dir DATA --seeds 1           # the paper's protocol (a GPU)
    lifelong reproduce douillard2020-podnet-cifar100-50 --data-dir DATA             # PODNet's three orders

Every run is written to OUT/<name>_runs/<row>_<seed>.json as soon as it ends; the same command continues an
interrupted reproduction (finished runs are skipped); OUT/<name>.md, .json and .png are rewritten after each run.
"""

import functools
import statistics
import time
from pathlib import Path
from typing import Callable

from .catalog import REPRODUCTIONS
from .errors import ConfigError
from .experiment import run_experiment
from .grid import run_grid
from .results import machine, mean_spread, read_runs, thread_note, time_left, versions, write_json
from .plotting import line_styles, save_png
from .storage import lock_folder, write_text
from .benchmarks import make_scenario

BIC_ROWS = {  # row -> (label, method, its options)
    "baseline-1": ("baseline-1: classification loss with exemplars", "bic",
                   {"distill": False, "bias_correction": False}),
    "baseline-2": ("baseline-2: + distillation", "bic", {"bias_correction": False}),
    "bic": ("BiC: + bias removal", "bic", {}),
    "upper-bound": ("upper bound: + last layer retrained on all data", "bic",
                    {"bias_correction": False, "retrain_head": True}),
}
FSCIL_ROWS = {  # TOPIC's table's rows, and the decoupled baseline that later papers showed to beat it
    "ft-cnn": ("Ft-CNN: fine-tuning on the shots", "finetune", {}),
    "joint-cnn": ("Joint-CNN: all data of every class seen (upper bound)", "joint", {}),
    "icarl": ("iCaRL: 5 exemplars per class, nearest mean of exemplars", "icarl", {"memory_per_class": 5}),
    # TOPIC's NCM* row is LUCIR (Hou et al. 2019) with its nearest-mean classifier; replay-ncm: the plain rehearsal
    # with nearest means that stood in for it before LUCIR was in the library
    "ncm": ("NCM*: LUCIR with its nearest-mean classifier, 5 exemplars per class", "lucir",
            {"memory_per_class": 5, "classifier": "nme"}),
    "replay-ncm": ("replay of 5 exemplars per class, nearest mean of exemplars", "replay",
                   {"memory_per_class": 5, "classifier": "ncm"}),
    "prototype": ("decoupled cosine prototypes (frozen base backbone)", "prototype", {}),
    "topic": ("TOPIC: neural gas, anchor loss, min-max loss", "topic", {}),
    # TOPIC's ablation: its own (the paper reports AL alone), each loss alone, neither (fine-tuning with nearest-node
    # prediction), and the max term blind to the graph (the nearest other-label nodes instead of the edges)
    "topic-anchor-only": ("TOPIC, anchor loss only", "topic", {"minmax_loss": False}),
    "topic-minmax-only": ("TOPIC, min-max loss only", "topic", {"anchor_loss": False}),
    "topic-neither": ("TOPIC's nodes, neither loss (fine-tuning, nearest-node prediction)", "topic",
                      {"anchor_loss": False, "minmax_loss": False}),
    "topic-no-edges": ("TOPIC, edges ignored (max term from the 5 nearest other-label nodes)", "topic",
                       {"use_edges": False}),
    # CEC (Zhang et al. 2021), 500 pseudo-incremental episodes (a tenth of its code's; the CIFAR-100 table: all)
    "cec": ("CEC: prototypes adapted by an attention graph meta-trained on pseudo-incremental episodes", "cec", {}),
    # FACT (Zhou et al. 2022) with its defaults, the README's CIFAR-100 command (balance 0.001, alpha 0.5)
    "fact": ("FACT: virtual prototypes reserved in the base session, eta-mixed prediction", "fact", {}),
}
# CEC's README commands (icoz69/CEC-CVPR2021): 100 epochs of 50 episodes; the encoder's rate 0.002 on CIFAR-100 and
# 0.0002 on miniImageNet and CUB-200, whose episodes have 10 queries per class. Its paper's last sessions: CIFAR-100
# 49.14 (the curve below), miniImageNet 47.63, CUB-200 52.28
CEC_README = {"cifar100": {"meta_epochs": 100},
              "mini-imagenet": {"meta_epochs": 100, "encoder_lr": 0.0002},
              "cub200": {"meta_epochs": 100, "encoder_lr": 0.0002, "queries": 10}}
FSCIL_ROWS_OFFICIAL_CEC = {**FSCIL_ROWS, "cec": (FSCIL_ROWS["cec"][0], "cec", CEC_README["cifar100"])}
# miniImageNet and CUB-200: the cosine prototypes and FACT with its README's commands for them (miniImageNet: balance
# 0.01, alpha 0.5, the virtual losses from epoch 150 of 1000, here 15 of the scenario's 100; CUB-200: balance 0.01,
# no -alpha given, so train.py's 2, from epoch 0)
FSCIL_FACT_ROWS = {
    "mini-imagenet": {"prototype": FSCIL_ROWS["prototype"],
                      "cec": ("CEC (its paper's last session: 47.63)", "cec", CEC_README["mini-imagenet"]),
                      "fact": (FSCIL_ROWS["fact"][0], "fact", {"balance": 0.01, "alpha": 0.5, "loss_iter": 15})},
    "cub200": {"prototype": FSCIL_ROWS["prototype"],
               "cec": ("CEC (its paper's last session: 52.28)", "cec", CEC_README["cub200"]),
               "fact": (FSCIL_ROWS["fact"][0], "fact", {"balance": 0.01, "alpha": 2.0})},
}

# The class-incremental methods after BiC against it and the baselines, with the same memory (issue: "where each
# wins"). WA twice: the paper's defaults, and the official code's combination (WA's docstring says which is which)
WA_CODE = {"kd_weight": "steps", "norm": "l1", "clip_gamma": True, "nonnegative_weights": True, "head_bias": False,
           "fresh_head": True}
LEAGUE_ROWS = {
    "finetune": ("fine-tuning (no memory)", "finetune", {}),
    "replay": ("replay: the memory's samples with the task's", "replay", {}),
    "icarl": ("iCaRL", "icarl", {}),
    "bic": ("BiC", "bic", {}),
    "wa": ("WA (the paper's defaults)", "wa", {}),
    "wa-code": ("WA (the official code's combination)", "wa", WA_CODE),
    "lucir": ("LUCIR (cosine head, less-forget, margin ranking)", "lucir", {}),
    "podnet": ("PODNet (POD-flat alone on the MLP, whose hidden layers are vectors; on ResNet-20 POD-spatial too)",
               "podnet", {}),
    "joint": ("joint: all data of every class seen (upper bound)", "joint", {}),
}
_ADAM_4 = dict(epochs=4, lr=0.001, optimizer="adam", batch_size=128)  # Hsu et al.'s split-MNIST protocol
# the memory-free rows take no memory option: the protocol's memory goes to the rows that keep exemplars
NO_MEMORY_ROWS = ("finetune", "joint")


def _league(scenario: str, train: dict, backbone: str | None = None, method_options: dict | None = None,
            **memory) -> dict:
    """A league protocol. On the MLP (no backbone named) PODNet runs POD-flat alone: an MLP's hidden layers are
    vectors, with no width or height to pool (`podnet` refuses POD-spatial on them); a convolutional backbone
    (`backbone`) has its spatial distillation."""
    options = dict(method_options or {})
    if backbone is None:
        options["podnet"] = {"lambda_spatial": 0.0, **options.get("podnet", {})}
    return dict(rows=LEAGUE_ROWS, scenario=scenario, train=train, league=True, backbone=backbone,
                method_options=options, **memory)


# The CIFAR-100 protocols of LUCIR, WA and PODNet: ResNet-32, the papers' recipes and memories, their average
# incremental accuracy (the mean over the steps of the accuracy on the classes seen, the first step included; WA's
# paper leaves it out) beside ours. LUCIR's official code (hshustc/CVPR19_Incremental_Learning, run.sh and
# class_incremental_cosine_cifar100.py): 50 base classes then 5 or 10 phases in iCaRL's seed-1993 order, 160 epochs,
# SGD lr 0.1 / 10 at 80 and 120, momentum 0.9, weight decay 5e-4, batch 128, 20 herded exemplars per class (the
# memory grows), lambda_base 5, K 2, m 0.5 (lucir's defaults), sigma starting at 1 as in the code (lucir's default 10
# is for Adam at 1e-3, under which sigma hardly moves; here SGD at 0.1 trains it as the code does)
LUCIR_ROWS = {"lucir": ("LUCIR (CNN: the cosine classifier)", "lucir", {"sigma": 1.0})}
LUCIR_TRAIN = dict(epochs=160, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4, batch_size=128,
                   schedule="step", milestones=(0.5, 0.75), gamma=0.1)
# WA's official code (bwbwzhao/Weight-Aligning, script.sh and main.py): the classes shuffled with
# np.random.seed(1993) (iCaRL's order), 2,000 exemplars, 250 epochs, SGD lr 0.1 / 10 at 100, 150 and 200, momentum
# 0.9, weight decay 1e-4 (the code divides it by t + 1 at step t: not followed, one weight decay for every step),
# batch 32. Two rows: the paper's reading (wa's defaults) and the code's combination (WA_CODE), which gave the
# published numbers
WA_ROWS = {"wa": LEAGUE_ROWS["wa"], "wa-code": LEAGUE_ROWS["wa-code"]}
WA_TRAIN = dict(epochs=250, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=1e-4, batch_size=32,
                schedule="step", milestones=(0.4, 0.6, 0.8), gamma=0.1)
# PODNet's official options (arthurdouillard/incremental_learning.pytorch @ c09fc54,
# options/podnet/podnet_cnn_cifar100.yaml with options/data/cifar100_3orders.yaml and the README's command
# `--initial-increment 50 --increment 1 --fixed-memory`): 160 epochs, SGD lr 0.1 with a cosine schedule, weight
# decay 5e-4, batch 128 (its parser's default); --fixed-memory keeps memory_size // total classes = 2,000 // 100 =
# 20 exemplars per class (so 1,000 after the base step, 2,000 at the end); podnet's defaults are the yaml's (lambda_c
# 3, lambda_f 1, 10 proxies, NCA margin 0.6, imprinting, the classifier fine-tuned 20 epochs at lr 0.05). Its paper
# reports the mean +- std over the three class orders of cifar100_3orders.yaml (each run with seed 1): here the
# run with seed s takes order s mod 3 (seeds 0, 1, 2: the three orders; one seed: the first order)
PODNET_ROWS = {"podnet": ("PODNet (CNN: the local similarity classifier)", "podnet", {})}
PODNET_TRAIN = dict(epochs=160, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4, batch_size=128,
                    schedule="cosine")
PODNET_CIFAR100_ORDERS = (
    (87, 0, 52, 58, 44, 91, 68, 97, 51, 15, 94, 92, 10, 72, 49, 78, 61, 14, 8, 86, 84, 96, 18, 24, 32, 45, 88, 11, 4,
     67, 69, 66, 77, 47, 79, 93, 29, 50, 57, 83, 17, 81, 41, 12, 37, 59, 25, 20, 80, 73, 1, 28, 6, 46, 62, 82, 53, 9,
     31, 75, 38, 63, 33, 74, 27, 22, 36, 3, 16, 21, 60, 19, 70, 90, 89, 43, 5, 42, 65, 76, 40, 30, 23, 85, 2, 95, 56,
     48, 71, 64, 98, 13, 99, 7, 34, 55, 54, 26, 35, 39),
    (58, 30, 93, 69, 21, 77, 3, 78, 12, 71, 65, 40, 16, 49, 89, 46, 24, 66, 19, 41, 5, 29, 15, 73, 11, 70, 90, 63, 67,
     25, 59, 72, 80, 94, 54, 33, 18, 96, 2, 10, 43, 9, 57, 81, 76, 50, 32, 6, 37, 7, 68, 91, 88, 95, 85, 4, 60, 36,
     22, 27, 39, 42, 34, 51, 55, 28, 53, 48, 38, 17, 83, 86, 56, 35, 45, 79, 99, 84, 97, 82, 98, 26, 47, 44, 62, 13,
     31, 0, 75, 14, 52, 74, 8, 20, 1, 92, 87, 23, 64, 61),
    (71, 54, 45, 32, 4, 8, 48, 66, 1, 91, 28, 82, 29, 22, 80, 27, 86, 23, 37, 47, 55, 9, 14, 68, 25, 96, 36, 90, 58,
     21, 57, 81, 12, 26, 16, 89, 79, 49, 31, 38, 46, 20, 92, 88, 40, 39, 98, 94, 19, 95, 72, 24, 64, 18, 60, 50, 63,
     61, 83, 76, 69, 35, 0, 52, 7, 65, 42, 73, 74, 30, 41, 3, 6, 53, 13, 56, 70, 77, 34, 97, 75, 2, 17, 93, 33, 84,
     99, 51, 62, 87, 5, 15, 10, 78, 67, 44, 59, 85, 43, 11),
)
AVERAGES = {"all": "avg", "after-first": "avg w/o first"}  # the table's average columns (a protocol's `averages`)


def _lucir(phases: int, average: float) -> dict:
    return dict(rows=LUCIR_ROWS, scenario="split-cifar100", n_tasks=phases + 1, base_classes=50,
                class_order_seed=1993, backbone="resnet32", memory_per_class=20, train=LUCIR_TRAIN,
                averages=("all",), paper_averages={"lucir": (average,)})


def _podnet(steps: int, average: str) -> dict:
    return dict(rows=PODNET_ROWS, scenario="split-cifar100", n_tasks=steps + 1, base_classes=50,
                class_orders=PODNET_CIFAR100_ORDERS, seeds=len(PODNET_CIFAR100_ORDERS), backbone="resnet32",
                memory_per_class=20, train=PODNET_TRAIN, averages=("all",), paper_averages={"podnet": (average,)})


# name -> protocol. `rows`: the table's rows; `paper`: the paper's accuracy (%) on all classes seen after each step,
# per row; `fscil`: the table adds each row's mean over the sessions and its drop (first minus last); `averages`: the
# average incremental accuracy columns ("all", "after-first"), `paper_averages` the paper's, per row; `base_classes`:
# the first task's classes; `class_orders`: the paper's class orders, seed s running order s mod their number;
# `seeds`: `lifelong reproduce`'s default number of seeds (5 where not given).
PROTOCOLS = {
    "wu2019-bic-cifar100": dict(
        rows=BIC_ROWS, scenario="split-cifar100", n_tasks=5, class_order_seed=1993, backbone="resnet32", memory=2000,
        # 250 epochs, lr 0.1 divided by 10 at 100, 150 and 200; weight decay 2e-4; batch 128; T = 2
        train=dict(epochs=250, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=2e-4, batch_size=128,
                   schedule="step", milestones=(0.4, 0.6, 0.8), gamma=0.1),
        paper={"baseline-1": (84.40, 68.30, 55.10, 48.52, 39.83), "baseline-2": (85.05, 72.22, 59.41, 50.43, 40.34),
               "bic": (84.00, 74.69, 67.93, 61.25, 56.69), "upper-bound": (84.39, 76.15, 69.51, 64.03, 60.93)}),
    "wu2019-bic-split-mnist": dict(
        rows=BIC_ROWS, scenario="split-mnist", memory=200, train=dict(epochs=4, lr=0.001, optimizer="adam", batch_size=128)),
    "wu2019-bic-split-fashion": dict(
        rows=BIC_ROWS, scenario="split-fashion", memory=200, train=dict(epochs=4, lr=0.001, optimizer="adam", batch_size=128)),
    "wu2019-bic-split-omniglot": dict(
        # 15 training drawings per character: a total budget would ask more of each than there are at first, and
        # 9 stored against 14 new would leave no imbalance to correct. 1 stored against 14 new is the paper's
        # imbalance (20 exemplars against 500 new images per class on CIFAR-100 at the end, 25:1); its validation
        # share is 1:1, not 9:1, to keep one validation drawing per character
        rows=BIC_ROWS, scenario="split-omniglot", memory_per_class=2, method_options=dict(validation_share=0.5),
        train=dict()),
    "tao2020-fscil-cifar100": dict(
        # TOPIC's protocol: ResNet-20, 60 base classes, 8 sessions of 5-way 5-shot (the official index lists); the
        # base session as the scenario's defaults train it, the sessions at a tenth of the learning rate
        rows=FSCIL_ROWS_OFFICIAL_CEC, scenario="fscil-cifar100", backbone="resnet20", fscil=True, train=dict(),
        # Tao et al. 2020 (their repository's table, 10 runs): TOPIC, Ft-CNN, Joint-CNN, iCaRL*, NCM* (Hou et al.
        # 2019's LUCIR, with its nearest-mean classifier; ours is replay with nearest means, not LUCIR)
        paper={"topic": (64.10, 55.88, 47.07, 45.16, 40.11, 36.38, 33.96, 31.55, 29.37),
               "ft-cnn": (64.10, 36.91, 15.37, 9.80, 6.67, 3.80, 3.70, 3.14, 2.65),
               "joint-cnn": (64.10, 59.30, 54.90, 51.20, 48.10, 45.80, 42.80, 40.90, 38.90),
               "icarl": (64.10, 53.28, 41.69, 34.13, 27.93, 25.06, 20.41, 15.48, 13.73),
               "ncm": (64.10, 53.05, 43.96, 36.97, 31.61, 26.73, 21.23, 16.78, 13.54),
               "topic-anchor-only": (64.10, 56.03, 47.89, 42.99, 38.02, 34.60, 31.67, 28.35, 25.86),
               # CEC's own CIFAR-100 table (Zhang et al. 2021)
               "cec": (73.07, 68.88, 65.26, 61.19, 58.09, 55.57, 53.22, 51.34, 49.14),
               # FACT's own CIFAR-100 table (Zhou et al. 2022): last 52.10, mean 62.24
               "fact": (74.60, 72.09, 67.56, 63.52, 61.38, 58.36, 56.28, 54.24, 52.10)}),
    "fscil-omniglot": dict(rows=FSCIL_ROWS, scenario="fscil-omniglot", fscil=True, train=dict()),
    # the FSCIL protocols of miniImageNet (60 base classes + 8 sessions of 5-way 5-shot) and CUB-200 (100 + 10 of
    # 10-way 5-shot) as the scenarios train them (ResNet-20 from scratch, not the papers' ResNet-18, ImageNet-pre-
    # trained for CUB-200); FACT's own tables (Zhou et al. 2022): miniImageNet last 50.49, CUB-200 last 56.94
    "fscil-mini-imagenet": dict(
        rows=FSCIL_FACT_ROWS["mini-imagenet"], scenario="fscil-mini-imagenet", backbone="resnet20", fscil=True,
        train=dict(), paper={"fact": (72.56, 69.63, 66.38, 62.77, 60.60, 57.33, 54.34, 52.16, 50.49)}),
    "fscil-cub200": dict(
        rows=FSCIL_FACT_ROWS["cub200"], scenario="fscil-cub200", backbone="resnet20", fscil=True, train=dict(),
        paper={"fact": (75.90, 73.23, 70.84, 66.13, 65.56, 62.15, 61.74, 59.83, 58.41, 57.89, 56.94)}),
    "class-il-league-split-mnist-2000": _league("split-mnist", _ADAM_4, memory=2000),
    "class-il-league-split-mnist-200": _league("split-mnist", _ADAM_4, memory=200),
    "class-il-league-split-fashion-2000": _league("split-fashion", _ADAM_4, memory=2000),
    "class-il-league-split-fashion-200": _league("split-fashion", _ADAM_4, memory=200),
    # 2 drawings per character kept (of 15), and BiC's validation 1:1 (wu2019-bic-split-omniglot's reasons)
    "class-il-league-split-omniglot": _league("split-omniglot", {}, memory_per_class=2,
                                              method_options={"bic": {"validation_share": 0.5}}),
    # PODNet's spatial distillation on a convolutional backbone (ResNet-20 on the 1x28x28 characters)
    "class-il-league-split-omniglot-conv": _league("split-omniglot", {}, backbone="resnet20", memory_per_class=2,
                                                   method_options={"bic": {"validation_share": 0.5}}),
    # the same, 30 epochs a step: split-omniglot's 10 leave ResNet-20's first step at 39 % (+- 16), 30 reach its
    # plateau, 75 % (100: 75 %; benchmarks/results/conv_first_step.md)
    "class-il-league-split-omniglot-conv-30": _league("split-omniglot", {"epochs": 30}, backbone="resnet20",
                                                      memory_per_class=2,
                                                      method_options={"bic": {"validation_share": 0.5}}),
    "class-il-league-omniglot-964": _league("split-omniglot-964", {}, memory_per_class=2,
                                            method_options={"bic": {"validation_share": 0.5}}),
    # Hou et al. 2019 (CIFAR-100, 50 base classes): LUCIR's average incremental accuracy (CNN), 5 and 10
    # phases
    "hou2019-lucir-cifar100-5": _lucir(5, 63.42),
    "hou2019-lucir-cifar100-10": _lucir(10, 60.18),
    # Zhao et al. 2020 (WA), CIFAR-100 in 5 steps of 20 classes, 2,000 exemplars: the paper's average (66.6, Table 4)
    # leaves out the first step; its Table 2 row "CE + KD + WA" gives each step (83.5, 75.5, 68.7, 63.1, 59.2: arXiv
    # 1911.07053v1), whose mean with the first step, 70.0, is ours, not printed in the paper
    "zhao2020-wa-cifar100": dict(
        rows=WA_ROWS, scenario="split-cifar100", n_tasks=5, class_order_seed=1993, backbone="resnet32", memory=2000,
        train=WA_TRAIN, averages=("all", "after-first"), paper={"wa": (83.5, 75.5, 68.7, 63.1, 59.2)},
        paper_averages={"wa": (70.0, 66.6)}),
    # Douillard et al. 2020, Table 1 (CIFAR-100, 50 base classes, 20 exemplars per class): PODNet (CNN), mean +- std
    # over three class orders, 25 steps of 2 classes and 50 steps of 1 (arXiv 2004.13513v3; the issue that asked for
    # these tables quoted +- 1.11 and +- 0.37, the latter UCIR (NME)'s 50-step std: a row slip)
    "douillard2020-podnet-cifar100-25": _podnet(25, "60.72 +- 1.36"),
    "douillard2020-podnet-cifar100-50": _podnet(50, "57.98 +- 0.46"),
}


def memory_options(protocol: dict) -> dict:
    """The protocol's exemplar memory as bic's options: a total budget or a number per class."""
    return {key: protocol[key] for key in ("memory", "memory_per_class") if key in protocol}


def row_options(protocol: dict, row: str) -> dict:
    """A row's method options: the protocol's memory (not for the league's memory-free rows), the protocol's own
    options (the league's: per method), the row's."""
    _, method, options = protocol["rows"][row]
    if protocol.get("league"):
        memory = {} if row in NO_MEMORY_ROWS else memory_options(protocol)
        return {**memory, **protocol.get("method_options", {}).get(method, {}), **options}
    return {**memory_options(protocol), **protocol.get("method_options", {}), **options}


def memory_flag(protocol: dict) -> str:
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in memory_options(protocol).items())


def stem(name: str) -> str:
    return name.replace("-", "_")


def run_file(out: Path, name: str, row: str, seed: int) -> Path:
    return out / f"{stem(name)}_runs" / f"{row}_{seed}.json"


def load_runs(out: Path, name: str) -> dict:
    return read_runs(out / f"{stem(name)}_runs", lambda run: (run["row"], run["seed"]))


def reproduce_steps(name: str, rows: list[str] | None, seeds, out, data_dir=None, download: bool = True,
                    epochs: int | None = None, device: str = "cpu", log: Callable[[str], None] | None = None,
                    workers: int = 1, threads: int | None = None, ray_address: str | None = None) -> dict:
    """Run every (row, seed) of protocol `name` not already saved in `out`; returns the table's document.
    `workers`, `threads`, `ray_address`: how the runs are spread (`lifelong.grid.run_grid`)."""
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown reproduction {name!r}; choose from: {', '.join(PROTOCOLS)}")
    protocol = PROTOCOLS[name]
    rows = list(protocol["rows"]) if rows is None else rows
    unknown = [row for row in rows if row not in protocol["rows"]]
    if unknown:
        raise ConfigError(f"no row {', '.join(unknown)} in {name}; rows: {', '.join(protocol['rows'])}")
    scaled = {"epochs": epochs, **({"incremental_epochs": epochs} if protocol.get("fscil") else {})} if epochs else {}
    train = {**protocol["train"], **scaled}  # --epochs: every step's (FSCIL: the base session's and the sessions')
    out = Path(out)
    with lock_folder(out):  # one reproduction at a time in `out`: a second is refused, naming the first
        done = load_runs(out, name)
        for (row, seed), run in done.items():
            if row in rows and seed in seeds and run["train"]["epochs"] != train.get("epochs", run["train"]["epochs"]):
                raise ConfigError(f"{run_file(out, name, row, seed)} ran {run['train']['epochs']} epochs per step, not "
                                  f"{train['epochs']}: use another --out, or delete it to run it again")
        planned = [(row, seed) for seed in seeds for row in rows if (row, seed) not in done]
        jobs = [dict(row=row, seed=seed, method=protocol["rows"][row][1], options=row_options(protocol, row),
                     scenario=dict(name=protocol["scenario"], data_dir=data_dir, download=download,
                                   n_tasks=protocol.get("n_tasks"), class_order_seed=protocol.get("class_order_seed"),
                                   base_classes=protocol.get("base_classes"), class_order=seed_order(protocol, seed)),
                     backbone=protocol.get("backbone"), train=train, device=device) for row, seed in planned]
        began, finished = time.perf_counter(), []

        def done(job: dict, run: dict) -> None:  # here, as each run ends: its file, then the table
            write_json(run_file(out, name, job["row"], job["seed"]), run)
            save_table(out, name)
            finished.append(job)
            if log:
                curve = " ".join(f"{100 * a:.1f}" for a in run["accuracy_seen_classes"])
                log(f"[{len(finished)}/{len(jobs)}] {job['row']} seed {job['seed']}: {curve} ({run['wall_time_s']:.0f} s"
                    f"{time_left(time.perf_counter() - began, len(finished), len(jobs))})")

        try:
            run_grid(jobs, run_row, done, workers, threads, gpu=device != "cpu", ray_address=ray_address)
        finally:
            _scenario.cache_clear()  # the data set, read once per process for all its runs
        return save_table(out, name)


def seed_order(protocol: dict, seed: int) -> tuple[int, ...] | None:
    """The class order of the run with `seed` where the protocol lists the paper's orders (PODNet's three): order
    seed mod their number; None where the scenario's order (or `class_order_seed`) holds."""
    orders = protocol.get("class_orders")
    return tuple(orders[seed % len(orders)]) if orders else None


@functools.lru_cache(maxsize=1)
def _scenario(name: str, data_dir, download: bool, n_tasks, class_order_seed, base_classes=None, class_order=None):
    return make_scenario(name, data_dir=data_dir, download=download, n_tasks=n_tasks,
                         class_order_seed=class_order_seed, base_classes=base_classes,
                         class_order=None if class_order is None else list(class_order))


def run_row(job: dict) -> dict:
    """One run of the grid (here, in a worker process or in a Ray task): what its file saves."""
    scenario = _scenario(**job["scenario"])  # the data are read only when there is something to run
    started = time.perf_counter()
    details = []  # what the method keeps, after each step (TOPIC: its nodes and anchors)
    results = run_experiment(job["method"], scenario, "class", seed=job["seed"], device=job["device"], progress=False,
                             backbone=job["backbone"], method_options=job["options"],
                             loggers=[lambda r: details.append(r["method_details"])], **job["train"])
    return {"row": job["row"], "seed": job["seed"], "accuracy_seen_classes": results["accuracy_seen_classes"],
            "class_order": list(scenario.class_order),
            "classes_seen": [sum(len(c) for c in results["task_classes"][:k + 1])
                             for k in range(len(results["task_classes"]))],
            "method_options": job["options"], "train": results["config"], "method_details": results["method_details"],
            "method_details_per_step": details, "train_time_s": results["train_time_s"],
            "threads": results["threads"], "machine": results["machine"],
            "wall_time_s": time.perf_counter() - started}


def aggregate(runs: dict, row: str) -> tuple[list[float], list[float], int, list[int]] | None:
    curves = [r["accuracy_seen_classes"] for (r_row, _), r in sorted(runs.items()) if r_row == row]
    if not curves:
        return None
    steps = list(zip(*curves))
    means = [100 * statistics.mean(s) for s in steps]
    stds = [100 * statistics.stdev(s) if len(s) > 1 else 0.0 for s in steps]
    classes = next(r["classes_seen"] for (r_row, _), r in runs.items() if r_row == row)
    return means, stds, len(curves), classes


def protocol_classes(protocol: dict) -> list[int]:
    """The classes seen after each step, from the protocol (the table's columns before any run ends)."""
    n_tasks, base = protocol.get("n_tasks") or 5, protocol.get("base_classes")
    if base is None:
        return [100 * (k + 1) // n_tasks for k in range(n_tasks)]
    return [base + (100 - base) * k // (n_tasks - 1) for k in range(n_tasks)]


def averages(curve: list[float], which: tuple[str, ...]) -> list[float]:
    """The average incremental accuracy of a curve: over every step ("all") or without the first ("after-first")."""
    return [statistics.mean(curve if kind == "all" else curve[1:]) for kind in which]


def _cell(value) -> str:  # a paper's number: a float, or text as printed ("60.72 +- 1.36")
    return value if isinstance(value, str) else f"{value:.2f}"


def render(name: str, runs: dict, notes: str = "") -> str:
    protocol = PROTOCOLS[name]
    paper, rows, fscil = protocol.get("paper", {}), protocol["rows"], protocol.get("fscil", False)
    which, paper_averages = protocol.get("averages", ()), protocol.get("paper_averages", {})
    how = (f"`{memory_flag(protocol)}`, " if memory_options(protocol) else "") + \
        f"training {protocol['train'] or 'the scenario defaults'}"
    methods = ", ".join(dict.fromkeys(f"`{method}`" for _, method, _ in rows.values()))
    shape = (f" ({protocol['base_classes']} classes first, then {protocol['n_tasks'] - 1} steps)"
             if protocol.get("base_classes") else "")
    order = (f" Class order: the paper's {len(protocol['class_orders'])} orders, the run with seed s in order "
             f"s mod {len(protocol['class_orders'])}." if protocol.get("class_orders") else "")
    said = {"all": "avg: the mean over the steps", "after-first": "avg w/o first: the same without the first step"}
    lines = [f"# {REPRODUCTIONS[name]}", "",
             f"Protocol: `lifelong reproduce {name}`; scenario `{protocol['scenario']}`{shape}, methods {methods} with "
             f"the options of each row, {how}. Accuracy (%) on all classes seen after each step; ours: mean +- std "
             "over the seeds (n; one seed: its value)." + order
             + (" Mean: over the sessions; drop: first minus last." if fscil else "")
             + (" " + "; ".join(said[k] for k in which) + " (the average incremental accuracy)." if which else ""), ""]
    found = [aggregate(runs, row) for row in rows]
    classes = next((stats[3] for stats in found if stats), protocol_classes(protocol))
    extra = ["mean", "drop"] if fscil else [AVERAGES[k] for k in which]
    lines += ["| variant | " + " | ".join(map(str, classes + extra)) + " |",
              "|---|" + "---|" * (len(classes) + len(extra))]

    def summary(curve):  # FSCIL's mean over the sessions and drop; the average incremental accuracies
        return [statistics.mean(curve), curve[0] - curve[-1]] if fscil else averages(curve, which)

    for (row, (label, _, _)), stats in zip(rows.items(), found):
        if stats is not None:
            means, stds, n, _ = stats
            curves = [[100 * a for a in r["accuracy_seen_classes"]] for (r_row, _), r in sorted(runs.items())
                      if r_row == row]
            summaries = [_mean_std([summary(c)[k] for c in curves]) for k in range(len(extra))]
            lines.append(f"| {label} (ours, n={n}) | " + " | ".join(mean_spread(m, s, n) for m, s in zip(means, stds))
                         + "".join(f" | {text}" for text in summaries) + " |")
        if row in paper or row in paper_averages:  # a paper's curve, its published averages, or both
            steps = [f"{v:.2f}" for v in paper[row]] if row in paper else [""] * len(classes)
            ends = [_cell(v) for v in paper_averages.get(row, summary(paper.get(row, [])) if row in paper else ())]
            lines.append(f"| {label} (paper) | " + " | ".join([*steps, *ends]) + " |")
    for label, curve in protocol.get("later", {}).items():
        lines.append(f"| {label} (its paper) | " + " | ".join(f"{v:.2f}" for v in [*curve, *summary(curve)]) + " |")
    times = [r["wall_time_s"] for r in runs.values()]
    if times:
        epochs = sorted({r["train"]["epochs"] for r in runs.values()})
        lines += ["", f"{len(runs)} runs, {statistics.mean(times):.0f} s each on average; "
                      f"{'/'.join(map(str, epochs))} epochs per step. {thread_note(runs.values())}"]
    if fscil and runs:
        lines += ["", *cost_table(runs, rows, classes)]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def cost_table(runs: dict, rows: dict, classes: list[int]) -> list[str]:
    """Each row's training time per step (mean over seeds), and the memory of what a method keeps where it says
    (TOPIC: its nodes and their anchor images)."""
    lines = ["Training time per step (s, mean over the seeds; step 1 is the base session):", "",
             "| variant | " + " | ".join(map(str, classes)) + " |", "|---|" + "---|" * len(classes)]
    for row in rows:
        times = [r["train_time_s"] for (r_row, _), r in sorted(runs.items()) if r_row == row and "train_time_s" in r]
        if times:
            lines.append(f"| {row} | " + " | ".join(f"{statistics.mean(t):.2f}" for t in zip(*times)) + " |")
    kept = [(row, r["method_details_per_step"]) for (row, seed), r in sorted(runs.items())
            if any("node_bytes" in d for d in r.get("method_details_per_step", []))]
    if kept:
        row, steps = kept[0]
        lines += ["", f"What {row} keeps after each step (its first seed): nodes, and kB of nodes (centroid, "
                      "variance, label) + anchor images:", "",
                  "| | " + " | ".join(map(str, classes)) + " |", "|---|" + "---|" * len(classes),
                  "| nodes | " + " | ".join(str(d.get("nodes", "")) for d in steps) + " |",
                  "| kB | " + " | ".join(f"{(d['node_bytes'] + d['anchor_bytes']) / 1e3:.0f}" if d else ""
                                         for d in steps) + " |"]
    return lines


def _mean_std(values: list[float]) -> str:
    return mean_spread(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


def plot(name: str, runs: dict, path: Path) -> None:
    """Accuracy on the classes seen against their number, one curve per row with a band of +- one std (the
    paper's figure), and the paper's curves dashed where it has them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper, rows = PROTOCOLS[name].get("paper", {}), PROTOCOLS[name]["rows"]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    classes = None
    for style, row in zip(line_styles(len(rows)), rows):  # colour, line style and marker: close curves stay apart
        stats = aggregate(runs, row)
        if stats is not None:
            means, stds, n, classes = stats
            ax.plot(classes, means, label=f"{row} (ours, n={n})", markersize=4, **style)
            ax.fill_between(classes, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=style["color"], alpha=0.15, linewidth=0)
        if row in paper and classes is not None and len(paper[row]) == len(classes):  # not beside a cut protocol
            ax.plot(classes, paper[row], color=style["color"], linestyle=":", marker="x", alpha=0.6,
                    label=f"{row} (paper)")
    ax.set_xlabel("number of classes")
    ax.set_ylabel("accuracy on the classes seen (%)")
    ax.set_title(PROTOCOLS[name]["scenario"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no curve
    fig.tight_layout()
    save_png(fig, path, dpi=120)
    plt.close(fig)


def save_table(out: Path, name: str, notes: str = "") -> dict:
    runs = load_runs(out, name)
    document = {"protocol": {k: v for k, v in PROTOCOLS[name].items()}, "versions": versions(),
                "machine": machine(), "runs": {f"{row}/{seed}": run for (row, seed), run in runs.items()}}
    write_json(out / f"{stem(name)}.json", document)
    write_text(out / f"{stem(name)}.md", render(name, runs, notes))
    if runs:
        plot(name, runs, out / f"{stem(name)}.png")
    return document
