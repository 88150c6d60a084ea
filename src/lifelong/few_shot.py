"""Few-shot class-incremental learning (FSCIL, Tao et al. CVPR 2020): a base session of many classes with all
their training data, then sessions of N-way K-shot new classes; after each session the model is tested on every
class seen so far (the figures: that accuracy after each session, its mean, and the drop, first minus last).

A protocol is a list of index lists, one per session, in the official format of TOPIC's and CEC's code
(`session_1.txt` the base session's training images, `session_t.txt` the N x K shots of session t, one image per
line). The official lists for CIFAR-100, miniImageNet and CUB-200 ship inside the package
(`lifelong/data/fscil_index_list/`); for Omniglot, a protocol of the same shape is generated once from a fixed seed
(`omniglot_protocol`) and shipped too. CIFAR-100's lines are indices into the official training set; Omniglot's
are indices into `omniglot_split` of the 964 background characters (character c's training drawing k is
c * 15 + k). miniImageNet's and CUB-200's lines are image paths (`MINI-ImageNet/train/<wnid>/<file>.jpg`,
`CUB_200_2011/images/<class>/<file>.jpg`): `path_lookup` turns them into training indices, reading them as CEC's
loaders do (miniImageNet by file name, CUB-200 by the path under images/).

Sessions are `Task`s: session t's classes are its task's classes, its test set every test image of those classes,
so the pooled accuracy after session t (`accuracy_seen_classes` in the results) is the FSCIL figure. Only the base
session can hold out validation data (`validation_fraction`); a few-shot session keeps all its shots for training.
"""

from importlib import resources

import numpy as np
import torch

from .data import Dataset, cub200, mini_imagenet
from .errors import ConfigError
from .scenarios import Scenario, _check_fraction, _make_task, prepare_inputs

# the shape of TOPIC's CIFAR-100 protocol, which the Omniglot protocol copies
BASE_CLASSES, WAYS, SHOTS, SESSIONS = 60, 5, 5, 9
OMNIGLOT_SEED = 2020  # the seed the shipped Omniglot lists were drawn with
OMNIGLOT_TRAIN_DRAWINGS = 15
# the protocols whose lines are image paths: how a line names a file of the loader's extras["train_files"]
PATH_PROTOCOLS = {"mini_imagenet": mini_imagenet.file_of_line, "cub200": cub200.file_of_line}


def read_index_lists(protocol: str) -> list[list[str]]:
    """The shipped lists of `protocol` (cifar100, mini_imagenet, cub200, omniglot), one list of lines per session."""
    folder = resources.files("lifelong.data") / "fscil_index_list" / protocol
    if not folder.is_dir():
        raise ConfigError(f"no FSCIL index lists for {protocol!r}")
    sessions = []
    while (folder / f"session_{len(sessions) + 1}.txt").is_file():
        text = (folder / f"session_{len(sessions) + 1}.txt").read_text()
        sessions.append([line.strip() for line in text.splitlines() if line.strip()])
    return sessions


def draw_protocol(y_train: torch.Tensor, base_classes: int = BASE_CLASSES, ways: int = WAYS, shots: int = SHOTS,
                  sessions: int = SESSIONS, seed: int = 0) -> list[list[str]]:
    """Index lists of TOPIC's shape over a data set whose training labels are `y_train`: `base_classes` classes with
    all their training images, then `sessions - 1` sessions of `ways` new classes with `shots` images each.
    Classes and shots are drawn with numpy's RandomState(seed)."""
    labels = torch.as_tensor(y_train)
    counts = torch.bincount(labels)
    check_protocol(int((counts > 0).sum()), base_classes, ways, shots, sessions)
    rng = np.random.RandomState(seed)
    classes = torch.nonzero(counts).flatten()[torch.as_tensor(rng.permutation(int((counts > 0).sum())))].tolist()
    images = {c: torch.nonzero(labels == c).flatten().numpy() for c in classes[:base_classes + ways * (sessions - 1)]}
    lists = [[str(i) for c in classes[:base_classes] for i in images[c]]]
    for s in range(sessions - 1):
        session = []
        for c in classes[base_classes + s * ways:base_classes + (s + 1) * ways]:
            if shots > len(images[c]):
                raise ConfigError(f"{shots} shots per class, but class {c} has only {len(images[c])} training "
                                  f"images: use at most {len(images[c])} shots")
            session += [str(i) for i in sorted(rng.choice(images[c], shots, replace=False).tolist())]
        lists.append(session)
    return lists


def omniglot_protocol(n_characters: int = 964, seed: int = OMNIGLOT_SEED, **shape) -> list[list[str]]:
    """The Omniglot lists: `draw_protocol` over `n_characters` characters of 15 training drawings each (character
    c's drawing k is training image c * 15 + k), from the seed the shipped lists were drawn with."""
    labels = torch.arange(n_characters).repeat_interleave(OMNIGLOT_TRAIN_DRAWINGS)
    return draw_protocol(labels, seed=seed, **shape)


