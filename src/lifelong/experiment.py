"""Build everything a run needs from names, and run it: the layer the command line and scripts call.

    from lifelong.experiment import run_experiment
    results = run_experiment("finetune", "split-mnist", setting="class", data_dir="data", out_dir="runs/ft")
"""

from dataclasses import replace

import torch

from .engine import TrainConfig, run
from .training import check_options_used, warmup_epochs
from .errors import ConfigError
from .learner import DEFAULTS as LEARNER_DEFAULTS
from .learner import BACKBONES, Learner, build_backbone, build_method  # noqa: F401 (also imported from here)
from .methods import FeatureExtraction, get_method
from .models import ContinualModel
from .benchmarks import make_scenario
from .scenarios import Scenario

# Training defaults per scenario. The MNIST family follows Hsu et al. 2018 (MLP 400-400, 4 epochs, batch 128,
# Adam 0.001); CIFAR-100 the usual ResNet-32 recipe (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine), with
# fewer epochs than papers (say --epochs 160 for a full-length run). Omniglot (15 drawings per character, 300 per
# task): 10 epochs of batch 64 (first-task accuracy 0.62 in the class setting; 20 epochs: 0.66, joint no better).
SCENARIO_DEFAULTS = {
    "split-digits": dict(epochs=10, batch_size=32, lr=0.001, optimizer="adam"),
    "split-mnist": dict(epochs=4, batch_size=128, lr=0.001, optimizer="adam"),
    "split-fashion": dict(epochs=4, batch_size=128, lr=0.001, optimizer="adam"),
    "permuted-mnist": dict(epochs=4, batch_size=128, lr=0.001, optimizer="adam"),
    # Buzzega et al. 2020's protocols (Mammoth's first release, its `best_args` for plain SGD): one epoch, no
    # momentum; their MLP 784-100-100 is `--hidden 100,100` (the default hidden sizes are the library's 400, 400)
    "split-mnist-der": dict(epochs=1, batch_size=10, lr=0.03, optimizer="sgd", momentum=0.0),
    "permuted-mnist-der": dict(epochs=1, batch_size=128, lr=0.2, optimizer="sgd", momentum=0.0),
    "rotated-mnist": dict(epochs=1, batch_size=128, lr=0.2, optimizer="sgd", momentum=0.0),
    "mnist-360": dict(epochs=1, batch_size=16, lr=0.1, optimizer="sgd", momentum=0.0),  # the stream's batches of 16
    "split-cifar100": dict(epochs=30, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9,
                           weight_decay=5e-4, schedule="cosine"),
    "split-omniglot": dict(epochs=10, batch_size=64, lr=0.001, optimizer="adam"),
    "split-omniglot-964": dict(epochs=10, batch_size=64, lr=0.001, optimizer="adam"),
    # FSCIL: the usual ResNet-20 recipe for the base session (TOPIC's scripts start from a trained base model), then
    # TOPIC's 70 epochs per session; its scripts fine-tune only the last residual block at 0.1, all layers train here,
    # at 0.01
    "fscil-cifar100": dict(epochs=100, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                           schedule="cosine", incremental_epochs=70, incremental_lr=0.01),
    # Omniglot's base session as split-omniglot's tasks, with more epochs (900 images); the sessions' 25 shots:
    # one batch per epoch
    "fscil-omniglot": dict(epochs=20, batch_size=64, lr=0.001, optimizer="adam", incremental_epochs=20,
                           incremental_lr=0.0001),
    # miniImageNet and CUB-200: CEC's base training (its README: SGD 0.1, weight decay 5e-4, 100 epochs, batch 128;
    # it steps the rate at milestones, cosine here as for CIFAR-100); the sessions TOPIC's epochs (100 and 120) at
    # fscil-cifar100's rate. CUB-200's
    # papers start from an ImageNet-pre-trained ResNet-18, which is not available here: it starts from scratch
    "fscil-mini-imagenet": dict(epochs=100, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                                schedule="cosine", incremental_epochs=100, incremental_lr=0.01),
    "fscil-cub200": dict(epochs=100, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                         schedule="cosine", incremental_epochs=120, incremental_lr=0.01),
}


