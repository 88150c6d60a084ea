"""Your own data: a map-style torch Dataset, labels of any kind, and image folders.

An image folder has one sub-folder per class (the layout of torchvision's ImageFolder):

    DATA/cat/001.png, DATA/cat/002.jpg, ..., DATA/dog/001.png, ...

Class names are the sub-folders' names in sorted order; images are read with Pillow in sorted file order,
converted to grey ("L") when every image is grey and to RGB otherwise, and resized to `size` x `size` when given
(they must otherwise all have one size). Returned as uint8 (N, C, H, W) and int64 labels indexing the class names.
"""

import math
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..checks import as_tensor
from ..errors import ConfigError, DataError
from ..limits import MAX_SIZE

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# The largest images read: Pillow's own bound on the pixels of one image (about 89 million), checked on the
# declared size in a file's header, before its pixels are decoded (a 100-byte PNG can declare 50,000 x 50,000)
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS


def check_size(size) -> int | None:
    """The side images are resized to: None (their own) or a whole number from 1 to MAX_SIZE."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                             or not 1 <= size <= MAX_SIZE):
        raise ConfigError(f"size must be a whole number from 1 to {MAX_SIZE} (the side in pixels images are resized "
                          f"to), got {size!r}")
    return size


def _open(file) -> Image.Image:
    """An image file opened, its header read but not its pixels; refused when it cannot be read or declares more
    than MAX_IMAGE_PIXELS (Pillow itself only warns up to twice that, and decodes it)."""
    try:
        with warnings.catch_warnings():  # Pillow warns of large images; those past the bound are refused below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
    except Image.DecompressionBombError:  # past twice Pillow's bound: it refuses the file itself
        raise too_large(file) from None
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{file} is not a readable image ({error}): remove or replace it") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise too_large(file, f"{width} x {height} pixels")
    return image


def too_large(file, declared: str | None = None) -> DataError:
    declared = declared or f"over {2 * MAX_IMAGE_PIXELS:,} pixels"  # what Pillow refuses before telling the size
    return DataError(f"{file} declares {declared}, more than the {MAX_IMAGE_PIXELS:,} read at most (a "
                     "decompression bomb, or an image far too large): remove or shrink it")


def list_image_folder(path, size: int | None = None) -> tuple[list[Path], list[int], list[str], str]:
    """(image files in sorted order, their labels indexing the class names, class names, the mode "L" or "RGB")
    of an image folder. Only the files' headers are read (their mode and size), not their pixels."""
    check_size(size)
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
    check_size(size)
    files = sorted(f for f in Path(path).iterdir() if f.suffix.lower() in EXTENSIONS)
    if not files:
        raise ConfigError(f"{path} holds no images ({', '.join(EXTENSIONS)}) and no sub-folder of images per class")
    return files, check_images(files, size)


def check_images(files: list[Path], size: int | None) -> str:
    """The mode ("L" when every image is grey, "RGB" otherwise) of images that can be read, of one size unless
    they are to be resized to `size`. Only the files' headers are read."""
    modes, sizes = [], []
    for file in files:
        with _open(file) as image:  # the header only
            modes.append(image.mode)
            sizes.append(image.size)
    if size is None:
        for file, shape in zip(files, sizes):
            if shape != sizes[0]:
                raise ConfigError(f"{file} is {shape[0]}x{shape[1]}, {files[0]} is {sizes[0][0]}x{sizes[0][1]}: "
                                  "give a size to resize them all to (--size N on the command line, size=N in Python)")
    return "L" if all(m in ("L", "1", "I;16", "I") for m in modes) else "RGB"


def read_image(file, mode: str, size: int | None = None) -> torch.Tensor:
    """One image file as uint8 (C, H, W), converted to `mode` and resized to `size` x `size` when given."""
    with _open(file) as image:  # checked again: the file may have changed since its header was read
        try:
            image = image.convert(mode)
        except OSError as error:  # a truncated or damaged file fails when its pixels are decoded
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
    inputs = [item[0] for item in items]
    try:  # numpy stacks inputs of any dtype; `as_inputs` then says which it cannot take
        x = (torch.stack(inputs) if all(isinstance(v, torch.Tensor) for v in inputs)
             else np.stack([v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in inputs]))
        y = np.asarray([item[1].item() if isinstance(item[1], torch.Tensor) else item[1] for item in items])
    except (RuntimeError, ValueError, TypeError) as error:  # inputs of different shapes, a label of many values
        raise ConfigError(f"a data set's inputs must all have one shape, and each label be one value ({error})") \
            from None
    return x, y


