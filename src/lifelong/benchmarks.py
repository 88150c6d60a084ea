"""The named benchmarks: a data set and how it is cut into tasks, by name (`lifelong list` describes each).

`make_scenario("split-mnist")` reads the data set (`lifelong.data`) and cuts it (`lifelong.scenarios` for splits
by classes and permutations, `lifelong.rotations` for rotated MNIST and MNIST-360, `lifelong.few_shot` for few-shot
sessions from index lists). It sits above them, so that none imports another.
"""

from . import few_shot as fscil  # (`few_shot` is make_scenario's argument)
from .data import load_dataset, load_omniglot, omniglot_split
from .errors import ConfigError
from .rotations import MNIST_360_CLASSES, mnist_360, rotated
from .scenarios import Scenario, permuted, split_by_classes


# name -> (data set, builder keyword arguments, allowed numbers of tasks); descriptions in catalog.SCENARIOS
BENCHMARKS = {
    "split-digits": ("digits", dict(kind="split", n_tasks=5), None),
    "split-mnist": ("mnist", dict(kind="split", n_tasks=5, pad_to=32), None),
    "split-fashion": ("fashion-mnist", dict(kind="split", n_tasks=5, pad_to=32), None),
    "permuted-mnist": ("mnist", dict(kind="permuted", n_tasks=10, pad_to=32), None),
    # Buzzega et al. 2020 (DER; Mammoth's first release): 28x28, ToTensor alone (no normalisation), every task
    # permuted or rotated; MNIST-360 the general-continual stream (27 segments, one per pair of digits, in order)
    "split-mnist-der": ("mnist", dict(kind="split", n_tasks=5, normalize=False), None),
    "permuted-mnist-der": ("mnist", dict(kind="permuted", n_tasks=20, permute_first=True, normalize=False), None),
    "rotated-mnist": ("mnist", dict(kind="rotated", n_tasks=20), None),
    "mnist-360": ("mnist", dict(kind="mnist-360", rounds=3, batch_size=16), None),
    "split-cifar100": ("cifar100", dict(kind="split", n_tasks=10, class_order_seed=1993,
                                        augment=True, backbone="resnet32"), (5, 10)),
    "split-omniglot": ("omniglot", dict(kind="split", n_tasks=10,
                                        omniglot=dict(subset="background", characters=200, train_drawings=15,
                                                      side=28, drawing_order="sha1 of the 105x105 uint8 pixels")),
                       None),
    # the whole background set (BiC's "large scale" on the data here): 964 characters in 10 steps of 97 or 96
    "split-omniglot-964": ("omniglot", dict(kind="split", n_tasks=10, uneven=True,
                                            omniglot=dict(subset="background", characters=964, train_drawings=15,
                                                          side=28, drawing_order="sha1 of the 105x105 uint8 pixels")),
                           None),
    # few-shot class-incremental (lifelong.few_shot): sessions from the shipped index lists; fixed session counts
    "fscil-cifar100": ("cifar100", dict(kind="few-shot", lists="cifar100", augment=True, backbone="resnet20"), (9,)),
    "fscil-omniglot": ("omniglot", dict(kind="few-shot", lists="omniglot",
                                        omniglot=dict(subset="background", characters=964, train_drawings=15,
                                                      side=28, drawing_order="sha1 of the 105x105 uint8 pixels")),
                       None),
    # 84x84 images: resnet20 (the papers' ResNet-18 is not among the backbones) and CIFAR's crop + flip, in place
    # of CEC's random resized crops
    "fscil-mini-imagenet": ("mini-imagenet", dict(kind="few-shot", lists="mini_imagenet", augment=True,
                                                  backbone="resnet20"), (9,)),
    "fscil-cub200": ("cub200", dict(kind="few-shot", lists="cub200", augment=True, backbone="resnet20"), (11,)),
}


