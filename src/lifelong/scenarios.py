"""Scenarios: a data set cut into a sequence of tasks.

A `Task` carries its own train / validation / test tensors, with labels numbered *within the task*
(0 .. n_classes-1); `task.classes[k]` is the data set's label of within-task class k. Whether those labels are
read through one head per task (task-incremental), one shared head (domain-incremental) or one growing head
(class-incremental) is the method's business (see `lifelong.methods.base`), not the scenario's: the same
scenario serves all three settings, chosen with `--setting task|domain|class`.

Inputs are float32, normalised per channel with the mean and standard deviation of the training images
(after optional zero-padding: split-MNIST padded to 32x32 gives Hsu et al.'s 0.1000 / 0.2752).

The named benchmarks (split-mnist, fscil-omniglot, ...) are built in `lifelong.benchmarks`, above this module and
`lifelong.few_shot`: a scenario is how a data set is cut, a benchmark names one cut of one data set.
"""

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import Dataset
from .catalog import SETTINGS  # task, domain, class
from .errors import ConfigError


@dataclass
class Task:
    id: int
    classes: list[int]  # data-set labels of this task's classes; within-task label k means classes[k]
    x_train: torch.Tensor  # or a Dataset of inputs read when needed (ImageFiles: `from_data(..., on_disk=True)`)
    y_train: torch.Tensor  # int64 within-task labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None = None  # held out of the training data (never the test set), for model selection
    y_val: torch.Tensor | None = None
    ordered: bool = False  # its training samples are a stream in this order (MNIST-360): `--stream` keeps it

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class Scenario:
    name: str
    tasks: list[Task]
    class_order: list[int]  # data-set labels in the order the tasks bring them
    class_names: list[str]
    input_shape: tuple[int, ...]  # (C, H, W) of one input
    augment: bool = False  # random crop + flip on training batches (CIFAR)
    backbone: str = "mlp"  # the default backbone for this scenario
    config: dict = field(default_factory=dict)  # how the scenario was built, recorded in the results
    # how the data set's own inputs became the tasks' (`prepare_inputs`): a learner trained on the scenario takes
    # raw inputs after the run (`Learner.adopt`); None where raw inputs cannot be prepared alone (permuted tasks)
    input_preparation: dict | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)


