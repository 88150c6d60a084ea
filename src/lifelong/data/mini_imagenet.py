"""miniImageNet (Vinyals et al. 2016) as the FSCIL papers use it (TOPIC, CEC): 100 ImageNet classes, 84x84 colour,
500 training and 100 test images per class.

It cannot be downloaded from an official mirror (ImageNet's licence), so it is read from the folder CEC's code
uses (the archive linked from CEC's README, https://github.com/icoz69/CEC-CVPR2021, unpacked):

    <data_dir>/miniimagenet/images/<file>.jpg
    <data_dir>/miniimagenet/split/train.csv, test.csv    a header line, then `filename,wnid` rows

A class's label is the order in which its wnid first appears in train.csv (as in CEC's loader); test images take the
label of their wnid. There is no official checksum of these files, so none is checked.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .dataset import Dataset
from .files import ENV_VAR, resolve_data_dir

SIDE = 84
SOURCE = "https://github.com/icoz69/CEC-CVPR2021 (the miniImageNet link in its README)"


def file_of_line(line: str) -> str:
    """The image an index-list line names: its file name, the 4th path component, as CEC's loader reads
    `MINI-ImageNet/train/n03544143/n0354414300000811.jpg`."""
    parts = line.split("/")
    return parts[3] if len(parts) > 3 else line


def _missing(path: Path, what: str) -> DataError:
    return DataError(f"{path} is missing: put miniImageNet ({what}) from {SOURCE} into {path.parents[1]}, or pass "
                     f"--data-dir (or set {ENV_VAR}) to a directory that holds miniimagenet/")


def read_split(path: Path) -> list[tuple[str, str]]:
    """The (file name, wnid) rows of a split CSV, its header line skipped."""
    if not path.is_file():
        raise _missing(path, "images/ and split/train.csv, split/test.csv")
    rows = []
    for number, line in enumerate(path.read_text().splitlines()[1:], start=2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 2:
            raise DataError(f"{path}, line {number}: {line.strip()!r} is not a `filename,wnid` row: "
                            f"use the split files from {SOURCE}")
        rows.append((fields[0], fields[1]))
    if not rows:
        raise DataError(f"{path} lists no images: use the split files from {SOURCE}")
    return rows


def read_rgb(path: Path, side: int) -> np.ndarray:
    """An image as uint8 (3, side, side), converted to RGB and resized when it is not side x side already."""
    if not path.is_file():
        raise _missing(path, "the images/ folder")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (side, side):
                image = image.resize((side, side), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path} is not a readable image ({error}): copy it again from {SOURCE}") from None


def load_mini_imagenet(data_dir=None, download: bool = True) -> Dataset:
    """miniImageNet from `<data_dir>/miniimagenet/`: uint8 (N, 3, 84, 84) images, labels in train.csv's order of
    first appearance, class names the wnids. `extras["train_files"]` / `["test_files"]` are the images' file
    names in the order of the tensors (the FSCIL index lists name training images by file name).

    `download` is accepted for `load_dataset`'s sake: there is no mirror to download from (see the module's
    docstring), so missing files are always an error that says where to put them."""
    root = resolve_data_dir(data_dir) / "miniimagenet"
    train_rows = read_split(root / "split" / "train.csv")
    test_rows = read_split(root / "split" / "test.csv")
    wnids = list(dict.fromkeys(wnid for _, wnid in train_rows))  # first-appearance order
    label = {wnid: k for k, wnid in enumerate(wnids)}
    unknown = sorted({wnid for _, wnid in test_rows} - set(label))
    if unknown:
        raise DataError(f"{root / 'split' / 'test.csv'} has classes train.csv lacks ({', '.join(unknown[:3])}): "
                        f"use the split files from {SOURCE}")

    def images(rows):
        x = np.stack([read_rgb(root / "images" / name, SIDE) for name, _ in rows])
        return torch.from_numpy(x), torch.tensor([label[wnid] for _, wnid in rows], dtype=torch.long)

    x_train, y_train = images(train_rows)
    x_test, y_test = images(test_rows)
    extras = {"train_files": [name for name, _ in train_rows], "test_files": [name for name, _ in test_rows]}
    return Dataset("mini-imagenet", x_train, y_train, x_test, y_test, wnids, extras)
