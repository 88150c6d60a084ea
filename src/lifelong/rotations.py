"""Scenarios of turned images, after Buzzega et al. 2020 (DER, the first release of Mammoth):

- `rotated`: rotated MNIST, each task every image turned by one angle drawn from [0, 180) degrees, all classes in
  every task (domain-incremental, like `scenarios.permuted`);
- `mnist_360`: MNIST-360, the general continual stream: the digits 0-8 in the pairs (0, 1), (1, 2), ..., (8, 0),
  three rounds, each class turning a little more at each sample through 360 degrees; one task per appearance of a
  pair (27), the samples of a task in the stream's order.

Inputs as Mammoth makes them for its MNIST data sets: `transforms.ToTensor()` alone, so pixels in [0, 1], no
normalisation (Mammoth's `get_normalization_transform` returns None for rot-mnist, perm-mnist and mnist-360) and
no padding (28x28). The turn is made on the [0, 1] image with nearest-neighbour sampling and zeros outside, as
torchvision's `rotate` does on Mammoth's PIL images (its default interpolation); a turned image is made of the
original's own pixel values. `interpolation="bilinear"` gives smooth turns instead.
"""

import numpy as np
import torch

from .data import Dataset
from .errors import ConfigError
from .scenarios import Scenario, Task, TransformedTask, _check_fraction, _validation_split, prepare_inputs
from .transforms import pad_gather, rotate, rotation_map

INTERPOLATIONS = ("nearest", "bilinear")
MNIST_360_CLASSES = 9  # the digits 0-8: 9 never appears


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")


# ---------------------------------------------------------------------------------------------- rotated MNIST
class RotatedTask(TransformedTask):
    """A task of turned images made when read, as `scenarios.PermutedTask`: every task keeps only its angle (20
    materialised tasks of MNIST would hold 4.4 GB). With nearest-neighbour sampling the turn is one gather
    (`transforms.rotation_map`): reading 60,000 images costs about 0.15 s."""

    def __init__(self, task_id, classes, x_train, y_train, x_test, y_test, degrees: float, interpolation: str,
                 split=None):
        super().__init__(task_id, classes, x_train, y_train, x_test, y_test, split)
        self.degrees, self.interpolation = degrees, interpolation
        self._map = rotation_map(*x_train.shape[-2:], degrees) if interpolation == "nearest" else None

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self._map is not None:
            return pad_gather(x, self._map)
        return rotate(x, self.degrees, self.interpolation)

    def __repr__(self) -> str:
        return f"RotatedTask(id={self.id}, {self.degrees:.2f} degrees, {len(self.y_train)} training samples)"


def rotation_angles(n_tasks: int, seed: int, low: float = 0.0, high: float = 180.0) -> list[float]:
    """The tasks' angles in degrees: `np.random.RandomState(seed).uniform(low, high, n_tasks)` (Mammoth draws
    each task's `Rotation()` from numpy's global generator, uniform in [0, 180))."""
    return np.random.RandomState(seed).uniform(low, high, n_tasks).tolist()


def rotated(
    dataset: Dataset,
    n_tasks: int = 20,
    seed: int = 0,
    degrees: tuple[float, float] = (0.0, 180.0),
    interpolation: str = "nearest",
    validation_fraction: float = 0.0,
    name: str | None = None,
) -> Scenario:
    """Rotated MNIST (Buzzega et al. 2020; Mammoth's rot-mnist): task t holds every class, every image (training,
    validation and test) turned counter-clockwise by the task's angle, drawn uniformly from `degrees` with `seed`
    (`rotation_angles`) and recorded in `scenario.config["angles"]`. The first task is turned too. Inputs in
    [0, 1], not normalised (see the module). Domain-incremental by nature: one head over the data set's classes.
    A validation split (`validation_fraction`) is drawn once and held out of every task."""
    _check_fraction(validation_fraction)
    _check_interpolation(interpolation)
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise ConfigError(f"n_tasks must be a positive integer, got {n_tasks!r}")
    low, high = (float(d) for d in degrees)
    if not low <= high:
        raise ConfigError(f"degrees must be a range (low, high) with low <= high, got {tuple(degrees)}")
    angles = rotation_angles(n_tasks, seed, low, high)
    x_train, x_test, _ = prepare_inputs(dataset, normalize=False)
    split = (_validation_split(dataset.y_train, validation_fraction, torch.Generator().manual_seed(seed))
             if validation_fraction > 0 else None)
    classes = list(range(dataset.n_classes))
    tasks = [RotatedTask(t, classes, x_train, dataset.y_train, x_test, dataset.y_test, angle, interpolation, split)
             for t, angle in enumerate(angles)]
    return Scenario(
        name=name or f"rotated-{dataset.name}", tasks=tasks, class_order=classes, class_names=dataset.class_names,
        input_shape=tuple(x_train.shape[1:]),
        config=dict(kind="rotated", dataset=dataset.name, n_tasks=n_tasks, degrees=[low, high], angles=angles,
                    interpolation=interpolation, normalize=False, validation_fraction=validation_fraction, seed=seed),
        # None: raw inputs cannot be prepared alone (each task turns them by its own angle)
    )