def make_scenario(
    name: str,
    data_dir=None,
    n_tasks: int | None = None,
    seed: int = 0,
    validation_fraction: float = 0.0,
    class_order_seed: int | None = None,
    download: bool = True,
    few_shot: dict | None = None,
    base_classes: int | None = None,
    class_order: list[int] | None = None,
    stream_batch_size: int | None = None,
) -> Scenario:
    """Build a named benchmark (see `BENCHMARKS`); `n_tasks` and `class_order_seed` override its defaults.
    `few_shot` (ways, shots, base_classes; with `n_tasks` the sessions): a protocol of another shape, drawn from the
    same seed, for few-shot scenarios without official lists (fscil-omniglot). `base_classes`: the first task's
    classes, the rest shared equally by the other `n_tasks - 1` (splits by classes; on fscil-omniglot the base
    session's, as few_shot's). `class_order`: the class order as a list of labels (splits by classes), in place of
    the benchmark's order and of `class_order_seed`. `stream_batch_size`: the batch size the stream will be fed in; a
    scenario whose stream is mixed batch by batch (mnist-360: each batch holds the two active digits in proportion)
    is cut for it, as Mammoth cuts it for its --batch_size (default 16); the others do not depend on it."""
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown scenario {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    dataset_name, spec, allowed_tasks = BENCHMARKS[name]
    few_shot = {k: v for k, v in (few_shot or {}).items() if v is not None}
    if base_classes is not None and spec["kind"] == "few-shot":
        few_shot["base_classes"] = base_classes
        base_classes = None
    if (base_classes is not None or class_order is not None) and spec["kind"] != "split":
        option = "base_classes" if base_classes is not None else "class_order"
        raise ConfigError(f"{name} is not a split by classes: {option} has no effect there")
    lists = None
    if few_shot or (n_tasks is not None and spec["kind"] == "few-shot"):
        if spec.get("lists") != "omniglot":
            raise ConfigError(f"{name} follows its official index lists: the number of sessions, ways, shots and "
                              "base classes are theirs (another shape: fscil-omniglot)")
        # drawn before the data are read: a protocol the data cannot give is refused at once
        lists = fscil.omniglot_protocol(spec["omniglot"]["characters"], **few_shot,
                                        **({"sessions": n_tasks} if n_tasks is not None else {}))
        n_tasks = None
    spec = dict(spec)
    kind = spec.pop("kind")
    augment, backbone = spec.pop("augment", False), spec.pop("backbone", "mlp")
    omniglot = spec.pop("omniglot", None)
    if base_classes is not None:
        spec["base_classes"] = base_classes
    if class_order is not None:
        if class_order_seed is not None:
            raise ConfigError("give the class order as a list or as a seed (class_order_seed), not both")
        spec.pop("class_order_seed", None)
        spec["order"] = list(class_order)
    if n_tasks is not None:
        if allowed_tasks and n_tasks not in allowed_tasks and base_classes is None:
            raise ConfigError(f"{name} comes in {' or '.join(map(str, allowed_tasks))} tasks, got {n_tasks}")
        if kind == "mnist-360":  # one task per pair of digits: 9 per round
            if n_tasks < 1 or n_tasks % MNIST_360_CLASSES:
                raise ConfigError(f"{name} has {MNIST_360_CLASSES} segments per round (the pairs (0, 1) ... (8, 0)): "
                                  f"n_tasks must be a multiple of {MNIST_360_CLASSES} (default 27), got {n_tasks}")
            spec["rounds"] = n_tasks // MNIST_360_CLASSES
        else:
            spec["n_tasks"] = n_tasks
    if class_order_seed is not None:
        if kind != "split":
            why = "its index lists fix the classes of each session" if kind == "few-shot" else "every task holds every class"
            raise ConfigError(f"{name} has no class order to shuffle ({why})")
        spec["class_order_seed"] = class_order_seed
    if omniglot:
        characters = load_omniglot(data_dir, subset=omniglot["subset"], download=download)
        dataset = omniglot_split(characters, omniglot["characters"], omniglot["train_drawings"], omniglot["side"])
    else:
        dataset = load_dataset(dataset_name, data_dir=data_dir, download=download)
    if kind == "few-shot":
        lists = lists or fscil.read_index_lists(spec["lists"])
        scenario = fscil.from_index_lists(dataset, lists, name, validation_fraction=validation_fraction, seed=seed,
                                          lookup=fscil.path_lookup(dataset, lists, spec["lists"]))
    elif kind == "split":
        scenario = split_by_classes(dataset, validation_fraction=validation_fraction, seed=seed, name=name, **spec)
    elif kind == "rotated":
        scenario = rotated(dataset, validation_fraction=validation_fraction, seed=seed, name=name, **spec)
    elif kind == "mnist-360":
        if stream_batch_size is not None:
            spec["batch_size"] = stream_batch_size
        scenario = mnist_360(dataset, validation_fraction=validation_fraction, seed=seed, name=name, **spec)
    else:
        scenario = permuted(dataset, validation_fraction=validation_fraction, seed=seed, name=name, **spec)
    scenario.augment, scenario.backbone = augment, backbone
    if omniglot:
        scenario.config["omniglot"] = dict(omniglot)
        # the drawings were inverted and box-resized when read: a file's raw pixels are not the data set's inputs
        scenario.input_preparation = None
    return scenario
