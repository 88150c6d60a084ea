"""Omniglot (Lake et al.): 1,623 handwritten characters from 50 alphabets, 20 drawings each, 105x105."""

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from .dataset import Dataset
from .files import ensure_file, resolve_data_dir, verify_md5

SUBSETS = ("background", "evaluation")  # the official 964 / 659 character split
URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
ZIP_MD5 = {"background": "68d2efa1b9178cc56df9314c21c6e718", "evaluation": "6b91aef0f799c5bb55b94e3f2daec811"}
NPZ_FILE = "omniglot_full.npz"  # the whole set as arrays: <subset>_x (n, 20, 105, 105) uint8, <subset>_chars
NPZ_MD5 = "c2c82b7a01bd2a483b14733faee43ebf"  # not an official file, so not an official checksum
SIDE = 105


@dataclass(repr=False)
class Omniglot:
    """Omniglot characters, sorted by alphabet then character.

    `images` is uint8 (n_characters, n_drawings, 105, 105), ink 0 on white 255 as in the official PNGs;
    `characters[i]` is "Alphabet/characterNN" and `subsets[i]` "background" or "evaluation".
    """

    images: torch.Tensor
    characters: list[str]
    subsets: list[str]

    def __len__(self) -> int:
        return len(self.characters)

    def __repr__(self) -> str:
        counts = {s: self.subsets.count(s) for s in SUBSETS if s in self.subsets}
        return f"Omniglot(images={tuple(self.images.shape)} {self.images.dtype}, characters={counts})"


def _sort_key(character: str):
    return tuple(character.split("/"))


def _check_subset(subset, allowed):
    if subset not in allowed:
        raise ConfigError(f"unknown Omniglot subset {subset!r}: use one of {', '.join(allowed)}")