def as_inputs(x, what: str = "inputs") -> torch.Tensor:
    """Inputs as a float32 tensor, numpy arrays and tensors alike, integers (uint8 images) scaled to [0, 1]; or one
    clear error: a batch of at least one input of at least one number, real numbers only (no strings, objects or
    complex numbers), none of them NaN or infinite (they would turn the loss into NaN many steps later)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise ConfigError(f"{what} must be numbers, got an array of {x.dtype}")
        if not x.dtype.isnative:  # written on a machine of the other byte order: torch reads native order only
            x = x.astype(x.dtype.newbyteorder("="))
        if x.dtype.kind != "f":  # integers and booleans: cast by numpy, which knows every width (torch not uint64)
            x = x.astype(np.float32) / np.float32(255)
        x = as_tensor(x)
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{what} must be a tensor, a numpy array or a map-style Dataset, got {type(x).__name__}")
    if x.is_complex():
        raise ConfigError(f"{what} must be real numbers, got {x.dtype}")
    if x.dim() < 2:
        raise ConfigError(f"{what} must be a batch (samples, ...), got a tensor of shape {tuple(x.shape)}")
    if len(x) == 0 or x[0].numel() == 0:
        raise ConfigError(f"{what} are empty (shape {tuple(x.shape)}): give at least one input of at least one value")
    if not x.is_floating_point():
        x = x.float().div_(255)
    x = x.float()  # float64 and float16 alike: the models compute in float32
    bad = ~torch.isfinite(x)
    if bad.any():
        first = int(bad.flatten(1).any(1).nonzero()[0])
        raise ConfigError(f"{what} hold {int(bad.sum()):,} NaN or infinite value(s) (or past float32's 3.4e38), "
                          f"the first in input {first}: remove or replace them (they would turn the loss into NaN)")
    return x


def as_labels(y, n: int) -> np.ndarray:
    """Labels as a 1-d numpy array of `n` ints or strings."""
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ConfigError(f"labels must be one per input: {n} inputs, labels of shape {y.shape}")
    if y.dtype.kind not in "iuUO" or (y.dtype.kind == "O" and not all(  # objects: Python ints and strings only
            isinstance(v, (int, np.integer, str)) and not isinstance(v, bool) for v in y.tolist())):
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
        source, y = from_dataset(source)
    if not isinstance(source, (np.ndarray, torch.Tensor)):
        raise ConfigError(f"inputs must be a tensor, a numpy array, a map-style Dataset or an image folder's path, "
                          f"got {type(source).__name__}")
    x = as_inputs(source)
    return x, as_labels(y, len(x))


# what reading a damaged or foreign .npz raises, in numpy, zipfile and zlib
UNREADABLE = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def read_npz(path, need_labels: bool = True) -> tuple[torch.Tensor, np.ndarray | None]:
    """(inputs, labels or None) of an .npz file with arrays x (and y), as np.savez writes them; or one clear
    error. Nothing in the file is run (no pickles), and an array whose header declares more bytes than this machine
    has is refused before it is read (a few compressed bytes can declare any size)."""
    def unreadable(error):
        return DataError(f"{path} is not a readable .npz file ({type(error).__name__}: {error})")

    try:
        arrays = np.load(path, allow_pickle=False)  # allow_pickle=False: reading runs no code
    except UNREADABLE as error:
        raise unreadable(error) from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):  # one array, an .npy under another name
        raise DataError(f"{path} is an .npy file, not an .npz: save it with np.savez(path, x=inputs, y=labels)")
    with arrays:
        if "x" not in arrays.files:
            raise ConfigError(f"{path} has no array named x: save it with np.savez(path, x=inputs, y=labels)")
        if "y" not in arrays.files and need_labels:
            raise ConfigError(f"{path} has no array y: learning needs the labels (np.savez(path, x=..., y=...))")
        names = [name for name in ("x", "y") if name in arrays.files]
        try:
            headers = {name: _npy_header(arrays.zip, f"{name}.npy") for name in names}
        except UNREADABLE as error:
            raise unreadable(error) from None
        memory = _memory()
        for name, (shape, dtype) in headers.items():
            size = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            if memory is not None and size > memory:
                raise DataError(f"{path}: its array {name} declares shape {shape} of {dtype}, {size / 2**30:,.1f} "
                                f"GiB, more than this machine's {memory / 2**30:,.1f} GiB of memory")
        try:
            x, y = arrays["x"], (arrays["y"] if "y" in names else None)
        except UNREADABLE as error:
            raise unreadable(error) from None
    return as_inputs(x, f"the inputs x of {path}"), y


def _npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) an array of an .npz declares in its header, read without its data."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # 3.0 (unicode field names, which inputs never have): numpy's reading checks it
            return (), np.dtype(np.uint8)
    return shape, dtype


def _memory() -> int | None:
    """This machine's memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
