"""What `lifelong` offers, by name, readable without importing torch (3 s here): `lifelong list` and a misspelt
name answer at once. The code behind each name lives in `methods/`, `scenarios.py` and the reproductions;
tests/test_catalog.py checks that this catalogue and those registries name the same things."""

SETTINGS = ("task", "domain", "class")
CLASS_ONLY = ("class",)

# name -> (one-line description, settings it runs in, whether it keeps exemplars (takes --memory))
METHODS = {
    "finetune": ("fine-tuning: train all shared parameters and the new head on each new task (the lower bound)",
                 SETTINGS, False),
    "finetune-fc": ("Finetune-FC: freeze the lower layers after the first task, train the upper (FC) layers and "
                    "heads", SETTINGS, False),
    "feature-extraction": ("feature extraction: freeze everything after the first task, train only the new task's "
                           "head", SETTINGS, False),
    "joint": ("joint training on the union of all data seen so far (the upper bound, keeps all old data)",
              SETTINGS, False),
    "lwf": ("Learning without Forgetting: distil the old heads' recorded responses on the new data (T=2)",
            SETTINGS, False),
    "ewc": ("EWC: quadratic penalty weighted by the Fisher information of each old task (Kirkpatrick 2017)",
            SETTINGS, False),
    "online-ewc": ("online EWC: one running Fisher (old one decayed by gamma), one penalty around the latest "
                   "weights", SETTINGS, False),
    "si": ("Synaptic Intelligence: importance = each weight's contribution to the loss drop along training",
           SETTINGS, False),
    "l2": ("L2: penalty on the distance to the previous task's weights, every weight equally important",
           SETTINGS, False),
    "mas": ("Memory Aware Synapses: importance = sensitivity of the learned function (no labels needed)",
            SETTINGS, False),
    "l-mas": ("local MAS: importance = Hebbian co-activation of the two neurons a weight connects (closed form)",
              SETTINGS, False),
    "replay": ("naive rehearsal: the new task's data plus a memory of old samples (--memory N), cross-entropy; "
               "mixed once each by default (mix=union), not 1:1 as Hsu et al. and Avalanche (--param mix=repeat)",
               SETTINGS, True),
    "icarl": ("iCaRL: herding exemplars (--memory N), sigmoid distillation of old outputs, nearest-mean classifier",
              CLASS_ONLY, True),
    "bic": ("BiC: exemplars (--memory N), distillation weighted n/(n+m), then a bias correction on the newest logits",
            CLASS_ONLY, True),
    "wa": ("Weight Aligning: exemplars (--memory N), distillation weighted n/(n+m), then the new classes' weight "
           "rows rescaled to the old rows' mean norm", CLASS_ONLY, True),
    "lucir": ("LUCIR: herding exemplars (--memory N), a cosine classifier, the less-forget constraint on normalised "
              "features, margin ranking of old samples against the hardest new classes", CLASS_ONLY, True),
    "podnet": ("PODNet: exemplars (--memory N), POD-spatial + POD-flat distillation, a local similarity classifier of "
               "10 proxies per class with the NCA loss, classifier fine-tuned on the memory", CLASS_ONLY, True),
    "er": ("experience replay: each step the incoming batch plus a draw from a reservoir buffer (--memory N); "
           "learns from a stream (--stream)", SETTINGS, True),
    "der": ("Dark Experience Replay: a reservoir buffer of samples and their logits, CE + alpha * MSE to the stored "
            "logits (--memory N; --stream)", SETTINGS, True),
    "der++": ("DER++: DER plus beta * CE on a second buffer draw's labels (--memory N; --stream)", SETTINGS, True),
    "gdumb": ("GDumb: a class-balanced greedy memory (--memory N) from the stream; before each evaluation a model "
              "trained from scratch on the memory alone (--stream)", SETTINGS, True),
    "er-ace": ("ER-ACE: the incoming CE masks the seen classes absent from the batch, plus CE on a reservoir draw "
               "(--memory N; --stream)", SETTINGS, True),
    "a-gem": ("A-GEM: the step's gradient projected where it conflicts with a memory draw's (--memory N; "
              "--stream: a reservoir; task_memory=M: the paper's memory, filled at task ends)", SETTINGS, True),
    "task-free-mas": ("task-free MAS: steps on a recent + a hard buffer; MAS importance updated where the loss "
                      "plateaus after a peak, no task boundary (--stream)", SETTINGS, False),
    "competitive": ("winner-take-all competitive learning: each class adds its own units, only they learn "
                    "(no gradient)", SETTINGS, False),
    "neural-gas": ("neural gas with competitive Hebbian edges, one gas per class; old gases never move "
                   "(no gradient)", SETTINGS, False),
    "topic": ("TOPIC: a neural gas in feature space keeps the base session's topology (anchor loss); few-shot classes "
              "get learned nodes pushed from their graph neighbours (min-max loss); nearest-node prediction",
              CLASS_ONLY, False),
    "prototype": ("cosine prototypes: after the base session the backbone is frozen, each class is the mean of its "
                  "features (FSCIL baseline)", CLASS_ONLY, False),
    "cec": ("CEC: a cosine classifier on the base session, then class-mean prototypes adapted jointly with each query "
            "by an attention graph meta-trained on pseudo-incremental episodes (turned images); frozen after",
            CLASS_ONLY, False),
    "fact": ("FACT: virtual prototypes reserved in the base session (masked CE, manifold mixup); sessions: shot "
             "means in their rows, frozen backbone (FSCIL)", CLASS_ONLY, False),
}