def read_omniglot_zip(path, subset: str) -> Omniglot:
    """Read an official Omniglot zip (`<top>/<Alphabet>/<characterNN>/<id>_<drawer>.png`).

    Characters are sorted by alphabet and character, drawings by file name; `subset` ("background" or
    "evaluation") is what the characters are labelled with. Every character must have the same number of
    105x105 drawings.
    """
    _check_subset(subset, SUBSETS)
    drawings = {}  # "Alphabet/characterNN" -> {filename: image}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                parts = name.split("/")
                if not name.endswith(".png") or len(parts) != 4 or parts[0].startswith("__MACOSX"):
                    continue
                with Image.open(io.BytesIO(archive.read(name))) as image:
                    pixels = np.asarray(image.convert("L"))
                if pixels.shape != (SIDE, SIDE):
                    raise DataError(f"{path}: {name} is {pixels.shape[1]}x{pixels.shape[0]} pixels, expected "
                                    f"{SIDE}x{SIDE}: this is not an official Omniglot zip, download it again")
                drawings.setdefault(f"{parts[1]}/{parts[2]}", {})[parts[3]] = pixels
    except DataError:
        raise
    except (zipfile.BadZipFile, UnidentifiedImageError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable Omniglot zip ({e}): download it again from {URL}") from e
    if not drawings:
        raise DataError(f"{path} holds no <Alphabet>/<character>/*.png images: "
                        f"use an official Omniglot zip from {URL}")
    characters = sorted(drawings, key=_sort_key)
    counts = {len(drawings[c]) for c in characters}
    if len(counts) != 1:
        raise DataError(f"{path}: characters have different numbers of drawings {sorted(counts)}: "
                        f"download it again from {URL}")
    images = np.stack([np.stack([drawings[c][f] for f in sorted(drawings[c])]) for c in characters])
    return Omniglot(torch.from_numpy(images), characters, [subset] * len(characters))


def _read_npz(path, subsets) -> Omniglot:
    """The chosen subsets of `omniglot_full.npz`, characters sorted as in the official zips."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            parts = [(npz[f"{s}_x"], [str(c) for c in npz[f"{s}_chars"]], s) for s in subsets]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a valid {NPZ_FILE} ({e}): delete it to use the official zips") from e
    for x, chars, subset in parts:
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[0] != len(chars) or x.shape[2:] != (SIDE, SIDE):
            raise DataError(f"{path}: {subset}_x is {x.dtype} {x.shape} for {len(chars)} characters: "
                            "delete it to use the official zips")
    if len({x.shape[1] for x, _, _ in parts}) != 1:
        raise DataError(f"{path}: the subsets have different numbers of drawings: delete it to use the official zips")
    images = np.empty((sum(len(c) for _, c, _ in parts),) + parts[0][0].shape[1:], dtype=np.uint8)
    characters, labels = [], []
    for x, chars, subset in parts:  # one copy, straight into place (the arrays are hundreds of MB)
        order = sorted(range(len(chars)), key=lambda i: _sort_key(chars[i]))
        np.take(x, order, axis=0, out=images[len(characters): len(characters) + len(chars)])
        characters += [chars[i] for i in order]
        labels += [subset] * len(chars)
    return Omniglot(torch.from_numpy(images), characters, labels)


def load_omniglot(data_dir=None, subset: str = "all", download: bool = True) -> Omniglot:
    """Omniglot from `<data_dir>/omniglot/`: subset "background" (964 characters), "evaluation" (659) or "all".

    Uses `omniglot_full.npz` when it is there (its MD5 is checked), else the official
    `images_background.zip` / `images_evaluation.zip`, downloaded when missing (and `download`).
    With "all", background characters come first.
    """
    _check_subset(subset, ("all",) + SUBSETS)
    subsets = SUBSETS if subset == "all" else (subset,)
    directory = resolve_data_dir(data_dir) / "omniglot"
    npz = directory / NPZ_FILE
    if npz.is_file():
        verify_md5(npz, NPZ_MD5, "delete it (the official zips are then used) or copy it again")
        return _read_npz(npz, subsets)
    parts = [read_omniglot_zip(ensure_file(directory, f"images_{s}.zip", f"{URL}images_{s}.zip", ZIP_MD5[s],
                                           download), s) for s in subsets]
    return Omniglot(torch.cat([p.images for p in parts]), sum((p.characters for p in parts), []),
                    sum((p.subsets for p in parts), []))


def omniglot_split(omniglot: Omniglot, n_characters: int | None = None, n_train: int = 15,
                   side: int = 28) -> Dataset:
    """The first `n_characters` characters as a classification data set (character i is class i), split by drawing.

    Each character's drawings are put in a fixed order, by the SHA-1 of their 105x105 pixels (the npz and the
    official zips hold them in different orders, and the npz keeps no drawer numbers): the first `n_train` are
    for training, the others for testing. Images are float32 (N, 1, side, side) in [0, 1], inverted (ink 1 on
    0), each pixel the mean of the 105x105 pixels it covers (area interpolation).
    """
    n_characters = len(omniglot) if n_characters is None else n_characters
    n_drawings = omniglot.images.shape[1]
    if not 1 <= n_characters <= len(omniglot) or not 1 <= n_train < n_drawings or side < 1:
        raise ConfigError(f"cannot take {n_characters} characters ({len(omniglot)} loaded), {n_train} of their "
                          f"{n_drawings} drawings to train on, at {side}x{side} pixels")

    def by_hash(drawings):
        return drawings[sorted(range(n_drawings), key=lambda k: hashlib.sha1(drawings[k].numpy().tobytes()).digest())]
    images = torch.stack([by_hash(drawings) for drawings in omniglot.images[:n_characters]])
    ink = (255 - images.flatten(0, 1).unsqueeze(1).float()).div_(255)
    x = F.interpolate(ink, size=(side, side), mode="area")
    x = x.view(n_characters, n_drawings, 1, side, side)
    labels = torch.arange(n_characters)
    return Dataset("omniglot", x[:, :n_train].flatten(0, 1), labels.repeat_interleave(n_train),
                   x[:, n_train:].flatten(0, 1), labels.repeat_interleave(n_drawings - n_train),
                   omniglot.characters[:n_characters])