def path_lookup(dataset: Dataset, lists: list[list[str]], protocol: str) -> dict[str, int] | None:
    """{line: training index} for the lines of `lists` that name an image of `dataset`, for the protocols whose
    lines are image paths (`PATH_PROTOCOLS`); None for the others, whose lines are indices already. A line whose
    image the data set lacks is left out, for `from_index_lists` to report."""
    if protocol not in PATH_PROTOCOLS:
        return None
    file_of_line = PATH_PROTOCOLS[protocol]
    position = {file: i for i, file in enumerate(dataset.extras["train_files"])}
    return {line: position[file_of_line(line)] for lines in lists for line in lines if file_of_line(line) in position}


def check_protocol(n_classes: int, base_classes: int, ways: int, shots: int, sessions: int) -> None:
    """One clear line for a protocol the data cannot give."""
    if min(base_classes, ways, shots, sessions) < 1:
        raise ConfigError(f"base classes, ways, shots and sessions must be at least 1, got {base_classes}, {ways}, "
                          f"{shots}, {sessions}")
    if base_classes < ways:
        raise ConfigError(f"a base session of {base_classes} classes is smaller than a {ways}-way session: "
                          "FSCIL's base session has many classes; raise base_classes or lower ways")
    needed = base_classes + ways * (sessions - 1)
    if needed > n_classes:
        raise ConfigError(f"{base_classes} base classes and {sessions - 1} sessions of {ways} need {needed} classes; "
                          f"the data set has {n_classes}")


def from_index_lists(dataset: Dataset, lists: list[list[str]], name: str, pad_to: int | None = None,
                     validation_fraction: float = 0.0, seed: int = 0, lookup: dict[str, int] | None = None) -> Scenario:
    """The sessions the index lists name, as tasks: session t's classes in the order its lines first name them,
    its training images those lines, its test images every test image of its classes. Lines are training indices,
    or, given `lookup` (see `path_lookup`), keys of that map from line to training index."""
    _check_fraction(validation_fraction)
    x_train, x_test, preparation = prepare_inputs(dataset, pad_to)
    generator = torch.Generator().manual_seed(seed)
    tasks, seen = [], set()
    for t, lines in enumerate(lists):
        indices = _indices(lines, t, len(x_train)) if lookup is None else _looked_up(lines, t, lookup)
        labels = dataset.y_train[indices]
        classes = list(dict.fromkeys(labels.tolist()))  # first-appearance order
        if seen & set(classes):
            raise ConfigError(f"session_{t + 1}.txt names classes of an earlier session "
                              f"({sorted(seen & set(classes))[:5]}): each session brings new classes")
        seen.update(classes)
        rank = torch.full((dataset.n_classes,), -1, dtype=torch.long)
        rank[torch.tensor(classes)] = torch.arange(len(classes))
        test_mask = rank[dataset.y_test] >= 0
        tasks.append(_make_task(t, classes, x_train[indices], rank[labels], x_test[test_mask],
                                rank[dataset.y_test[test_mask]], validation_fraction if t == 0 else 0.0, generator))
    order = [c for task in tasks for c in task.classes]
    return Scenario(name=name, tasks=tasks, class_order=order, class_names=dataset.class_names,
                    input_shape=tuple(x_train.shape[1:]), input_preparation=preparation,
                    config=dict(kind="few-shot", dataset=dataset.name, sessions=len(lists),
                                base_classes=tasks[0].n_classes, ways=[t.n_classes for t in tasks[1:]],
                                pad_to=pad_to, validation_fraction=validation_fraction, seed=seed))


def _indices(lines: list[str], session: int, n_images: int) -> torch.Tensor:
    """A session's lines as indices into the training set, each checked."""
    try:
        indices = torch.tensor([int(line) for line in lines], dtype=torch.long)
    except ValueError:
        bad = next(line for line in lines if not line.lstrip("-").isdigit())
        raise ConfigError(f"session_{session + 1}.txt: {bad!r} is not an image index of this data set") from None
    wrong = indices[(indices < 0) | (indices >= n_images)]
    if len(wrong):
        raise ConfigError(f"session_{session + 1}.txt names image {int(wrong[0])}, but the data set has "
                          f"{n_images} training images (indices 0 to {n_images - 1}): wrong list for this data set?")
    if len(indices) == 0:
        raise ConfigError(f"session_{session + 1}.txt names no image")
    return indices


def _looked_up(lines: list[str], session: int, lookup: dict[str, int]) -> torch.Tensor:
    """A session's path lines as indices into the training set, each one found in `lookup`."""
    missing = next((line for line in lines if line not in lookup), None)
    if missing is not None:
        raise ConfigError(f"session_{session + 1}.txt names {missing}, an image this data set does not have: "
                          "use the complete data set, or lists made for the images you have")
    if not lines:
        raise ConfigError(f"session_{session + 1}.txt names no image")
    return torch.tensor([lookup[line] for line in lines], dtype=torch.long)