def train_config(scenario_name: str, **overrides) -> TrainConfig:
    """The scenario's default training configuration (a scenario of your own data: the learner's defaults), with
    `overrides` (None values ignored) on top."""
    config = dict(SCENARIO_DEFAULTS.get(scenario_name, LEARNER_DEFAULTS))
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("stream"):  # one pass: the scenario's epochs are not a stream's (more, asked for, are refused)
        config.update(epochs=1, incremental_epochs=None)
    config.update(given)
    try:
        config = TrainConfig(**config)
    except TypeError as error:
        raise ConfigError(f"bad training option: {error}") from None
    check_options_used(config, given)
    return config


def build_model(scenario: Scenario, backbone: str | None = None, hidden=(400, 400), dropout: float = 0.0):
    """The scenario's default backbone (or `backbone`) with the growing head, for inputs of the scenario's shape."""
    backbone_module = build_backbone(backbone or scenario.backbone, scenario.input_shape, hidden, dropout)
    return ContinualModel(backbone_module)


def run_experiment(
    method: str = "finetune",
    scenario: str | Scenario = "split-digits",
    setting: str = "class",
    *,
    data_dir=None,
    out_dir=None,
    resume: bool = False,
    backbone: str | None = None,
    hidden=(400, 400),
    method_options: dict | None = None,
    config: TrainConfig | None = None,
    preallocate_head: bool | str = False,
    return_learner: bool = False,
    loggers=(),
    **train_options,
) -> dict | tuple[dict, Learner]:
    """Run one method on one scenario in one setting; returns the results document (see the README).

    `preallocate_head` (class setting): the head has every class's output from the start, the classes not seen
    yet left out of the loss and the prediction, as in Hsu et al.'s code (True, or "seen"); the default grows it
    task by task. The difference shows in a penalty on the head: rows of unseen classes exist at the first snapshot
    and are held there (L2 pins them to their initial values). "all": every output in the loss and the prediction
    from the first task, as Mammoth's one linear layer (and a stream's head): the classes to come are pushed down
    before their task, which changes class-IL results (A-GEM on S-MNIST: benchmarks/der_smnist_causes.py).

    `return_learner`: return (results, learner), the trained `Learner`, which predicts, saves, and learns more.
    `loggers`: callables given the results after each task (`lifelong.loggers`)."""
    scenario_name = scenario if isinstance(scenario, str) else scenario.name
    if config is None:
        config = train_config(scenario_name, **train_options)
    elif train_options:
        try:
            config = replace(config, **train_options)
        except TypeError as error:
            raise ConfigError(f"bad training option: {error}") from None
    if isinstance(scenario, str):
        scenario = make_scenario(scenario, data_dir=data_dir, seed=config.seed, stream_batch_size=config.batch_size)
    if preallocate_head not in (False, True, "seen", "all"):
        raise ConfigError(f"preallocate_head is False, True (or 'seen': Hsu et al.'s head) or 'all' (Mammoth's), got "
                          f"{preallocate_head!r}")
    preallocate_head = True if preallocate_head == "seen" else preallocate_head
    config = replace(config, extra={**config.extra, "backbone": backbone or scenario.backbone,
                                    "hidden": list(hidden), "method_options": method_options or {},
                                    **({"preallocate_head": preallocate_head} if preallocate_head else {})})
    learner = Learner(method, backbone or scenario.backbone, setting, hidden=hidden, config=config,
                      augment=scenario.augment, **(method_options or {}))
    head_outputs = 0
    if preallocate_head:
        if setting != "class" or getattr(get_method(method), "local_learning", False):
            raise ConfigError("preallocate_head is for gradient-trained methods in the class-incremental setting "
                              f"(one head for every class); got {method} in the {setting!r} setting")
        head_outputs = sum(task.n_classes for task in scenario.tasks)
    learner.build(scenario.tasks[0].x_train, head_outputs)
    learner.method.every_output = preallocate_head == "all"
    if preallocate_head and (warmup_epochs(learner.method, config) or isinstance(learner.method, FeatureExtraction)):
        # the new task's outputs share the one head part with the old classes' outputs
        raise ConfigError("preallocate_head puts every class in one head part, so there is no new part to train "
                          "alone: feature extraction and the head warm-up (warmup_epochs; LwF's own: "
                          "--param warmup=false) cannot run with it")
    results = run(learner, scenario, out_dir=out_dir, resume=resume, loggers=loggers)
    if not return_learner:
        return results
    learner.adopt(scenario)  # from here on it takes the data set's raw inputs and labels
    return results, learner