def prepare_inputs(dataset: Dataset, pad_to: int | None = None,
                   normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Float inputs in [0, 1], zero-padded to `pad_to` x `pad_to`, normalised with the training statistics (or,
    `normalize=False`, left in [0, 1]: mean 0 and std 1 recorded); and that preparation as plain data
    (`prepare_raw` applies it to other inputs of the data set)."""
    x_train, x_test = dataset.x_train, dataset.x_test
    if x_train.dtype == torch.uint8:
        x_train, x_test = x_train.float().div_(255), x_test.float().div_(255)
    if pad_to is not None:
        if pad_to < max(x_train.shape[-2:]):
            raise ConfigError(f"cannot pad {'x'.join(map(str, x_train.shape[-2:]))} images to {pad_to}x{pad_to}")
        x_train, x_test = _pad(x_train, pad_to), _pad(x_test, pad_to)
    dims = [0, 2, 3]  # per channel
    if normalize:
        mean = x_train.mean(dim=dims, keepdim=True, dtype=torch.float64).float()
        std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-8)
    else:  # x - 0 and / 1 leave the values as they are (a copy of the inputs, as normalising makes one)
        mean = torch.zeros((1, x_train.shape[1], 1, 1), dtype=x_train.dtype)
        std = torch.ones_like(mean)
    preparation = {"pad_to": pad_to, "mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
    return (x_train - mean) / std, (x_test - mean) / std, preparation


def _pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images zero-padded to `size` x `size`, centred."""
    height, width = x.shape[-2:]
    top, left = (size - height) // 2, (size - width) // 2
    return F.pad(x, (left, size - width - left, top, size - height - top))


def prepare_raw(x: torch.Tensor, preparation: dict) -> torch.Tensor:
    """Float inputs (uint8 images already scaled to [0, 1]) prepared as `prepare_inputs` prepared the data set's:
    zero-padded to `pad_to`, normalised with the recorded per-channel mean and std."""
    x = _as_images(x)  # (N, C, H, W), as from_data made them
    pad_to = preparation.get("pad_to")
    if pad_to is not None and max(x.shape[-2:]) < pad_to:
        x = _pad(x, pad_to)
    mean, std = (torch.tensor(preparation[k], dtype=x.dtype, device=x.device) for k in ("mean", "std"))
    if x.shape[1] != len(mean):
        return x  # not images of the data set's channels: the shape check that follows says what is wrong
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def class_order(n_classes: int, seed: int | None) -> list[int]:
    """The natural order 0..n-1, or the permutation numpy draws after `np.random.seed(seed)` (the iCaRL
    convention: seed 1993 gives iCaRL's CIFAR-100 order 68, 56, 78, 8, 23, ...)."""
    if seed is None:
        return list(range(n_classes))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ConfigError(f"the class-order seed must be an integer in [0, 2**32), got {seed!r}")
    return np.random.RandomState(seed).permutation(n_classes).tolist()


def _validation_split(y: torch.Tensor, fraction: float, generator: torch.Generator,
                      option: str = "validation_fraction", class_names=None):
    """Indices (train, held out): `fraction` of every class held out, stratified and seeded. `option` names the
    fraction in the error (test_fraction draws the test set this way), `class_names` the classes."""
    validation = option == "validation_fraction"
    train_idx, val_idx = [], []
    for label in torch.unique(y).tolist():
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = int(round(fraction * len(idx)))
        if not 1 <= n_val < len(idx):
            name = label if class_names is None else repr(class_names[label])
            raise ConfigError(
                f"{option} {fraction} holds out {n_val} of the {len(idx)} {'training ' if validation else ''}samples "
                f"of class {name}: each class needs at least one sample for {'validation' if validation else 'testing'}"
                " and one for training" + ("" if validation else " (or give a test set of its own: x_test= in "
                                                                 "Python, --test-data on the command line)"))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values


def _make_task(task_id, classes, x_train, y_train, x_test, y_test, validation_fraction, generator,
               split=None) -> Task:
    """`split`: (train, validation) indices to use rather than drawing them from `generator`."""
    task = Task(task_id, list(classes), x_train, y_train, x_test, y_test)
    if validation_fraction > 0:
        train_idx, val_idx = split if split is not None else _validation_split(y_train, validation_fraction, generator)
        task.x_train, task.y_train = x_train[train_idx], y_train[train_idx]
        task.x_val, task.y_val = x_train[val_idx], y_train[val_idx]
    return task


class TransformedTask:
    """A task whose images are made when read from one shared copy (`transform`): every task keeps only what makes
    it its own (a permutation, an angle), so a scenario's memory does not grow with its number of tasks (20
    materialised tasks of padded MNIST held 6.1 GB). Reading `x_train` costs one pass over the images: read it once
    per use. Otherwise a `Task` (same attributes). `split`: the (train, validation) indices every task shares."""

    ordered = False

    def __init__(self, task_id, classes, x_train, y_train, x_test, y_test, split=None):
        self.id, self.classes = task_id, classes
        self._train, self._test, self._split = x_train, x_test, split
        self.y_train = y_train[split[0]] if split is not None else y_train
        self.y_val = y_train[split[1]] if split is not None else None
        self.y_test = y_test

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def x_train(self) -> torch.Tensor:
        return self.transform(self._train[self._split[0]] if self._split is not None else self._train)

    @property
    def x_val(self) -> torch.Tensor | None:
        return self.transform(self._train[self._split[1]]) if self._split is not None else None

    @property
    def x_test(self) -> torch.Tensor:
        return self.transform(self._test)


class PermutedTask(TransformedTask):
    """A task of permuted pixels (about 0.2 s to read 60,000 images)."""

    def __init__(self, task_id, classes, x_train, y_train, x_test, y_test, perm, split=None):
        super().__init__(task_id, classes, x_train, y_train, x_test, y_test, split)
        self.perm = perm

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.perm is None:  # task 1 (unless permute_first): the original order
            return x
        # index_select: half the time of x[:, perm] here (0.05 against 0.10 s for 10,000 images), so evaluating a
        # task costs its forward pass and a fifth more
        return torch.index_select(x.flatten(1), 1, self.perm).reshape(x.shape)

    def __repr__(self) -> str:
        return f"PermutedTask(id={self.id}, {len(self.y_train)} training samples)"


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction}")