# ---------------------------------------------------------------------------------------------- MNIST-360
def chunk_sizes(n: int, rounds: int = 3) -> list[int]:
    """The sizes of the 2 x `rounds` consecutive chunks Mammoth cuts a class of `n` training samples into:
    `n // (2 * rounds) + 1` each, the last one what is left."""
    per_chunk = n // (2 * rounds) + 1
    return [min(per_chunk, max(0, n - k * per_chunk)) for k in range(2 * rounds)]


def mnist_360_schedule(counts: list[int], batch_size: int = 16, rounds: int = 3) -> list[dict]:
    """The MNIST-360 stream as Mammoth's `MNIST360` draws it (datasets/mnist_360.py), from the number of training
    samples of each class (`counts[j]`, j = 0..8): one entry per segment (appearance of a pair), in order, each
    {"classes": (a, b), "chunks": (k_a, k_b), "sizes": (n_a, n_b), "batches": [(b_a, b_b), ...]}.

    - Pairs: (0, 1), (1, 2), ..., (8, 0), `rounds` times (27 segments).
    - Each class is cut into 2 x `rounds` chunks (`chunk_sizes`); its appearances take them from the last to the
      first (Mammoth pops them off a list: the first appearance gets the short last chunk).
    - Batches: with r_a, r_b samples left in the two chunks, b_a = min(round(r_a / (r_a + r_b) * batch_size), r_a)
      of class a (Python's round: halves to even) then b_b = min(batch_size - b_a, r_b) of class b; the segment
      ends after the batch that empties either chunk, and what is left of the other is dropped. So every batch but
      a segment's last holds `batch_size` samples.
    """
    if len(counts) != MNIST_360_CLASSES:
        raise ConfigError(f"MNIST-360 streams {MNIST_360_CLASSES} classes, got counts for {len(counts)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"the batch size must be a positive integer, got {batch_size!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds must be a positive integer, got {rounds!r}")
    for j, n in enumerate(counts):
        if min(chunk_sizes(n, rounds)) < 1:
            raise ConfigError(f"MNIST-360 cuts each class into {2 * rounds} chunks of n // {2 * rounds} + 1 samples: "
                              f"class {j} has {n} training samples, which leaves a chunk empty (it needs more)")
    left = {j: list(range(2 * rounds)) for j in range(MNIST_360_CLASSES)}  # chunks not used yet, popped from the end
    segments = []
    for _ in range(rounds):
        for a in range(MNIST_360_CLASSES):
            b = (a + 1) % MNIST_360_CLASSES
            chunks = left[a].pop(), left[b].pop()
            sizes = chunk_sizes(counts[a], rounds)[chunks[0]], chunk_sizes(counts[b], rounds)[chunks[1]]
            r_a, r_b = sizes
            batches = []
            while True:
                b_a = min(int(round(r_a / (r_a + r_b) * batch_size)), r_a)
                b_b = min(batch_size - b_a, r_b)
                batches.append((b_a, b_b))
                r_a, r_b = r_a - b_a, r_b - b_b
                if r_a <= 0 or r_b <= 0:
                    break
            segments.append({"classes": (a, b), "chunks": chunks, "sizes": sizes, "batches": batches})
    return segments


def mnist_360_angles(label: int, first: int, count: int, n: int, start: float | None = None) -> np.ndarray:
    """The angles (degrees) of the draws `first` .. `first + count - 1` of a class of `n` samples: Mammoth's
    `IncrementalRotation`, (i * (360 / n) + start) % 360, starting at (label - 1) x 60 degrees in training (class 0
    at 300) and at 0 in testing (`start=0`). A class turns once round over its `n` draws."""
    start = (label - 1) * 60 if start is None else start
    return (np.arange(first, first + count) * (360.0 / n) + start) % 360


def _turned_per_class(x: torch.Tensor, y: torch.Tensor, interpolation: str):
    """Mammoth's MNIST-360 test set: class by class (0-8; the others left out), the k-th image of class j (in the
    data set's order) turned by k x 360 / n_j degrees. Returns (images, labels, angles)."""
    idx, angles = [], []
    for j in range(MNIST_360_CLASSES):
        members = torch.nonzero(y == j).flatten()
        idx.append(members)
        angles.append(mnist_360_angles(j, 0, len(members), len(members), start=0))
    idx = torch.cat(idx)
    angles = torch.from_numpy(np.concatenate(angles))
    return rotate(x[idx], angles, interpolation), y[idx], angles


def mnist_360(
    dataset: Dataset,
    rounds: int = 3,
    batch_size: int = 16,
    replacement: bool = True,
    seed: int = 0,
    interpolation: str = "nearest",
    validation_fraction: float = 0.0,
    name: str | None = None,
) -> Scenario:
    """MNIST-360 (Buzzega et al. 2020; Mammoth's mnist-360), the general-continual stream, as 9 x `rounds` tasks:
    one per segment of `mnist_360_schedule` (a pair of digits), in the stream's order.

    Task t's training samples are its segment's batches laid end to end, each batch `b_a` draws of class a then
    `b_b` of class b (the schedule's proportional mix, for `batch_size`). **Their order is the stream: feed them
    in the given order, one pass, in batches of `batch_size` from the task's first sample (`scenario.config`
    records `ordered=True` and the batch size), and do not shuffle them**; so fed, the batches are Mammoth's.
    A draw picks a sample of the class's current chunk (the `replacement=True` default: uniformly, with
    replacement, as Mammoth does: it takes `next(iter(loader))` from a shuffling loader, a fresh draw each time;
    `replacement=False`: each sample of the chunk at most once, in a random order) and turns it by the class's
    next angle (`mnist_360_angles`: each class turns once round over its draws). Draws are seeded by `seed`.

    Labels are the digits, and every task lists the 9 classes: one head of 9 outputs shared by all the tasks (the
    library's `domain` setting; the `class` setting would give each task new outputs). The test set, the same for
    every task (one tensor), is Mammoth's: every test image of 0-8 once, the k-th of class j turned by
    k x 360 / n_j degrees; so the accuracy after the last task is the paper's number, and each row of the accuracy
    matrix is that accuracy after one more segment. Mammoth's first release drew its test batches at random (with
    replacement between batches) and its current one re-reads each class's first batch: both turn the i-th image
    evaluated by i x 360 / n_j, as here. `validation_fraction` of each class is held out of the stream before it
    is cut, and made like the test set.
    """
    _check_fraction(validation_fraction)
    _check_interpolation(interpolation)
    if dataset.n_classes < MNIST_360_CLASSES:
        raise ConfigError(f"MNIST-360 streams the classes 0-8: {dataset.name} has {dataset.n_classes} classes")
    x_train, x_test, _ = prepare_inputs(dataset, normalize=False)
    y_train, y_test = dataset.y_train, dataset.y_test
    keep = y_train < MNIST_360_CLASSES
    x_train, y_train = x_train[keep], y_train[keep]
    x_val = y_val = None
    if validation_fraction > 0:
        kept, held = _validation_split(y_train, validation_fraction, torch.Generator().manual_seed(seed))
        x_val, y_val, _ = _turned_per_class(x_train[held], y_train[held], interpolation)
        x_train, y_train = x_train[kept], y_train[kept]
    counts = [int((y_train == j).sum()) for j in range(MNIST_360_CLASSES)]
    schedule = mnist_360_schedule(counts, batch_size, rounds)
    x_test, y_test, _ = _turned_per_class(x_test, y_test, interpolation)  # 0-8 only

    members = [torch.nonzero(y_train == j).flatten() for j in range(MNIST_360_CLASSES)]  # the data set's order
    generator = torch.Generator().manual_seed(seed)
    drawn = [0] * MNIST_360_CLASSES  # draws of each class so far: its angle's counter
    order, angles, labels, bounds = [], [], [], []
    for segment in schedule:
        picks = []
        for side, (label, chunk) in enumerate(zip(segment["classes"], segment["chunks"])):
            size = chunk_sizes(counts[label], rounds)[0]
            pool = members[label][chunk * size:(chunk + 1) * size]
            total = sum(batch[side] for batch in segment["batches"])
            if replacement:
                chosen = pool[torch.randint(len(pool), (total,), generator=generator)]
            else:
                chosen = pool[torch.randperm(len(pool), generator=generator)[:total]]
            turn = mnist_360_angles(label, drawn[label], total, counts[label])
            drawn[label] += total
            picks.append((chosen, torch.from_numpy(turn), label))
        used = [0, 0]
        for batch in segment["batches"]:  # class a's share, then class b's, batch by batch
            for side in (0, 1):
                chosen, turn, label = picks[side]
                part = slice(used[side], used[side] + batch[side])
                order.append(chosen[part])
                angles.append(turn[part])
                labels.append(torch.full((batch[side],), label, dtype=torch.long))
                used[side] += batch[side]
        bounds.append(sum(len(part) for part in order))
    order, angles, labels = torch.cat(order), torch.cat(angles), torch.cat(labels)
    stream = rotate(x_train[order], angles, interpolation)
    classes = list(range(MNIST_360_CLASSES))
    tasks, start = [], 0
    for t, end in enumerate(bounds):
        tasks.append(Task(t, classes, stream[start:end], labels[start:end], x_test, y_test,
                          x_val=x_val, y_val=y_val, ordered=True))
        start = end
    return Scenario(
        name=name or f"{dataset.name}-360", tasks=tasks, class_order=classes,
        class_names=dataset.class_names[:MNIST_360_CLASSES], input_shape=tuple(x_train.shape[1:]),
        config=dict(kind="mnist-360", dataset=dataset.name, n_tasks=len(tasks), rounds=rounds, batch_size=batch_size,
                    ordered=True, replacement=replacement, interpolation=interpolation, normalize=False,
                    pairs=[list(s["classes"]) for s in schedule], segment_sizes=[len(t.y_train) for t in tasks],
                    validation_fraction=validation_fraction, seed=seed),
    )
