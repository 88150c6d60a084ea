"""Your own data: a map-style torch Dataset, labels of any kind, and image folders.

An image folder has one sub-folder per class (the layout of torchvision's ImageFolder):

    DATA/cat/001.png, DATA/cat/002.jpg, ..., DATA/dog/001.png, ...

Class names are the sub-folders' names in sorted order; images are read with Pillow in sorted file order,
converted to grey ("L") when every image is grey and to RGB otherwise, and resized to `size` x `size` when given
(they must otherwise all have one size). Returned as uint8 (N, C, H, W) and int64 labels indexing the class names.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_image_folder(path, size: int | None = None) -> tuple[list[Path], list[int], list[str], str]:
    """(image files in sorted order, their labels indexing the class names, class names, the mode "L" or "RGB")
    of an image folder. Only the files' headers are read (their mode and size), not their pixels."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder: give a folder with one sub-folder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = [(f, k) for k, name in enumerate(classes) for f in sorted((root / name).iterdir())
             if f.suffix.lower() in EXTENSIONS]
    if len(classes) < 2 or not found:
        raise ConfigError(f"{root} must hold one sub-folder of images per class (at least two classes); found "
                          f"{len(classes)} sub-folder(s) and {len(found)} image(s)")
    mode = check_images([f for f, _ in found], size)
    return [f for f, _ in found], [k for _, k in found], classes, mode


def list_unlabelled_images(path, size: int | None = None) -> tuple[list[Path], str]:
    """(image files in sorted order, the mode "L" or "RGB") of a folder of images without class sub-folders."""
    files = sorted(f for f in Path(path).iterdir() if f.suffix.lower() in EXTENSIONS)
    if not files:
        raise ConfigError(f"{path} holds no images ({', '.join(EXTENSIONS)}) and no sub-folder of images per class")
    return files, check_images(files, size)


def check_images(files: list[Path], size: int | None) -> str:
    """The mode ("L" when every image is grey, "RGB" otherwise) of images that can be read, of one size unless
    they are to be resized to `size`. Only the files' headers are read."""
    modes, sizes = [], []
    for file in files:
        try:
            with Image.open(file) as image:  # the header only
                modes.append(image.mode)
                sizes.append(image.size)
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"{file} is not a readable image ({error}): remove or replace it") from None
    if size is None:
        for file, shape in zip(files, sizes):
            if shape != sizes[0]:
                raise ConfigError(f"{file} is {shape[0]}x{shape[1]}, {files[0]} is {sizes[0][0]}x{sizes[0][1]}: "
                                  "give a size to resize them all to (--size N on the command line, size=N in Python)")
    return "L" if all(m in ("L", "1", "I;16", "I") for m in modes) else "RGB"


def read_image(file, mode: str, size: int | None = None) -> torch.Tensor:
    """One image file as uint8 (C, H, W), converted to `mode` and resized to `size` x `size` when given."""
    try:
        with Image.open(file) as image:
            image = image.convert(mode)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{file} is not a readable image ({error}): remove or replace it") from None
    if size is not None:
        image = image.resize((size, size), Image.BILINEAR)
    array = np.array(image, dtype=np.uint8)  # a copy: Pillow's buffer is read-only
    return torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))