def split_by_classes(
    dataset: Dataset,
    n_tasks: int,
    class_order_seed: int | None = None,
    pad_to: int | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    name: str | None = None,
    uneven: bool = False,
    base_classes: int | None = None,
    order: list[int] | None = None,
    normalize: bool = True,
) -> Scenario:
    """Split the classes into `n_tasks` tasks of equal size, in the natural or a seeded class order. `uneven`: where
    `n_tasks` does not divide the classes, the first tasks take one class more (964 Omniglot characters in 10 steps:
    4 of 97, then 6 of 96). `base_classes`: the first task takes that many classes and the other `n_tasks - 1` share
    the rest equally (LUCIR's and PODNet's CIFAR-100: 50, then 5, 10, 25 or 50 steps). `order`: the class order given
    as a list (a permutation of the labels: PODNet's published orders), instead of `class_order_seed`.
    `normalize=False`: inputs left in [0, 1] (Mammoth's `ToTensor` alone), not normalised with the training
    statistics."""
    _check_fraction(validation_fraction)
    n_classes = dataset.n_classes
    if order is not None:
        if class_order_seed is not None:
            raise ConfigError("give the class order as a list (order) or as a seed (class_order_seed), not both")
        order = [int(c) for c in order]
        if sorted(order) != list(range(n_classes)):
            raise ConfigError(f"the class order must list each of the {n_classes} classes of {dataset.name} once "
                              f"(a permutation of 0..{n_classes - 1}), got {len(order)} entries")
    else:
        order = class_order(n_classes, class_order_seed)
    if base_classes is not None:
        if isinstance(base_classes, bool) or not isinstance(base_classes, int) or not 0 < base_classes < n_classes:
            raise ConfigError(f"base_classes is the first task's number of classes: 1 to {n_classes - 1} "
                              f"({dataset.name} has {n_classes}), got {base_classes!r}")
        rest = n_classes - base_classes
        if n_tasks < 2 or n_tasks - 1 > rest or (rest % (n_tasks - 1) and not uneven):
            raise ConfigError(f"base_classes {base_classes} leaves {rest} classes of {dataset.name}: n_tasks - 1 "
                              f"(the tasks after the first) must divide them, got n_tasks {n_tasks}")
        steps = n_tasks - 1
        sizes = [base_classes] + [rest // steps + (t < rest % steps) for t in range(steps)]
    else:
        if n_tasks < 1 or n_tasks > n_classes or (n_classes % n_tasks and not uneven):
            raise ConfigError(f"{dataset.name} has {n_classes} classes: n_tasks must divide it, got {n_tasks}")
        sizes = [n_classes // n_tasks + (t < n_classes % n_tasks) for t in range(n_tasks)]
    x_train, x_test, preparation = prepare_inputs(dataset, pad_to, normalize)
    # rank[label] = position of the label in the class order, so within-task labels are one subtraction away
    rank = torch.empty(n_classes, dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(n_classes)
    train_rank, test_rank = rank[dataset.y_train], rank[dataset.y_test]
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for t, per_task in enumerate(sizes):
        first = sum(sizes[:t])
        train_mask = (train_rank >= first) & (train_rank < first + per_task)
        test_mask = (test_rank >= first) & (test_rank < first + per_task)
        tasks.append(_make_task(
            t, order[first:first + per_task],
            x_train[train_mask], train_rank[train_mask] - first,
            x_test[test_mask], test_rank[test_mask] - first,
            validation_fraction, generator,
        ))
    return Scenario(
        name=name or f"split-{dataset.name}", tasks=tasks, class_order=order, class_names=dataset.class_names,
        input_shape=tuple(x_train.shape[1:]),
        config=dict(kind="split-by-classes", dataset=dataset.name, n_tasks=n_tasks, class_order_seed=class_order_seed,
                    pad_to=pad_to, validation_fraction=validation_fraction, seed=seed,
                    **({"task_sizes": sizes} if uneven or base_classes is not None else {}),
                    **({"base_classes": base_classes} if base_classes is not None else {}),
                    **({} if normalize else {"normalize": False})),
        input_preparation=preparation,
    )


def permuted(
    dataset: Dataset,
    n_tasks: int,
    seed: int = 0,
    pad_to: int | None = None,
    validation_fraction: float = 0.0,
    name: str | None = None,
    permute_first: bool = False,
    normalize: bool = True,
) -> Scenario:
    """Every task holds all classes with its own fixed random permutation of the pixels.

    The first task keeps the original pixel order (as in Hsu et al.'s code); task t > 0 permutes the pixels with
    a permutation drawn from `seed`. `permute_first`: the first task is permuted too (Buzzega et al. 2020's
    Mammoth: every task draws a permutation; task t then has the permutation that task t + 1 has without it).
    `normalize=False`: inputs left in [0, 1] (Mammoth's `ToTensor` alone), not normalised with the training
    statistics. The natural setting is domain-incremental (one shared head).
    """
    _check_fraction(validation_fraction)
    if n_tasks < 1:
        raise ConfigError(f"n_tasks must be at least 1, got {n_tasks}")
    x_train, x_test, _ = prepare_inputs(dataset, pad_to, normalize)
    shape = x_train.shape[1:]
    n_pixels = int(np.prod(shape))
    generator = torch.Generator().manual_seed(seed)  # the permutations alone: the same with or without validation
    # one validation split for every task: its images are never another task's training images, permuted
    split = (_validation_split(dataset.y_train, validation_fraction, torch.Generator().manual_seed(seed))
             if validation_fraction > 0 else None)
    tasks = []
    for t in range(n_tasks):
        perm = None if t == 0 and not permute_first else torch.randperm(n_pixels, generator=generator)
        tasks.append(PermutedTask(t, list(range(dataset.n_classes)), x_train, dataset.y_train, x_test, dataset.y_test,
                                  perm, split))
    config = dict(kind="permuted", dataset=dataset.name, n_tasks=n_tasks, pad_to=pad_to,
                  validation_fraction=validation_fraction, seed=seed)
    # recorded where they differ from the defaults: the configuration of runs made before stays the same (a
    # checkpoint is resumed only under an equal configuration)
    config.update({k: v for k, v, default in (("permute_first", permute_first, False),
                                              ("normalize", normalize, True)) if v != default})
    return Scenario(
        name=name or f"permuted-{dataset.name}", tasks=tasks, class_order=list(range(dataset.n_classes)),
        class_names=dataset.class_names, input_shape=tuple(shape), config=config,
    )


def from_data(x, y=None, n_tasks: int = 5, *, x_test=None, y_test=None, test_fraction: float = 0.2,
              class_order_seed: int | None = None, validation_fraction: float = 0.0, seed: int = 0,
              size: int | None = None, name: str = "my-data", on_disk: bool = False, workers: int = 2) -> Scenario:
    """Your data cut into `n_tasks` tasks of classes, by the built-in scenarios' rules (`split_by_classes`).

    x: inputs (tensor or numpy array, (N, C, H, W), (N, H, W) or (N, features)) with labels `y` (integers or
    strings), a map-style Dataset of (input, label) pairs, or the path of an image folder (one sub-folder per
    class, images resized to `size`). The test set: `x_test` (and `y_test`) in the same forms, or else
    `test_fraction` of each class drawn from `x` with `seed`. Classes are ordered by their sorted labels (or
    shuffled with `class_order_seed`); inputs are scaled and normalised as the built-in data sets are.

    on_disk=True (an image folder, and `x_test` another one or None): the images stay in their files and are read
    batch by batch, by `workers` DataLoader processes, while training and evaluating (`image_folder_on_disk`); for
    data that do not fit in memory.
    """
    from .data.user import check_size, read_user_data

    check_size(size)  # before any image is read
    if on_disk:
        if not isinstance(x, (str, Path)) or not (x_test is None or isinstance(x_test, (str, Path))) or (
                y is not None or y_test is not None):
            raise ConfigError("on_disk=True reads image folders (their paths, the labels their sub-folders' names): "
                              "the training folder, and a test folder as x_test or test_fraction of each class")
        return image_folder_on_disk(x, n_tasks, test_folder=x_test, test_fraction=test_fraction,
                                    class_order_seed=class_order_seed, validation_fraction=validation_fraction,
                                    seed=seed, size=size, name=name, workers=workers)

    x, labels = read_user_data(x, y, size)
    class_names = sorted({str(c) for c in labels.tolist()})
    index = {c: k for k, c in enumerate(class_names)}
    targets = torch.tensor([index[str(c)] for c in labels.tolist()])
    if x_test is None:
        if not 0 < test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1) when no test set is given, got {test_fraction}")
        train_idx, test_idx = _validation_split(targets, test_fraction, torch.Generator().manual_seed(seed),
                                                "test_fraction", class_names)
        x, x_test, targets, test_targets = x[train_idx], x[test_idx], targets[train_idx], targets[test_idx]
    else:
        x_test, test_labels = read_user_data(x_test, y_test, size)
        unknown = sorted({str(c) for c in test_labels.tolist()} - set(class_names))
        if unknown:
            raise ConfigError(f"the test set has classes the training set lacks: {', '.join(unknown[:5])}")
        test_targets = torch.tensor([index[str(c)] for c in test_labels.tolist()])
    x, x_test = (_as_images(t) for t in (x, x_test))
    if x.shape[1:] != x_test.shape[1:]:
        raise ConfigError(f"training inputs are {tuple(x.shape[1:])}, test inputs {tuple(x_test.shape[1:])}")
    dataset = Dataset(name, x, targets, x_test, test_targets, class_names)
    scenario = split_by_classes(dataset, n_tasks, class_order_seed, validation_fraction=validation_fraction,
                                seed=seed, name=name)
    if not all(math.isfinite(v) for v in scenario.input_preparation["std"]):  # the variance past float32's range
        raise ConfigError(f"inputs of values up to {float(x.abs().max()):.3g} cannot be normalised in float32 (their "
                          "variance overflows): scale them down")
    scenario.input_preparation["size"] = size  # an image folder's images are read at this size
    return scenario


def image_folder_on_disk(path, n_tasks: int = 5, *, test_folder=None, test_fraction: float = 0.2,
                         class_order_seed: int | None = None, validation_fraction: float = 0.0, seed: int = 0,
                         size: int | None = None, name: str = "my-data", workers: int = 2) -> Scenario:
    """`from_data(path, on_disk=True)`: tasks whose inputs are `ImageFiles`, read from the files when a batch needs
    them (training draws the same batches as from tensors: `inputs.input_batches`). The split into training and
    test images (those of `test_folder`, if given, whose classes must be the training folder's) and the tasks follow
    `from_data`'s rules; the normalisation statistics come from one pass over the
    training images, one at a time. `in_memory(scenario)` reads it all into tensors: the same numbers, faster."""
    from .data.user import ImageFiles, list_image_folder, read_image

    _check_fraction(validation_fraction)
    files, labels, class_names, mode = list_image_folder(path, size)
    targets = torch.tensor(labels)
    if n_tasks < 1 or len(class_names) % n_tasks:
        raise ConfigError(f"{path} has {len(class_names)} classes: n_tasks must divide it, got {n_tasks}")
    if test_folder is None:
        if not 0 < test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
        train_idx, test_idx = _validation_split(targets, test_fraction, torch.Generator().manual_seed(seed),
                                                "test_fraction", class_names)
        test_files, test_targets = files, targets  # the test indices pick among the same files
    else:
        test_files, test_labels, test_names, _ = list_image_folder(test_folder, size)  # read in the training mode
        unknown = sorted(set(test_names) - set(class_names))
        if unknown:
            raise ConfigError(f"the test folder {test_folder} has classes the training folder lacks: "
                              f"{', '.join(unknown[:5])}")
        shapes = [tuple(read_image(f, mode, size).shape) for f in (files[0], test_files[0])]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"the test images are {shapes[1]}, the training images {shapes[0]}: give size= to "
                              "resize both")
        test_targets = torch.tensor([class_names.index(test_names[k]) for k in test_labels])
        train_idx, test_idx = torch.arange(len(files)), torch.arange(len(test_files))
    # per-channel mean and std of the training images, from exact integer sums of their uint8 pixels
    total = total_sq = 0
    for i in train_idx.tolist():
        image = read_image(files[i], mode, size).long()
        total, total_sq = total + image.sum((1, 2)), total_sq + (image * image).sum((1, 2))
    n = len(train_idx) * image.shape[1] * image.shape[2]
    mean = [t / (255 * n) for t in total.tolist()]
    var = [(q * n - t * t) / (n * (n - 1)) / 255 ** 2 for t, q in zip(total.tolist(), total_sq.tolist())]
    images = ImageFiles(files, mode, size, torch.tensor(mean).view(-1, 1, 1),
                        torch.tensor(var).sqrt().clamp_min(1e-8).view(-1, 1, 1), workers)
    test_images = (images if test_folder is None
                   else ImageFiles(test_files, mode, size, images.mean, images.std, workers))
    order = class_order(len(class_names), class_order_seed)
    rank = torch.empty(len(class_names), dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(len(class_names))
    per_task = len(class_names) // n_tasks
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        first = t * per_task

        def part(idx, targets=targets):  # this task's images among `idx`, and their within-task labels
            idx = idx[(rank[targets[idx]] >= first) & (rank[targets[idx]] < first + per_task)]
            return idx, rank[targets[idx]] - first

        train, y_train = part(train_idx)
        test, y_test = part(test_idx, test_targets)
        task = Task(t, order[first:first + per_task], images.subset(train.tolist()), y_train,
                    test_images.subset(test.tolist()), y_test)
        if validation_fraction > 0:
            kept, held = _validation_split(y_train, validation_fraction, generator)
            task.x_train, task.y_train = images.subset(train[kept].tolist()), y_train[kept]
            task.x_val, task.y_val = images.subset(train[held].tolist()), y_train[held]
        tasks.append(task)
    return Scenario(name=name, tasks=tasks, class_order=order, class_names=class_names,
                    input_shape=tuple(images[0].shape),
                    input_preparation={"pad_to": None, "mean": mean, "std": images.std.flatten().tolist(),
                                       "size": size},
                    config=dict(kind="image-folder", on_disk=True, n_tasks=n_tasks, test_fraction=test_fraction,
                                test_folder=None if test_folder is None else str(test_folder),
                                class_order_seed=class_order_seed, validation_fraction=validation_fraction, seed=seed,
                                size=size))


def in_memory(scenario: Scenario) -> Scenario:
    """The scenario with every task's images read into tensors (the fast path, when they fit): the same numbers as
    reading them batch by batch from disk."""
    from .inputs import read

    tasks = [replace(task, x_train=read(task.x_train), x_test=read(task.x_test),
                     x_val=None if task.x_val is None else read(task.x_val))
             for task in scenario.tasks]
    return replace(scenario, tasks=tasks, config={**scenario.config, "on_disk": False})


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W): grey images gain a channel, feature vectors become 1 x 1 x features."""
    if x.dim() == 2:
        return x[:, None, None, :]
    if x.dim() == 3:
        return x[:, None]
    if x.dim() != 4:
        raise ConfigError(f"inputs must be (N, C, H, W), (N, H, W) or (N, features), got shape {tuple(x.shape)}")
    return x