# `--method all` (the default of `lifelong run`), the rule in one place: every method, but the methods made for
# few-shot class-incremental learning (FSCIL: a large base session, then sessions of a few shots per new class) only
# on the few-shot scenarios, where the ordinary methods run beside them as TOPIC's table compares (fine-tuning, joint
# training, iCaRL, replay with nearest-mean classification, ...). Named, any method runs on any scenario.
FEW_SHOT_METHODS = ("topic", "prototype", "cec", "fact")

SCENARIOS = {
    "split-digits": "scikit-learn digits (8x8, embedded, no download), 5 tasks of 2 classes",
    "split-mnist": "MNIST padded to 32x32 (Hsu et al. 2018), 5 tasks {0,1},{2,3},{4,5},{6,7},{8,9}",
    "split-fashion": "Fashion-MNIST padded to 32x32, 5 tasks of 2 classes",
    "permuted-mnist": "MNIST padded to 32x32, 10 tasks of permuted pixels (domain-incremental by nature)",
    "split-mnist-der": "Buzzega et al. 2020's S-MNIST: MNIST 28x28 in [0, 1] (not padded, not normalised), 5 tasks "
                       "{0,1},...,{8,9} (MLP 100-100: --hidden 100,100)",
    "permuted-mnist-der": "Buzzega et al. 2020's P-MNIST: MNIST 28x28 in [0, 1], 20 tasks, every one permuted "
                          "(domain-incremental; MLP 100-100: --hidden 100,100)",
    "rotated-mnist": "Buzzega et al. 2020's R-MNIST: MNIST 28x28 in [0, 1], 20 tasks, each turned by one angle drawn "
                     "from [0, 180) (domain-incremental; --hidden 100,100)",
    "mnist-360": "general continual (Buzzega et al. 2020): digits 0-8 streamed in pairs (0,1)...(8,0), 3 rounds, "
                 "turning through 360 degrees; 27 ordered segments, one 9-way head (--setting domain)",
    "split-cifar100": "CIFAR-100, 5 or 10 tasks in iCaRL's class order (seed 1993), ResNet-32, crop+flip",
    "split-omniglot": "Omniglot, the first 200 background characters, 28x28, ink 1; of each one's 20 drawings in "
                      "SHA-1 order, 15 train / 5 test; 10 tasks of 20",
    "split-omniglot-964": "the whole Omniglot background set: 964 characters as split-omniglot's, 10 tasks of 97 or 96 "
                          "(BiC's \"large scale\" on the data here)",
    "fscil-cifar100": "FSCIL (TOPIC, CEC): CIFAR-100, 60 base classes then 8 sessions of 5-way 5-shot, official lists, "
                      "ResNet-20",
    "fscil-omniglot": "FSCIL on Omniglot: 60 base characters (15 drawings each), then 8 sessions of 5-way 5-shot; "
                      "tested on 5 held-out drawings per character",
    "fscil-mini-imagenet": "FSCIL (TOPIC, CEC): miniImageNet 84x84, 60 base classes then 8 sessions of 5-way 5-shot, "
                           "official lists, ResNet-20 (not the papers' ResNet-18)",
    "fscil-cub200": "FSCIL (TOPIC, CEC): CUB-200-2011 resized to 84x84, 100 base classes then 10 sessions of 10-way "
                    "5-shot, official lists, ResNet-20",
}

FEW_SHOT_SCENARIOS = ("fscil-cifar100", "fscil-omniglot", "fscil-mini-imagenet", "fscil-cub200")


def methods_for_all(scenario: str | None) -> list[str]:
    """The methods `--method all` names on `scenario` (None: your own data, `--data FOLDER`, an ordinary one)."""
    return [name for name in METHODS if name not in FEW_SHOT_METHODS or scenario in FEW_SHOT_SCENARIOS]


