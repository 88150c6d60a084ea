"""A continual learner you keep: a method, its model and what the method keeps, learning tasks whenever they come.

    from lifelong import Learner
    learner = Learner("icarl", memory=2000)          # any method of `lifelong list`, its options as keywords
    learner.learn(x1, y1)                            # the first task: inputs and the data set's own labels
    learner.learn(x2, y2)                            # new classes, next month
    learner.predict(x)                               # labels, as given to learn (not head indices)
    learner.save("model.pt"); learner = Learner.load("model.pt")   # then learn goes on as if never stopped

The first `learn` builds the model (the inputs' shape is known then): the library's MLP (`model="mlp"`, the
default), a CIFAR ResNet (`"resnet20"`, `"resnet32"`), or your own feature extractor, any `nn.Module` that maps a
batch of inputs to a batch of feature vectors (batch, features), pretrained or not; the library puts its growing
head on top. Inputs are used as given (normalise them as your model expects); integer inputs (uint8 images) are
scaled to [0, 1]. Each task brings its own classes: new ones in the class setting (one head, no task id at test
time), any in the task setting (a head part per task, `task=` at prediction), the same ones in every task in the
domain setting.

A learner owns its random state: the same seed gives the same model whatever else the program draws, and a saved
learner continues with exactly the numbers an uninterrupted one would give. The engine (`lifelong.engine.run`)
drives a learner over a whole scenario; `run_experiment(..., return_learner=True)` hands it back.
"""

import math
from contextlib import contextmanager
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from .data.user import as_inputs, as_labels, from_dataset
from .errors import ConfigError, DataError, LifelongError, TrainingError
from .inputs import in_order
from .limits import MAX_INPUT_VALUES, MAX_PARAMETERS, check_mlp, mlp_parameters
from .methods import Method, get_method, method_options
from .models import MLP, ContinualModel, resnet20, resnet32
from .scenarios import SETTINGS, prepare_raw
from .storage import load_checkpoint, lock_beside, save_checkpoint
from .training import (TrainConfig, check_options_used, check_stream, check_warmup_used, fit, import_optimizers,
                       optimizer_state, own_hook, restore_optimizer, train_task)

BACKBONES = ("mlp", "resnet20", "resnet32")
FORMAT = "lifelong.Learner"
SAVED = ("format", "version", "spec", "config", "augment", "tasks", "method", "optimizer", "rng")  # what save writes
# Training defaults of a learner built by hand: Hsu et al.'s recipe for small images (4 epochs, batch 128, Adam)
DEFAULTS = dict(epochs=4, batch_size=128, lr=0.001, optimizer="adam")


def build_backbone(name: str, input_shape: tuple[int, ...], hidden=(400, 400), dropout: float = 0.0) -> nn.Module:
    """One of the library's backbones for inputs of `input_shape` (C, H, W) or (features,)."""
    if name == "mlp":
        n_inputs = int(np.prod(input_shape))
        check_mlp(n_inputs, hidden)  # an absurd size is refused before it is allocated
        try:
            return MLP(n_inputs, tuple(hidden), dropout)
        except RuntimeError as error:  # torch's allocator: more than this machine has
            if "alloc" not in str(error):
                raise
            raise ConfigError(f"an MLP of hidden sizes {','.join(map(str, hidden))} on inputs of {n_inputs:,} values "
                              f"does not fit in memory here ({str(error).splitlines()[0]}): give smaller hidden "
                              "sizes") from None
    if name in ("resnet20", "resnet32"):
        if len(input_shape) != 3:
            raise ConfigError(f"{name} takes images (channels, height, width), got inputs of shape {input_shape}")
        return (resnet20 if name == "resnet20" else resnet32)(input_shape[0])
    raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}, or give an nn.Module")


def build_method(name: str, model: ContinualModel, setting: str, options: dict | None = None) -> Method:
    """The method `name` on `model`; `options` are its own constructor arguments (checked against them)."""
    cls = get_method(name)
    options = dict(options or {})
    accepted = method_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) if accepted else "none"
        raise ConfigError(f"method {name} has no option {', '.join(unknown)} (its options: {valid}; "
                          f"`lifelong list --method {name}` explains them)")
    return cls(model, setting, **options)


