"""MNIST and Fashion-MNIST from the official gzipped IDX files."""

import gzip
import math
import zlib

import numpy as np
import torch

from ..errors import DataError
from .dataset import Dataset
from .files import ensure_file, resolve_data_dir

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # uint8 data, 3 or 1 dimensions

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
               "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path) -> np.ndarray:
    """Read a gzipped IDX file of uint8 images (N, H, W) or labels (N,).

    Raises DataError when the file is not gzip, is truncated, or its header does not match its payload.
    """
    def bad(what):
        return DataError(f"{path} is not a valid IDX file ({what}): delete it and download it again")

    try:
        with gzip.open(path, "rb") as f:
            raw = bytearray(f.read())  # bytearray: the array below is writable, as torch wants
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise bad(f"cannot decompress: {e}") from e
    if len(raw) < 4:
        raise bad(f"only {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IDX_IMAGES, IDX_LABELS):
        raise bad(f"magic number 0x{magic:08x}, expected 0x{IDX_IMAGES:08x} or 0x{IDX_LABELS:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise bad(f"header cut short: {len(raw)} bytes")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python integers: no overflow on a corrupt header
    if len(raw) - header != expected:
        raise bad(f"dimensions {dims} need {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_pair(images_path, labels_path, n_classes):
    """Images (N, 1, H, W) and int64 labels, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{images_path} and {labels_path} do not match (shapes {images.shape} and {labels.shape}): "
            "delete them and download them again"
        )
    if labels.size and labels.max() >= n_classes:
        raise DataError(f"{labels_path} has label {labels.max()} >= {n_classes}: delete it and download it again")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _load_idx_dataset(name, folder, url, md5s, class_names, data_dir, download) -> Dataset:
    directory = resolve_data_dir(data_dir) / folder
    paths = [ensure_file(directory, f, url + f, md5, download) for f, md5 in zip(FILES, md5s)]
    x_train, y_train = _read_pair(paths[0], paths[1], len(class_names))
    x_test, y_test = _read_pair(paths[2], paths[3], len(class_names))
    return Dataset(name, x_train, y_train, x_test, y_test, list(class_names))


def load_mnist(data_dir=None, download=True) -> Dataset:
    """MNIST from `<data_dir>/mnist/`: 60,000 train / 10,000 test, uint8 (N, 1, 28, 28), classes "0".."9"."""
    names = [str(d) for d in range(10)]
    return _load_idx_dataset("mnist", "mnist", MNIST_URL, MNIST_MD5, names, data_dir, download)


def load_fashion_mnist(data_dir=None, download=True) -> Dataset:
    """Fashion-MNIST from `<data_dir>/fashion-mnist/`: same sizes and layout as MNIST, 10 clothing classes."""
    return _load_idx_dataset("fashion-mnist", "fashion-mnist", FASHION_URL, FASHION_MD5, FASHION_NAMES,
                             data_dir, download)