def read_image_folder(path, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images uint8 (N, C, H, W), labels int64 (N,), class names) of an image folder."""
    files, labels, classes, mode = list_image_folder(path, size)
    return read_images(files, mode, size), torch.tensor(labels, dtype=torch.long), classes


def read_images(files: list, mode: str, size: int | None = None) -> torch.Tensor:
    """Image files as one uint8 batch (N, C, H, W), each converted to `mode` (and resized to `size`)."""
    return torch.stack([read_image(file, mode, size) for file in files])


class ImageFiles(torch.utils.data.Dataset):
    """Images read from their files when asked for, for data that do not fit in memory (`from_data(folder,
    on_disk=True)`). Item i is files[i] as float32 (C, H, W): scaled to [0, 1] and normalised with the per-channel
    `mean` and `std` (C, 1, 1), the same arithmetic as the in-memory path, so the same pixels give the same numbers.
    `workers`: the DataLoader processes that read it while training and evaluating (0: this process)."""

    def __init__(self, files: list, mode: str, size: int | None, mean: torch.Tensor, std: torch.Tensor,
                 workers: int = 2):
        self.files, self.mode, self.size, self.mean, self.std, self.workers = files, mode, size, mean, std, workers

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index):
        """Image `index` (an int) as a tensor; any other index (a slice, a list, an index or boolean tensor) gives
        those images as ImageFiles, as indexing a tensor of all the images would give those rows (nothing is read)."""
        if isinstance(index, (int, np.integer)) or (isinstance(index, torch.Tensor) and index.dim() == 0
                                                    and not index.dtype == torch.bool):
            return (read_image(self.files[int(index)], self.mode, self.size).float().div_(255) - self.mean) / self.std
        positions = range(len(self))[index] if isinstance(index, slice) else torch.arange(len(self))[index].tolist()
        return self.subset(positions)

    def subset(self, indices) -> "ImageFiles":
        return ImageFiles([self.files[i] for i in indices], self.mode, self.size, self.mean, self.std, self.workers)

    def clone(self) -> "ImageFiles":
        """A copy of the list of files (as `Tensor.clone`: the exemplar memory keeps what it selects)."""
        return self.subset(range(len(self)))

    def join(self, others: list) -> "ImageFiles":
        """These images followed by those of `others`, which must be read the same way."""
        for other in others:
            if (other.mode, other.size) != (self.mode, self.size) or not (
                    torch.equal(other.mean, self.mean) and torch.equal(other.std, self.std)):
                raise ConfigError("images read in different ways (mode, size, normalisation) cannot be joined: "
                                  "take them from one image folder")
        return ImageFiles(self.files + [f for other in others for f in other.files], self.mode, self.size,
                          self.mean, self.std, self.workers)

    def state_dict(self) -> dict:
        """The files' paths and how they are read: plain strings and tensors, for a checkpoint."""
        # absolute paths: a resume may start in another working directory
        return {"image_files": [str(Path(f).resolve()) for f in self.files], "mode": self.mode, "size": self.size,
                "mean": self.mean, "std": self.std, "workers": self.workers}

    @classmethod
    def from_state_dict(cls, state: dict) -> "ImageFiles":
        return cls([Path(f) for f in state["image_files"]], state["mode"], state["size"], state["mean"],
                   state["std"], state["workers"])

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} images, read with {self.workers} worker(s))"


def from_dataset(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of a map-style `torch.utils.data.Dataset` whose items are (input, label) pairs."""
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise ConfigError("a data set must be map-style (len() and [i]), with (input, label) items")
    items = [dataset[i] for i in range(len(dataset))]
    if not items or not all(isinstance(item, (tuple, list)) and len(item) == 2 for item in items[:1]):
        raise ConfigError("a data set's items must be (input, label) pairs, and it must not be empty")
    x = torch.stack([torch.as_tensor(np.asarray(item[0]) if not isinstance(item[0], torch.Tensor) else item[0])
                     for item in items])
    return x, np.asarray([int(item[1]) if isinstance(item[1], torch.Tensor) else item[1] for item in items])


def as_labels(y, n: int) -> np.ndarray:
    """Labels as a 1-d numpy array of `n` ints or strings."""
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ConfigError(f"labels must be one per input: {n} inputs, labels of shape {y.shape}")
    if y.dtype.kind not in "iuUO":
        raise ConfigError(f"labels must be integers or strings, got {y.dtype}")
    return y


def read_user_data(source, y=None, size: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """(inputs, labels) of an image folder (a path; its labels are the class folders' names), a map-style
    Dataset of (input, label) pairs, or inputs (tensor or numpy array) with their labels `y`."""
    if isinstance(source, (str, Path)):
        if y is not None:
            raise ConfigError("an image folder's labels are its sub-folders' names: give no labels with it")
        x, targets, names = read_image_folder(source, size)
        return x, np.asarray(names)[targets.numpy()]
    if y is None:
        return from_dataset(source)
    x = torch.from_numpy(np.ascontiguousarray(source)) if isinstance(source, np.ndarray) else source
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"inputs must be a tensor, a numpy array, a map-style Dataset or an image folder's path, "
                          f"got {type(source).__name__}")
    return x, as_labels(y, len(x))
