"""scikit-learn's 8x8 handwritten digits: a tiny dataset embedded in scikit-learn, for quick runs."""

import hashlib

import numpy as np
import torch

from ..errors import DataError
from .dataset import Dataset

# SHA-256 of load_digits().data as little-endian float64 (1797 x 64), pinned from scikit-learn 1.9.1.
DATA_SHA256 = "20def7f70a702f0af9732fbba4375e147a7d54fe70d8c45569b8e7c1c7010c10"
TEST_SIZE = 0.3
SPLIT_SEED = 0


def load_digits(data_dir=None, download=True) -> Dataset:
    """The 1,797 digits, split stratified 70/30 with a fixed seed: 1,257 train / 540 test.

    Images are float32 (N, 1, 8, 8) in [0, 1]. `data_dir` and `download` are unused (the data ship with
    scikit-learn); they are accepted so that every loader can be called the same way.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    raw = sklearn_digits()
    data = np.ascontiguousarray(raw.data, dtype="<f8")
    if hashlib.sha256(data.tobytes()).hexdigest() != DATA_SHA256:
        raise DataError(
            "scikit-learn's digits data differ from the pinned copy: reinstall scikit-learn "
            "(pip install --force-reinstall scikit-learn)"
        )
    x = torch.from_numpy((data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8))
    y = torch.from_numpy(raw.target.astype(np.int64))
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y.numpy()
    )
    return Dataset("digits", x_train, y_train, x_test, y_test, [str(d) for d in range(10)])
