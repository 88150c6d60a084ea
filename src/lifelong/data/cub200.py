"""CUB-200-2011 (Wah et al. 2011): 11,788 photographs of 200 bird species, 5,994 to train and 5,794 to test.

Read from the official archive's folder, unpacked (CUB_200_2011.tgz from
https://www.vision.caltech.edu/datasets/cub_200_2011/):

    <data_dir>/cub200/CUB_200_2011/images.txt              `<image id> <class folder>/<file>.jpg`
    <data_dir>/cub200/CUB_200_2011/train_test_split.txt    `<image id> 1` (train) or `<image id> 0` (test)
    <data_dir>/cub200/CUB_200_2011/image_class_labels.txt  `<image id> <class id>`, class ids 1..200
    <data_dir>/cub200/CUB_200_2011/images/<class folder>/<file>.jpg

as CEC's loader reads it: label = class id - 1, images in image-id order, split by train_test_split.txt. The
official checksum is the archive's, not the unpacked files', so none is checked.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .dataset import Dataset
from .files import ENV_VAR, resolve_data_dir

FOLDER = "CUB_200_2011"
URL = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
LINE_PREFIX = f"{FOLDER}/images/"  # how the FSCIL index lists begin


def file_of_line(line: str) -> str:
    """The image an index-list line names: its path under images/, as CEC's loader reads
    `CUB_200_2011/images/101.White_Pelican/White_Pelican_0081_96148.jpg`."""
    return line[len(LINE_PREFIX):] if line.startswith(LINE_PREFIX) else line


def _missing(path: Path) -> DataError:
    cub_dir = next(p for p in path.parents if p.name == FOLDER).parent  # <data_dir>/cub200
    return DataError(f"{path} is missing: unpack CUB_200_2011.tgz from {URL} into {cub_dir}, or pass "
                     f"--data-dir (or set {ENV_VAR}) to a directory that holds cub200/{FOLDER}/")


def read_table(path: Path) -> dict[int, str]:
    """{image id: value} of one of the official `<image id> <value>` text files."""
    if not path.is_file():
        raise _missing(path)
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        if not key.isdigit() or not value or int(key) in table:
            raise DataError(f"{path}, line {number}: {line.strip()!r} is not an `<image id> <value>` row of a new "
                            f"image: unpack the files again from {URL}")
        table[int(key)] = value
    return table


def read_square(path: Path, size: int) -> np.ndarray:
    """An image as uint8 (3, size, size): RGB, its shorter side resized to `size`, the centre cut out (CEC's
    test-time Resize then CenterCrop, without the margin its 256 -> 224 leaves)."""
    if not path.is_file():
        raise _missing(path)
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = size / min(image.size)
            width, height = max(size, round(image.size[0] * scale)), max(size, round(image.size[1] * scale))
            if (width, height) != image.size:
                image = image.resize((width, height), Image.BILINEAR)
            left, top = (width - size) // 2, (height - size) // 2
            image = image.crop((left, top, left + size, top + size))
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path} is not a readable image ({error}): unpack it again from {URL}") from None


def load_cub200(data_dir=None, download: bool = True, size: int = 84) -> Dataset:
    """CUB-200-2011 from `<data_dir>/cub200/CUB_200_2011/`: uint8 (N, 3, size, size) images, label = class id - 1,
    class names the class folders (`001.Black_footed_Albatross`). `extras["train_files"]` / `["test_files"]` are
    the images' paths under images/ in the order of the tensors (the FSCIL index lists name training images so).

    `size` defaults to 84, miniImageNet's side, not CEC's 224 crops: 11,788 images at 224 x 224 are 1.8 GB as
    uint8 and 7 GB once made float for training, too much for a CPU machine; 84 keeps them at 1 GB as float.
    `download` is accepted for `load_dataset`'s sake: the archive is not downloaded, missing files are an error
    that says where to put them."""
    root = resolve_data_dir(data_dir) / "cub200" / FOLDER
    paths = read_table(root / "images.txt")
    is_train = read_table(root / "train_test_split.txt")
    class_ids = read_table(root / "image_class_labels.txt")
    if set(is_train) != set(paths) or set(class_ids) != set(paths):
        raise DataError(f"images.txt, train_test_split.txt and image_class_labels.txt in {root} list different "
                        f"image ids: unpack the files again from {URL}")
    if not set(is_train.values()) <= {"0", "1"} or not all(c.isdigit() and int(c) >= 1 for c in class_ids.values()):
        raise DataError(f"{root} holds a train_test_split.txt flag other than 0 / 1 or a class id other than 1, 2, "
                        f"...: unpack the files again from {URL}")
    labels = {i: int(c) - 1 for i, c in class_ids.items()}
    # class names: each class's folder under images/ (a tiny copy may lack classes: those keep their number)
    folders = {labels[i]: paths[i].split("/")[0] for i in paths}
    class_names = [folders.get(k, f"{k + 1:03d}") for k in range(max(labels.values()) + 1)]

    def split(flag):
        ids = [i for i in sorted(paths) if is_train[i] == flag]
        if not ids:
            kind = "training" if flag == "1" else "test"
            raise DataError(f"{root / 'train_test_split.txt'} marks no {kind} image: unpack it again from {URL}")
        x = np.stack([read_square(root / "images" / paths[i], size) for i in ids])
        return torch.from_numpy(x), torch.tensor([labels[i] for i in ids], dtype=torch.long), [paths[i] for i in ids]

    x_train, y_train, train_files = split("1")
    x_test, y_test, test_files = split("0")
    return Dataset("cub200", x_train, y_train, x_test, y_test, class_names,
                   {"train_files": train_files, "test_files": test_files})
