"""CIFAR-100 from the official python archive, read in place (nothing is extracted to disk)."""

import _codecs
import pickle
import tarfile
import zlib

import numpy as np
import torch

from ..errors import DataError
from .dataset import Dataset
from .files import ensure_file, resolve_data_dir

FILENAME = "cifar-100-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
MEMBERS = ("train", "test", "meta")  # pickles in the archive's folder cifar-100-python/

# The only globals a CIFAR pickle needs (numpy arrays, as written by numpy 1.x or 2.x): anything else is
# refused, so that reading an archive can never run code.
_reconstruct = np.zeros(0).__reduce__()[0]  # numpy's array-unpickling helpers, wherever this numpy keeps them
_frombuffer = np.zeros(0).__reduce_ex__(5)[0]  # (pickle protocol 5)
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return _SAFE_GLOBALS[(module, name)]


def _unpickle(f, path, name):
    """Unpickle one member of the archive (numpy arrays and plain Python data only)."""
    try:
        obj = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as e:  # a bad pickle can raise nearly anything
        raise DataError(f"{path}: {name} is unreadable ({type(e).__name__}: {e}): "
                        f"download the archive again from {URL}") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: {name} is not a dict: download the archive again from {URL}")
    return obj


def _split(batch, path, member, n_fine, n_coarse):
    """Images (N, 3, 32, 32) uint8 and fine/coarse int64 labels of one pickled batch."""
    try:
        data = np.asarray(batch["data"])
        fine = np.asarray(batch["fine_labels"], dtype=np.int64)
        coarse = np.asarray(batch["coarse_labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(
            f"{path}: cifar-100-python/{member} lacks {e}: download the archive again from {URL}"
        ) from e
    n = len(fine) if fine.ndim == 1 else -1
    if data.dtype != np.uint8 or data.shape != (n, 3072) or fine.shape != (n,) or coarse.shape != (n,):
        raise DataError(
            f"{path}: cifar-100-python/{member} has data {data.dtype} {data.shape}, labels {fine.shape} and "
            f"{coarse.shape}, expected uint8 (N, 3072) and (N,): download the archive again from {URL}"
        )
    if n and not (0 <= fine.min() and fine.max() < n_fine and 0 <= coarse.min() and coarse.max() < n_coarse):
        raise DataError(f"{path}: cifar-100-python/{member} has labels out of range: "
                        f"download the archive again from {URL}")
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(n, 3, 32, 32))
    return images, torch.from_numpy(fine), torch.from_numpy(coarse)


def read_cifar100_archive(path) -> Dataset:
    """Read `cifar-100-python.tar.gz` (the official python version) into a Dataset.

    Images are uint8 (N, 3, 32, 32) RGB; labels are the 100 fine classes. The 20 coarse classes are in
    `extras["coarse_train"]`, `extras["coarse_test"]` and `extras["coarse_names"]`.
    """
    wanted = {f"cifar-100-python/{m}": m for m in MEMBERS}
    pickles = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:  # one pass through the archive, in its order
                if member.name in wanted and member.isfile():
                    pickles[wanted[member.name]] = _unpickle(archive.extractfile(member), path, member.name)
    except DataError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable .tar.gz archive ({e}): download it again from {URL}") from e
    missing = [name for name, m in wanted.items() if m not in pickles]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)}: it is not the official CIFAR-100 python archive, "
                        f"download it again from {URL}")
    meta, train, test = pickles["meta"], pickles["train"], pickles["test"]
    try:
        fine_names = [str(s) for s in meta["fine_label_names"]]
        coarse_names = [str(s) for s in meta["coarse_label_names"]]
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: cifar-100-python/meta lacks {e}: download the archive again from {URL}") from e
    x_train, y_train, c_train = _split(train, path, "train", len(fine_names), len(coarse_names))
    x_test, y_test, c_test = _split(test, path, "test", len(fine_names), len(coarse_names))
    extras = {"coarse_train": c_train, "coarse_test": c_test, "coarse_names": coarse_names}
    return Dataset("cifar100", x_train, y_train, x_test, y_test, fine_names, extras)


def load_cifar100(data_dir=None, download=True) -> Dataset:
    """CIFAR-100 from `<data_dir>/cifar100/cifar-100-python.tar.gz`: 50,000 train / 10,000 test, 100 classes.

    The archive is downloaded when missing (and `download`), and its official MD5 is checked before reading.
    """
    directory = resolve_data_dir(data_dir) / "cifar100"
    return read_cifar100_archive(ensure_file(directory, FILENAME, URL, MD5, download))