def feature_size(backbone: nn.Module, x: torch.Tensor) -> int:
    """The length of the feature vector `backbone` gives: its `out_features`, or measured on two inputs."""
    if isinstance(getattr(backbone, "out_features", None), int):
        return backbone.out_features
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(x[:2])
    except Exception as error:  # the user's module: say what it was given
        raise ConfigError(f"your model failed on a batch of the inputs, shape {tuple(x[:2].shape)} "
                          f"({type(error).__name__}: {error})") from None
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or len(out) != len(x[:2]):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"a model must map a batch of inputs to a batch of feature vectors (batch, features); "
                          f"yours gave {shape} for a batch of {len(x[:2])}: end it with a flatten or a pooling")
    return out.shape[1]


def same_labels(predicted: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the predicted labels are the true ones; an integer label and its digits name the same class (a data
    set's class names are strings, an .npz's labels often integers)."""
    if predicted.dtype.kind != y.dtype.kind:
        return predicted.astype(str) == y.astype(str)
    return predicted == y


def _plain(label):
    """A numpy label as a Python int or str (JSON and the safe loader take these)."""
    return label.item() if isinstance(label, np.generic) else label


def _brief(value) -> str:
    """A value from a file in a message: one line, at most 60 characters (a tensor's repr runs over many)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _is_plain(value) -> bool:
    """An option as `save` writes it: a number, a string, True/False/None, or lists and dicts of them."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def _is_label(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_size(value, high: int = MAX_INPUT_VALUES) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high


def check_saved(saved: dict, path) -> None:
    """The contents of a learner file, checked before anything is built from them: the entries `save` writes and
    no other, the method, setting and backbone by name, and every size within the bounds of `lifelong.limits`
    (the safe loader reads only tensors and plain data, but those can still ask for a layer of 10^8 units)."""
    def refuse(what: str):
        raise DataError(f"{path} is not a learner lifelong saved, or was altered: {what}")

    if set(saved) != set(SAVED):
        lacks, adds = [k for k in SAVED if k not in saved], sorted(str(k) for k in saved if k not in SAVED)
        refuse(", ".join(([f"it lacks {', '.join(lacks)}"] if lacks else []) +
                         ([f"it has unknown entries {', '.join(adds[:5])}"] if adds else [])))
    spec, tasks = saved["spec"], saved["tasks"]
    if type(saved["version"]) is not int or saved["version"] != 1:
        refuse(f"format version {_brief(saved['version'])} (this lifelong reads version 1)")
    if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) for k in ("method", "setting", "backbone")):
        refuse("its spec names no method, setting and backbone")
    from .catalog import METHODS

    for key, known in (("method", METHODS), ("setting", SETTINGS), ("backbone", BACKBONES + ("custom",))):
        if spec[key] not in known:
            refuse(f"unknown {key} {_brief(spec[key])}")
    options = spec.get("options")
    if not isinstance(options, dict) or not all(isinstance(k, str) and _is_plain(v) for k, v in options.items()):
        refuse(f"its method options {_brief(options)} are not names with numbers or strings")
    hidden, shape = spec.get("hidden"), spec.get("input_shape")
    if not isinstance(hidden, list) or not hidden or not all(_is_size(h) for h in hidden):
        refuse(f"hidden sizes {_brief(hidden)}")
    # math.prod: Python's integers, which numpy's int64 product would overflow on three large sides
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(_is_size(n) for n in shape) \
            or math.prod(shape) > MAX_INPUT_VALUES:
        refuse(f"input shape {_brief(shape)} (at most {MAX_INPUT_VALUES:,} values per input)")
    if spec["backbone"] == "mlp" and mlp_parameters(math.prod(shape), hidden) > MAX_PARAMETERS:
        refuse(f"an MLP of {mlp_parameters(math.prod(shape), hidden):,} parameters")
    if not isinstance(tasks, list) or not tasks or not all(
            isinstance(t, list) and t and all(_is_label(c) for c in t) for t in tasks):
        refuse("its tasks are not lists of class labels")
    state = saved["method"]
    heads = state.get("head_sizes") if isinstance(state, dict) else None
    # the head has one output per class learned (all of them from the start where a run preallocated it)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or not isinstance(heads, list) \
            or not all(_is_size(h) for h in heads) or sum(heads) > sum(map(len, tasks)):
        refuse("its method's state does not match its tasks")
    if not isinstance(saved["config"], dict) or not _is_plain(saved["config"]) \
            or not isinstance(saved["config"].get("milestones"), list) or not isinstance(saved["augment"], bool) \
            or not isinstance(saved["rng"], dict):
        refuse("its training configuration or random state")
    names = spec.get("class_names", [])
    if not isinstance(names, list) or not all(_is_label(c) for c in names):
        refuse("its class names")
    optimizer = saved["optimizer"]  # None, or its parameter groups by name and torch's state of it
    if optimizer is not None and not (
            isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("groups"), list)
            and all(isinstance(g, list) and all(isinstance(n, str) for n in g) for g in optimizer["groups"])):
        refuse("its optimizer's state")


def _differences(saved: dict, state: dict, prefix: str = "backbone.") -> str:
    """How the backbone weights in a file (in `saved`, a model's state dict) differ from a backbone's `state`: the
    first few names missing, unexpected or of another shape; empty when they fit."""
    saved = {k[len(prefix):]: v for k, v in saved.items() if isinstance(k, str) and k.startswith(prefix)}
    shape = lambda v: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__  # noqa: E731
    found = [f"{k} is missing" for k in state if k not in saved]
    found += [f"{k} is not in the model" for k in saved if k not in state]
    found += [f"{k} is {shape(state[k])} in the model, {shape(saved[k])} in the file"
              for k in state if k in saved and shape(saved[k]) != shape(state[k])]
    return "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")


class _TaskRecord:
    """A learned task as the method needs to know it later: its id and classes, no data."""

    def __init__(self, task_id: int, classes: list):
        self.id, self.classes = task_id, list(classes)
        self.x_train = self.y_train = torch.empty(0, dtype=torch.long)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


class _Task(_TaskRecord):
    """A task built from inputs and labels by `learn`."""

    def __init__(self, task_id, classes, x, y):
        super().__init__(task_id, classes)
        self.x_train, self.y_train = x, y
        self.x_test, self.y_test, self.x_val, self.y_val = x[:0], y[:0], None, None


class Learner:
    """A continual learner: `learn` task after task, `predict` labels, `save` and `load` (module docstring).

    method: a method name (`lifelong list`) or a built `Method`; model: "mlp" (default), "resnet20", "resnet32" or
    an nn.Module feature extractor; setting: "class", "task" or "domain"; hidden: the MLP's hidden sizes;
    seed: weights, shuffling and everything random; **options: the method's own options (say memory=2000) and the
    training options (epochs, lr, batch_size, optimizer, momentum, weight_decay, schedule, warmup_epochs, device...),
    defaults 4 epochs of batch 128 with Adam at 0.001.
    """

    def __init__(self, method: str | Method = "finetune", model: str | nn.Module | None = None,
                 setting: str = "class", *, hidden=(400, 400), seed: int = 0, config: TrainConfig | None = None,
                 augment: bool = False, **options):
        cls = get_method(method) if isinstance(method, str) else None  # an unknown name fails here, before any data
        own = set(method_options(cls)) if cls else set()
        train_fields = set(TrainConfig.__dataclass_fields__) - {"seed", "extra"}
        # a name both a training option and the method's own (online-ewc's gamma) is the method's
        train = {k: options.pop(k) for k in list(options) if k in train_fields - own}
        if config is None:
            try:
                config = TrainConfig(**{**DEFAULTS, **train, "seed": seed})
            except TypeError as error:
                raise ConfigError(f"bad training option: {error}") from None
            check_options_used(config, train)
        elif train:
            raise ConfigError(f"give the training options ({', '.join(train)}) in `config` or as keywords, not both")
        self.config = config
        self.augment = bool(augment)
        self.tasks: list[_TaskRecord] = []
        self.epoch_losses: list[float] = []  # the last task's mean loss per epoch (results' epoch_loss, TensorBoard)
        self._rng = None  # the learner's own torch random state, set when the method is built
        self.generator = torch.Generator().manual_seed(config.seed)  # shuffling and augmentation
        if cls is None:
            if not isinstance(method, Method):
                raise ConfigError(f"method must be a method name (`lifelong list`) or a Method, got {method!r}")
            if model is not None or options:
                raise ConfigError("a built method brings its model and options: give neither with it")
            self.method, self.model = method, None
            self.spec = {"method": method.name, "setting": method.setting, "backbone": "built"}
            method.model.to(config.device)
            self._own_random_state()
            import_optimizers(config)
            return
        if setting not in SETTINGS:
            raise ConfigError(f"unknown setting {setting!r}; choose one of: {', '.join(SETTINGS)}")
        unknown = sorted(set(options) - own)
        if unknown:
            raise ConfigError(f"{method} has no option {', '.join(unknown)} (its options: "
                              f"{', '.join(sorted(own)) or 'none'}; training options: {', '.join(sorted(train_fields))})")
        if model is not None and not isinstance(model, (str, nn.Module)):
            raise ConfigError(f"model must be a backbone name ({', '.join(BACKBONES)}) or an nn.Module, "
                              f"got {type(model).__name__}")
        if isinstance(model, str) and model not in BACKBONES:
            raise ConfigError(f"unknown backbone {model!r}; choose one of: {', '.join(BACKBONES)}, or give an nn.Module")
        self.method = None  # built by the first learn, when the inputs' shape is known
        self.model = model
        self.spec = {"method": method, "setting": setting, "options": options, "hidden": list(hidden),
                     "backbone": model if isinstance(model, str) else ("custom" if model is not None else "mlp")}

    # ------------------------------------------------------------------ random state
    @contextmanager
    def _random_state(self):
        """Run with the learner's own torch random state, and leave the caller's as it was."""
        devices = [torch.device(self.config.device)] if torch.device(self.config.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self._rng["torch"])
            if devices and self._rng.get("cuda") is not None:
                torch.cuda.set_rng_state(self._rng["cuda"], devices[0])
            yield
            self._rng = {"torch": torch.get_rng_state(),
                         "cuda": torch.cuda.get_rng_state(devices[0]) if devices else None}

    def _own_random_state(self):
        """The state the engine always started from: torch.manual_seed(seed) after the model was built."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self._rng = {"torch": torch.get_rng_state(), "cuda": None}

    def build(self, x: torch.Tensor, head_outputs: int = 0) -> None:
        """Build the model and the method for inputs like `x` (the first `learn` does it). `head_outputs`: give
        the head that many outputs from the start (`run_experiment(preallocate_head=True)`)."""
        if self.method is not None:
            return
        if not isinstance(x, torch.Tensor):  # a Dataset of inputs read from disk: two of them tell the shape
            x = torch.stack([x[i] for i in range(min(2, len(x)))])
        spec = self.spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)  # the initial weights depend on the seed alone
            if isinstance(self.model, nn.Module):
                backbone = self.model
            else:
                backbone = build_backbone(spec["backbone"], tuple(x.shape[1:]), spec["hidden"])
            model = ContinualModel(backbone, feature_size(backbone, x))
            self.method = build_method(spec["method"], model, spec["setting"], spec["options"])
            if head_outputs:
                model.head.add(head_outputs)
        check_warmup_used(self.method, self.config)
        self.spec = {**spec, "input_shape": list(x.shape[1:])}
        self.method.model.to(self.config.device)
        self._own_random_state()
        import_optimizers(self.config)

    # ------------------------------------------------------------------ learning
    def learn(self, x, y=None) -> "Learner":
        """Learn the next task: inputs and their labels (tensors or numpy arrays), a map-style Dataset of
        (input, label) pairs, or a scenario's `Task`. Returns the learner."""
        task = x if hasattr(x, "x_train") and y is None else self._make_task(x, y)
        try:
            return self.learn_task(task)
        except TrainingError as error:  # the loss became NaN: what to change is this learner's, not a run's
            raise TrainingError(f"{error}: learner.config.lr in Python, --lr when `lifelong learn` starts a new "
                                "learner; then learn the task again from the learner as saved, since this one's "
                                "weights are spoiled (`lifelong learn` did not write them)") from None

    def learn_task(self, task, scenario=None) -> "Learner":
        """Learn `task` (its id must be the next one): the method's hooks around the epochs of training."""
        if task.id != len(self.tasks):
            raise ConfigError(f"tasks must arrive in order: this learner has learned {len(self.tasks)} task(s), "
                              f"so the next is task {len(self.tasks)}, got task {task.id}")
        if len(task.y_train) == 0:
            raise ConfigError(f"task {task.id + 1} has no training samples: nothing to learn")
        self.build(task.x_train)
        self.method.check(SimpleNamespace(tasks=self.tasks + [task]))  # what check reads of a scenario
        self.method.augmented_inputs = bool(getattr(scenario, "augment", self.augment))
        check_stream(self.method, self.config)
        with self._random_state():
            if self.config.stream:  # the method is not told where tasks end: every task's outputs from the start
                self.method.enter_stream(scenario.tasks if scenario is not None else self.tasks + [task])
            else:
                self.method.before_task(task)
            self.epoch_losses = train_task(self.method, task, scenario if scenario is not None
                                           else SimpleNamespace(augment=self.augment), self.config, self.generator)
            if not self.config.stream:
                self.method.after_task(task)
            before_evaluation = own_hook(self.method, "before_evaluation")
            if before_evaluation is not None:  # stream or not: the model the evaluation and a saved learner see
                label = f"task {task.id + 1}" + (f"/{len(scenario)}" if hasattr(scenario, "__len__") else "")

                def fit_own(data, optimizer, epochs, batch_size):
                    losses = fit(self.method, data, optimizer, epochs, batch_size, self.config, self.generator,
                                 f"{label} before evaluation", augment=self.method.augmented_inputs)
                    self.epoch_losses = self.epoch_losses + losses
                    return losses

                before_evaluation(fit_own)
        # a task made from labels (`learn(x, y)`) holds the labels; a scenario's task, class indices
        self.tasks.append(_TaskRecord(task.id, task.classes if isinstance(task, _Task) else self._names(task.classes)))
        return self

    def _make_task(self, x, y) -> _Task:
        if y is None:
            x, y = from_dataset(x)
        x = self._inputs(x)
        y = as_labels(y, len(x))
        if "class_names" in self.spec and y.dtype.kind in "iu":  # a data set's names are strings: 3 is "3"
            y = y.astype(str)
        classes = sorted(set(y.tolist()), key=lambda c: (str(type(c)), c))
        setting = self.spec["setting"]
        if setting == "class":
            old = set(self.classes_) & set(classes)
            if old:
                raise ConfigError(f"class(es) {', '.join(map(str, sorted(old, key=str)))} were learned in an earlier "
                                  "task: in the class setting each task brings new classes (the domain setting "
                                  "takes the same classes again)")
        if setting == "domain" and self.tasks and classes != self.tasks[0].classes:
            raise ConfigError(f"the domain setting needs the first task's classes ({self.tasks[0].classes}) in every "
                              f"task, got {classes}")
        index = {c: k for k, c in enumerate(classes)}
        targets = torch.tensor([index[c] for c in y.tolist()], dtype=torch.long)
        return _Task(len(self.tasks), classes, x, targets)

    def adopt(self, scenario) -> None:
        """After a run on `scenario` (`run_experiment` calls it): its tasks' classes by the data set's own names,
        and its preparation of inputs (padding, per-channel normalisation) kept, so that `predict` and `learn` take
        the data set's raw inputs and labels as the run's tasks had them prepared."""
        if scenario.class_names:
            self.spec = {**self.spec, "class_names": [_plain(name) for name in scenario.class_names]}
            self.tasks = [_TaskRecord(t.id, self._names(t.classes)) for t in self.tasks]
        if scenario.input_preparation is not None:
            self.spec = {**self.spec, "inputs": dict(scenario.input_preparation)}

    def _names(self, classes: list) -> list:
        """A scenario task's classes (indices into the data set's classes) by their names, once `adopt`ed."""
        names = self.spec.get("class_names")
        return [names[c] for c in classes] if names else [_plain(c) for c in classes]

    def _inputs(self, x) -> torch.Tensor:
        """`as_inputs`, prepared as the scenario it learned prepared them (`adopt`), of the shape it was built for."""
        x = as_inputs(x)
        if "inputs" in self.spec:
            x = prepare_raw(x, self.spec["inputs"])
        if "input_shape" in self.spec and tuple(x.shape[1:]) != tuple(self.spec["input_shape"]):
            raise ConfigError(f"inputs of shape {tuple(x.shape[1:])}, but this learner learned inputs of shape "
                              f"{tuple(self.spec['input_shape'])}")
        return x

    # ------------------------------------------------------------------ prediction
    @property
    def classes_(self) -> list:
        """The labels of the head's outputs, in order (the columns of `predict_proba` in the class setting)."""
        if self.spec["setting"] == "domain":
            return list(self.tasks[0].classes) if self.tasks else []
        return [c for task in self.tasks for c in task.classes]

    def _check_fitted(self):
        if self.method is None or not self.tasks:
            raise ConfigError("this learner has learned nothing yet: call learn(x, y) first")

    @torch.no_grad()
    def decision_function(self, x, task: int | None = None) -> torch.Tensor:
        """The scores of every output (logits; minus squared distances for a nearest-mean classifier), on the
        CPU; with `task` (the task setting), that task's outputs only."""
        self._check_fitted()
        x = self._inputs(x)
        setting = self.spec["setting"]
        if setting == "task" and task is None:
            raise ConfigError("in the task setting a prediction needs the task id: predict(x, task=k)")
        if task is not None and not (isinstance(task, int) and 0 <= task < len(self.tasks)):
            raise ConfigError(f"task must be one of 0..{len(self.tasks) - 1}, got {task!r}")
        self.method.model.eval()
        device, size = torch.device(self.config.device), self.config.eval_batch_size
        scores = torch.cat([self.method.predict(batch).cpu() for batch in in_order(x, size, device)])
        return scores[:, self.method.task_slice(task)] if task is not None else scores

    def predict(self, x, task: int | None = None) -> np.ndarray:
        """The label of each input (the labels given to `learn`)."""
        scores = self.decision_function(x, task)
        labels = self.tasks[task].classes if task is not None else self.classes_
        return np.asarray(labels)[scores.argmax(1).numpy()]

    def predict_proba(self, x, task: int | None = None) -> np.ndarray:
        """The softmax of the scores: one column per label of `classes_` (of `tasks[task].classes` with `task`)."""
        return torch.softmax(self.decision_function(x, task), 1).numpy()

    def evaluate(self, x, y=None, task: int | None = None) -> float:
        """Accuracy on inputs and labels (or a map-style Dataset of pairs)."""
        if y is None:
            x, y = from_dataset(x)
        return float(same_labels(self.predict(x, task), as_labels(y, len(x))).mean())

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict:
        """Everything to continue learning: the method's state, the kept optimizer, the random states."""
        return {"method": self.method.state_dict(), "optimizer": optimizer_state(self.method),
                "rng": {"torch": self._rng["torch"], "generator": self.generator.get_state(),
                        "cuda": self._rng.get("cuda")}}

    def load_state_dict(self, state: dict, tasks) -> None:
        """Restore `state_dict()` taken after `tasks`: a scenario's tasks, or records of their ids and classes."""
        self.method.model.to(self.config.device)
        self.method.load_state_dict(state["method"], list(tasks))  # joint training reads the old tasks' data
        self.tasks = [_TaskRecord(t.id, [_plain(c) for c in t.classes]) for t in tasks]
        cuda = state["rng"].get("cuda")
        self._rng = {"torch": state["rng"]["torch"], "cuda": cuda if isinstance(cuda, torch.Tensor) else None}
        self.generator.set_state(state["rng"]["generator"])
        restore_optimizer(self.method, state.get("optimizer"), self.config)

    def save(self, path) -> None:
        """Write the learner to `path` (tensors and plain data only: `load` runs no code from the file), atomically,
        with a digest of its contents that `load` checks; while another process writes `path`, refused."""
        self._check_fitted()
        if self.spec["backbone"] == "built":
            raise ConfigError("this learner wraps a method built outside it, which `load` could not rebuild: build "
                              "the learner by name, Learner(method_name, model, ...), to save it")
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()}
        with lock_beside(path):  # two processes saving one file: the second is refused, not silently lost
            save_checkpoint(path, {"format": FORMAT, "version": 1, "spec": self.spec, "config": config,
                                   "augment": self.augment, "tasks": [t.classes for t in self.tasks],
                                   **self.state_dict()})

    @classmethod
    def load(cls, path, model: nn.Module | None = None) -> "Learner":
        """A learner saved by `save`. A learner built on your own nn.Module needs `model`: the same architecture
        (its weights are restored from the file)."""
        try:
            saved = load_checkpoint(path)
        except FileNotFoundError:
            raise ConfigError(f"no saved learner at {path}") from None
        except DataError:  # its contents do not match their digest: damaged
            raise
        except Exception as error:  # weights_only refusing a global, a truncated file...
            raise DataError(f"{path} is not a learner lifelong can load safely ({type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''}); nothing was run from it") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise DataError(f"{path} is not a saved learner (a run's checkpoint.pt is resumed with --resume)")
        check_saved(saved, path)  # before anything is built from it: a file can ask for any shape
        spec = saved["spec"]
        if spec["backbone"] == "custom" and model is None:
            raise ConfigError(f"{path} holds a learner on your own model: load it with Learner.load(path, model=...) "
                              "and a fresh instance of the same architecture")
        if spec["backbone"] != "custom" and model is not None:
            raise ConfigError(f"{path} holds a learner on the library's {spec['backbone']} backbone, which it "
                              "rebuilds: load it without model=")
        try:
            return cls._rebuild(saved, model, path)
        except LifelongError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError, RuntimeError, AttributeError) as error:
            raise DataError(f"{path} is not a learner lifelong saved, or was altered: its contents do not fit "
                            f"together ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                            ) from None

    @classmethod
    def _rebuild(cls, saved: dict, model: nn.Module | None, path) -> "Learner":
        """The learner of a checked learner file (`check_saved`): built as it was, then given its saved state."""
        spec = saved["spec"]
        config = TrainConfig(**{**saved["config"], "milestones": tuple(saved["config"]["milestones"])})
        learner = cls(spec["method"], model if spec["backbone"] == "custom" else spec["backbone"], spec["setting"],
                      hidden=spec["hidden"], config=config, augment=saved["augment"], **spec["options"])
        learner.build(torch.zeros(2, *spec["input_shape"]))
        adopted = {key: spec[key] for key in ("inputs", "class_names") if key in spec}  # a run's data set (`adopt`)
        learner.spec = {**learner.spec, **adopted}
        differences = _differences(saved["method"]["model"], learner.method.model.backbone.state_dict())
        if differences:
            if model is not None:
                raise ConfigError(f"model= is not the architecture saved in {path}: {differences}")
            raise DataError(f"{path} was altered: its weights do not fit its backbone ({differences})")
        learner.load_state_dict(saved, [_TaskRecord(i, c) for i, c in enumerate(saved["tasks"])])
        # one prediction: a state of the right keys but the wrong kinds (a method's own entries) shows here
        learner.decision_function(torch.zeros(2, *spec["input_shape"]), 0 if spec["setting"] == "task" else None)
        return learner

    def __repr__(self) -> str:
        return (f"Learner({self.spec['method']!r}, setting={self.spec['setting']!r}, tasks learned: "
                f"{len(self.tasks)}, classes: {len(self.classes_)})")

