"""Datasets: loaders that return in-memory tensors, and the files they are read from.

Files live in a data directory: the `data_dir` argument, else $LIFELONG_DATA, else ~/.cache/lifelong.
Missing files are downloaded from the official mirrors (unless `download=False`) and every file is checked
against its official MD5. miniImageNet and CUB-200 are read from folders you unpack yourself: no download, and no
official checksum of their unpacked files (their loaders' errors say where to put them).
"""

from ..errors import ConfigError
from .cifar import load_cifar100, read_cifar100_archive
from .cub200 import load_cub200
from .dataset import Dataset
from .digits import load_digits
from .files import ensure_file, md5sum, resolve_data_dir
from .mini_imagenet import load_mini_imagenet
from .mnist import load_fashion_mnist, load_mnist, read_idx
from .omniglot import Omniglot, load_omniglot, omniglot_split, read_omniglot_zip

DATASETS = {
    "digits": (load_digits, "scikit-learn's 8x8 digits, 1,257 train / 540 test, 10 classes (no download)"),
    "mnist": (load_mnist, "MNIST handwritten digits, 28x28 grey, 60,000 train / 10,000 test, 10 classes"),
    "fashion-mnist": (load_fashion_mnist, "Fashion-MNIST clothing, 28x28 grey, 60,000 train / 10,000 test, 10 classes"),
    "cifar100": (load_cifar100, "CIFAR-100, 32x32 colour, 50,000 train / 10,000 test, 100 classes (20 coarse)"),
    "mini-imagenet": (load_mini_imagenet, "miniImageNet in CEC's layout, 84x84 colour, 50,000 train / 10,000 test, "
                                          "100 classes (no download)"),
    "cub200": (load_cub200, "CUB-200-2011 birds, resized to 84x84 colour, 5,994 train / 5,794 test, 200 classes "
                            "(no download)"),
}


def load_dataset(name: str, data_dir=None, download: bool = True) -> Dataset:
    """Load a dataset of `DATASETS` by name."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    loader, _ = DATASETS[name]
    return loader(data_dir=data_dir, download=download)


__all__ = [
    "DATASETS", "Dataset", "Omniglot", "ensure_file", "load_cifar100", "load_cub200", "load_dataset", "load_digits",
    "load_fashion_mnist", "load_mini_imagenet", "load_mnist", "load_omniglot", "md5sum", "omniglot_split",
    "read_cifar100_archive", "read_idx", "read_omniglot_zip", "resolve_data_dir",
]