REPRODUCTIONS = {
    "hsu2018-split-mnist": "Hsu et al. 2018, Table 2: split-MNIST, task-, domain- and class-IL",
    "wu2019-bic-cifar100": "Wu et al. 2019, Table 6: CIFAR-100, 5 steps of 20 classes, ResNet-32, 2,000 exemplars",
    "wu2019-bic-split-mnist": "BiC's ablation on class-incremental split-MNIST: 5 steps of 2 digits, MLP 400-400, "
                              "200 exemplars",
    "wu2019-bic-split-fashion": "BiC's ablation on class-incremental split-Fashion-MNIST: 5 steps of 2 classes, "
                                "MLP 400-400, 200 exemplars",
    "wu2019-bic-split-omniglot": "BiC's ablation on class-incremental Omniglot: 200 characters in 10 steps of 20, "
                                 "MLP 400-400, 2 exemplars per character (1 for training, 1 for validation)",
    "tao2020-fscil-cifar100": "Tao et al. 2020 (TOPIC): FSCIL on CIFAR-100, 60 base classes + 8 sessions of 5-way "
                              "5-shot, ResNet-20; TOPIC, Ft-CNN, Joint-CNN, iCaRL, NCM, cosine prototypes, CEC, FACT",
    "fscil-omniglot": "the same FSCIL rows on Omniglot: 60 base characters + 8 sessions of 5-way 5-shot, MLP 400-400",
    "fscil-mini-imagenet": "Zhou et al. 2022 (FACT) on miniImageNet: 60 base classes + 8 sessions of 5-way 5-shot, "
                           "ResNet-20; cosine prototypes, FACT",
    "fscil-cub200": "Zhou et al. 2022 (FACT) on CUB-200: 100 base classes + 10 sessions of 10-way 5-shot, ResNet-20 "
                    "from scratch; cosine prototypes, FACT",
    "class-il-league-split-mnist-2000": "the class-IL league (BiC and its successors against the baselines, the same "
                                        "memory): split-MNIST, 2,000 exemplars",
    "class-il-league-split-mnist-200": "the class-IL league: split-MNIST, 200 exemplars",
    "class-il-league-split-fashion-2000": "the class-IL league: split-Fashion-MNIST, 2,000 exemplars",
    "class-il-league-split-fashion-200": "the class-IL league: split-Fashion-MNIST, 200 exemplars",
    "class-il-league-split-omniglot": "the class-IL league: Omniglot, 200 characters in 10 steps, 2 exemplars each",
    "class-il-league-split-omniglot-conv": "the class-IL league on split-omniglot with a convolutional backbone "
                                           "(ResNet-20): PODNet's spatial distillation; 10 epochs a step, which "
                                           "undertrain ResNet-20 (its first step 39 %, 75 % at 30): prefer -conv-30",
    "class-il-league-split-omniglot-conv-30": "the same with 30 epochs a step, which trains ResNet-20's first step "
                                              "to its plateau (10 epochs do not: benchmarks/conv_first_step.py)",
    "class-il-league-omniglot-964": "the class-IL league at scale: all 964 Omniglot background characters in 10 "
                                    "steps, 2 exemplars each",
    "hou2019-lucir-cifar100-5": "Hou et al. 2019 (LUCIR) on CIFAR-100, 50 classes then 5 phases of 10, "
                                "ResNet-32, 20 exemplars per class; average incremental accuracy",
    "hou2019-lucir-cifar100-10": "Hou et al. 2019 (LUCIR) on CIFAR-100, 50 classes then 10 phases of 5, "
                                 "ResNet-32, 20 exemplars per class; average incremental accuracy",
    "zhao2020-wa-cifar100": "Zhao et al. 2020 (WA): CIFAR-100, 5 steps of 20 classes, ResNet-32, 2,000 exemplars; "
                            "average incremental accuracy with and without the first step",
    "douillard2020-podnet-cifar100-25": "Douillard et al. 2020 (PODNet), Table 1: CIFAR-100, 50 classes then 25 "
                                        "steps of 2, ResNet-32, 20 exemplars per class, its class orders",
    "douillard2020-podnet-cifar100-50": "Douillard et al. 2020 (PODNet), Table 1: CIFAR-100, 50 classes then 50 "
                                        "steps of 1, ResNet-32, 20 exemplars per class, its class orders",
    "buzzega2020-der": "Buzzega et al. 2020 (DER), Tables 2-3 on MNIST: P-/R-MNIST, S-MNIST class-/task-IL, "
                       "MNIST-360; buffers 200/500/5120, one epoch, Mammoth's best_args",
}


def unknown(kind: str, name: str, known) -> str:
    return f"unknown {kind} {name!r}; choose one of: {', '.join(known)} (see `lifelong list`)"
