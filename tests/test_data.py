"""Tests of lifelong.data against known answers.

The real files come from the shared read-only data folder beside the checkout (../shared/data, or
$LIFELONG_SHARED_DATA, as in conftest.py); tests that need a file skip, naming it, when it is absent.
No test touches the network: an autouse fixture makes any non-file:// download fail loudly.
"""

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import lifelong.data as data
from lifelong.data import omniglot
from lifelong.errors import ConfigError, DataError

SHARED = Path(os.environ.get("LIFELONG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MNIST_DIR, FASHION_DIR, OMNIGLOT_DIR = SHARED / "mnist", SHARED / "fashion-mnist", SHARED / "omniglot"
IDX_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
SMALL_ZIPS = {"images_background_small1.zip": ("e704a628b5459e08445c13499850abc4", 136),
              "images_background_small2.zip": ("b75a71a51d3b13f821f212756fe481fd", 156)}


def _skip_unless(*paths):
    missing = [str(p) for p in paths if not p.is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"shared data file(s) not on this machine: {', '.join(missing)}")


needs_mnist = _skip_unless(*(MNIST_DIR / f for f in IDX_FILES))
needs_fashion = _skip_unless(*(FASHION_DIR / f for f in IDX_FILES))
needs_small_zips = _skip_unless(*(OMNIGLOT_DIR / f for f in SMALL_ZIPS))
needs_npz = _skip_unless(OMNIGLOT_DIR / "omniglot_full.npz")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network in tests (file:// URLs are fine), and no LIFELONG_DATA from the caller's environment."""
    real_urlopen = urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"a test tried to download {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.delenv("LIFELONG_DATA", raising=False)


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(SHARED, download=False)


@pytest.fixture(scope="module")
def omniglot_full():
    return data.load_omniglot(SHARED, download=False)


@pytest.fixture(scope="module")
def small_zips():
    """The two official small Omniglot zips, read once: {file name: Omniglot}."""
    return {name: data.read_omniglot_zip(OMNIGLOT_DIR / name, "background") for name in SMALL_ZIPS}


def write_gz(path, raw):
    with gzip.open(path, "wb") as f:
        f.write(raw)
    return path


def write_idx_gz(path, magic, dims, payload):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return write_gz(path, header + bytes(payload))


# ---------------------------------------------------------------------------------------------- files


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.resolve_data_dir() == tmp_path / ".cache" / "lifelong"
    monkeypatch.setenv("LIFELONG_DATA", str(tmp_path / "env"))
    assert data.resolve_data_dir() == tmp_path / "env"
    assert data.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert data.resolve_data_dir("~/x") == tmp_path / "x"


def test_md5sum(tmp_path):
    (tmp_path / "hello").write_bytes(b"hello")
    assert data.md5sum(tmp_path / "hello") == "5d41402abc4b2a76b9719d911017c592"
    big = np.random.default_rng(0).integers(0, 256, 3_000_001, dtype=np.uint8).tobytes()  # several chunks
    (tmp_path / "big").write_bytes(big)
    assert data.md5sum(tmp_path / "big") == hashlib.md5(big).hexdigest()


def test_ensure_file_present_and_corrupt(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"hello")
    url = "https://example.org/f.bin"
    good = "5d41402abc4b2a76b9719d911017c592"
    assert data.ensure_file(tmp_path, "f.bin", url, good) == tmp_path / "f.bin"
    assert data.ensure_file(tmp_path, "f.bin", url, None) == tmp_path / "f.bin"  # no checksum: not checked
    with pytest.raises(DataError) as e:
        data.ensure_file(tmp_path, "f.bin", url, "0" * 32)
    msg = str(e.value)
    assert str(tmp_path / "f.bin") in msg and good in msg and "0" * 32 in msg and "delete it" in msg and url in msg


def test_ensure_file_missing_without_download(tmp_path):
    url = "https://example.org/f.bin"
    with pytest.raises(DataError) as e:
        data.ensure_file(tmp_path / "sub", "f.bin", url, None, download=False)
    msg = str(e.value)
    assert "f.bin" in msg and str(tmp_path / "sub") in msg and url in msg
    assert "--data-dir" in msg and "LIFELONG_DATA" in msg


def test_ensure_file_download_failure(monkeypatch, tmp_path):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    url = "https://example.org/f.bin"
    with pytest.raises(DataError) as e:
        data.ensure_file(tmp_path / "d", "f.bin", url, None)
    msg = str(e.value)
    assert "f.bin" in msg and str(tmp_path / "d") in msg and url in msg and "no route to host" in msg
    assert "--data-dir" in msg and "LIFELONG_DATA" in msg
    assert not (tmp_path / "d").exists()  # nothing left behind


def test_ensure_file_download_via_file_url(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"hello")
    url = source.as_uri()
    path = data.ensure_file(tmp_path / "dl", "f.bin", url, "5d41402abc4b2a76b9719d911017c592")
    assert path == tmp_path / "dl" / "f.bin" and path.read_bytes() == b"hello"
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["f.bin"]  # the .part file is gone
    with pytest.raises(DataError, match="corrupt") as e:  # a download with the wrong MD5 is not kept
        data.ensure_file(tmp_path / "dl", "g.bin", url, "0" * 32)
    assert "g.bin" in str(e.value) and url in str(e.value)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["f.bin"]


# --------------------------------------------------------------------------------------------- digits


def test_digits():
    ds = data.load_digits()
    assert ds.name == "digits" and ds.n_classes == 10 and ds.class_names == [str(d) for d in range(10)]
    assert ds.x_train.shape == (1257, 1, 8, 8) and ds.x_test.shape == (540, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    # the fixed stratified split (train_test_split, test_size=0.3, random_state=0)
    assert ds.y_test.bincount().tolist() == [54, 55, 53, 55, 54, 55, 54, 54, 52, 54]
    assert ds.y_train[:10].tolist() == [6, 4, 4, 3, 2, 7, 2, 2, 7, 0]
    from sklearn.datasets import load_digits

    raw = load_digits()  # train + test is the whole set, pixel values k/16
    both = torch.cat([ds.x_train, ds.x_test]).reshape(-1, 64).double() * 16
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, raw.data.tolist()))


def test_digits_detects_a_changed_copy(monkeypatch):
    import sklearn.datasets

    real = sklearn.datasets.load_digits

    def changed():
        bunch = real()
        bunch.data = bunch.data.copy()
        bunch.data[0, 0] += 1
        return bunch

    monkeypatch.setattr(sklearn.datasets, "load_digits", changed)
    with pytest.raises(DataError, match="reinstall scikit-learn"):
        data.load_digits()


# ------------------------------------------------------------------------------------------------ IDX


def test_read_idx_exact(tmp_path):
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    images = data.read_idx(write_idx_gz(tmp_path / "i.gz", 0x803, (2, 3, 4), pixels.tobytes()))
    assert images.dtype == np.uint8 and images.shape == (2, 3, 4) and np.array_equal(images, pixels)
    labels = data.read_idx(write_idx_gz(tmp_path / "l.gz", 0x801, (3,), [3, 1, 4]))
    assert labels.tolist() == [3, 1, 4] and labels.dtype == np.uint8
    assert data.read_idx(write_idx_gz(tmp_path / "e.gz", 0x801, (0,), b"")).shape == (0,)


@pytest.mark.parametrize("magic, dims, payload, what", [
    (0x00000802, (3,), [1, 2, 3], "magic number 0x00000802"),     # not uint8 images / labels
    (0x00000D01, (3,), [1, 2, 3], "magic number 0x00000d01"),     # float data
    (0x00000801, (4,), [1, 2, 3], "need 4 bytes of data, found 3"),  # payload too short
    (0x00000801, (2,), [1, 2, 3], "need 2 bytes of data, found 3"),  # payload too long
    (0x00000803, (2, 2), [], "header cut short"),                   # says 3 dims, has 2
])
def test_read_idx_rejects_bad_headers(tmp_path, magic, dims, payload, what):
    path = write_idx_gz(tmp_path / "bad.gz", magic, dims, payload)
    with pytest.raises(DataError, match="not a valid IDX file") as e:
        data.read_idx(path)
    assert str(path) in str(e.value) and what in str(e.value)


def test_read_idx_rejects_non_gzip_and_empty(tmp_path):
    (tmp_path / "plain").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")  # IDX, but not gzipped
    with pytest.raises(DataError, match="cannot decompress"):
        data.read_idx(tmp_path / "plain")
    with pytest.raises(DataError, match="only 2 bytes"):
        data.read_idx(write_gz(tmp_path / "tiny.gz", b"\x00\x08"))
    write_gz(tmp_path / "cut.gz", b"")
    (tmp_path / "cut.gz").write_bytes((tmp_path / "cut.gz").read_bytes()[:-4])  # gzip trailer cut off
    with pytest.raises(DataError, match="cannot decompress"):
        data.read_idx(tmp_path / "cut.gz")


# ---------------------------------------------------------------------------------------------- MNIST


@needs_mnist
def test_mnist(mnist):
    assert mnist.name == "mnist" and mnist.class_names == [str(d) for d in range(10)] and mnist.n_classes == 10
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.uint8 and mnist.y_train.dtype == torch.int64
    assert mnist.y_train[0] == 5
    assert mnist.y_train.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist.y_test.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 255
    with gzip.open(MNIST_DIR / "train-images-idx3-ubyte.gz") as f:  # layout: row-major after a 16-byte header
        raw = f.read(16 + 2 * 784)[16:]
    assert mnist.x_train[:2].flatten().tolist() == list(raw)


@needs_fashion
def test_fashion_mnist_from_env_var(monkeypatch):
    monkeypatch.setenv("LIFELONG_DATA", str(SHARED))
    ds = data.load_dataset("fashion-mnist", download=False)
    assert ds.name == "fashion-mnist" and ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.uint8 and ds.y_test.dtype == torch.int64
    assert ds.y_train[0] == 9
    assert ds.y_train.bincount().tolist() == [6000] * 10 and ds.y_test.bincount().tolist() == [1000] * 10


def test_env_var_is_the_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFELONG_DATA", str(tmp_path))
    with pytest.raises(DataError) as e:
        data.load_mnist(download=False)
    assert str(tmp_path / "mnist") in str(e.value)


def test_mnist_missing_file(tmp_path):
    with pytest.raises(DataError) as e:
        data.load_mnist(tmp_path, download=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg
    with pytest.raises(DataError) as e:
        data.load_fashion_mnist(tmp_path, download=False)
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz" in str(e.value)
    assert not (tmp_path / "mnist").exists()


@needs_mnist
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_mnist_corrupt_copy(tmp_path, damage):
    (tmp_path / "mnist").mkdir()
    for name in IDX_FILES:
        shutil.copy(MNIST_DIR / name, tmp_path / "mnist" / name)
    bad = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(raw)
    with pytest.raises(DataError, match="corrupt or truncated") as e:
        data.load_mnist(tmp_path, download=False)
    assert str(bad) in str(e.value) and "ec29112dd5afa0611ce80d1b7f02629c" in str(e.value)
    with pytest.raises(DataError) as e:  # read directly (no MD5): still a clear error, not a numpy crash
        data.read_idx(bad)
    assert str(bad) in str(e.value)


# ------------------------------------------------------------------------------------------ CIFAR-100


def _pickle(obj, numpy1=False):
    raw = pickle.dumps(obj, protocol=2)
    if numpy1:  # the official pickles predate numpy 2, whose array helper lived in numpy.core
        raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    return raw


def write_cifar_archive(path, members):
    """A .tar.gz laid out like cifar-100-python.tar.gz, from {member name: bytes}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-100-python")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def tiny_cifar(n_train=20, n_test=10, seed=0):
    """The three pickles of a CIFAR-100 archive in the official format, with known pixels and labels."""
    rng = np.random.default_rng(seed)
    fine_names = [f"fine{k:02d}" for k in range(100)]
    coarse_names = [f"coarse{k:02d}" for k in range(20)]
    batches = {}
    for member, n in [("train", n_train), ("test", n_test)]:
        batches[member] = {
            "filenames": [f"img_{i}.png" for i in range(n)],
            "batch_label": f"{member}ing batch 1 of 1",
            "fine_labels": rng.integers(0, 100, n).tolist(),
            "coarse_labels": rng.integers(0, 20, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
    meta = {"fine_label_names": fine_names, "coarse_label_names": coarse_names}
    return batches, meta


def official_members(batches, meta):
    return {"meta": _pickle(meta), "test": _pickle(batches["test"]),
            "train": _pickle(batches["train"], numpy1=True)}


def test_read_cifar100_archive(tmp_path):
    batches, meta = tiny_cifar()
    ds = data.read_cifar100_archive(write_cifar_archive(tmp_path / "c.tar.gz", official_members(batches, meta)))
    assert ds.name == "cifar100" and ds.n_classes == 100 and ds.class_names == meta["fine_label_names"]
    assert ds.extras["coarse_names"] == meta["coarse_label_names"]
    c, i, j = np.indices((3, 32, 32))
    for x, y, coarse, member in [(ds.x_train, ds.y_train, ds.extras["coarse_train"], "train"),
                                 (ds.x_test, ds.y_test, ds.extras["coarse_test"], "test")]:
        batch = batches[member]
        assert x.shape == (len(batch["data"]), 3, 32, 32) and x.dtype == torch.uint8
        assert y.dtype == torch.int64 and coarse.dtype == torch.int64
        # pixel [n, c, i, j] is data[n, c*1024 + i*32 + j]: RGB planes, each row-major
        assert np.array_equal(x.numpy(), batch["data"][:, c * 1024 + i * 32 + j])
        assert x[3, 2, 5, 7] == batch["data"][3, 2 * 1024 + 5 * 32 + 7]
        assert y.tolist() == batch["fine_labels"] and coarse.tolist() == batch["coarse_labels"]


def test_load_cifar100_checks_the_official_md5(tmp_path):
    path = write_cifar_archive(tmp_path / "cifar100" / "cifar-100-python.tar.gz", official_members(*tiny_cifar()))
    with pytest.raises(DataError, match="corrupt or truncated") as e:
        data.load_cifar100(tmp_path, download=False)
    assert str(path) in str(e.value) and "eb9058c3a382ffc7106e4002c42a8d85" in str(e.value)
    with pytest.raises(DataError) as e:
        data.load_dataset("cifar100", data_dir=tmp_path / "elsewhere", download=False)
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in str(e.value)


def _without(members, name):
    return {k: v for k, v in members.items() if k != name}


def test_read_cifar100_archive_rejects_bad_archives(tmp_path):
    batches, meta = tiny_cifar()
    members = official_members(batches, meta)
    (tmp_path / "text.tar.gz").write_text("not an archive")
    with pytest.raises(DataError, match="not a readable .tar.gz"):
        data.read_cifar100_archive(tmp_path / "text.tar.gz")
    with pytest.raises(DataError, match="has no cifar-100-python/meta: it is not the official"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "a.tar.gz", _without(members, "meta")))
    wide = dict(batches["test"], data=np.zeros((10, 3000), dtype=np.uint8))
    with pytest.raises(DataError, match=r"cifar-100-python/test has data uint8 \(10, 3000\)"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "b.tar.gz", dict(members, test=_pickle(wide))))
    short = dict(batches["test"], fine_labels=[0] * 9)
    with pytest.raises(DataError, match="expected uint8"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "c.tar.gz", dict(members, test=_pickle(short))))
    out_of_range = dict(batches["test"], coarse_labels=[20] * 10)
    with pytest.raises(DataError, match="labels out of range"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "d.tar.gz",
                                                       dict(members, test=_pickle(out_of_range))))
    no_key = {k: v for k, v in batches["train"].items() if k != "fine_labels"}
    with pytest.raises(DataError, match="fine_labels"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "e.tar.gz", dict(members, train=_pickle(no_key))))


class _Touch:
    """A pickle that would create a file when loaded by an unrestricted unpickler."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def test_read_cifar100_archive_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    members = dict(official_members(*tiny_cifar()), meta=pickle.dumps({"fine_label_names": _Touch(marker)}))
    with pytest.raises(DataError, match="refusing to load"):
        data.read_cifar100_archive(write_cifar_archive(tmp_path / "evil.tar.gz", members))
    assert not marker.exists()


# ------------------------------------------------------------------------------------------- Omniglot


def zip_characters(path):
    """{"Alphabet/characterNN": number of PNGs}, straight from the zip's listing."""
    counts = {}
    for name in zipfile.ZipFile(path).namelist():
        if name.endswith(".png"):
            _, alphabet, character, _ = name.split("/")
            counts[f"{alphabet}/{character}"] = counts.get(f"{alphabet}/{character}", 0) + 1
    return counts


def black_and_white(images):
    """Whether the pixels are all 0 or 255, with both present (cheaper than torch.unique's sort)."""
    ink, paper = images == 0, images == 255
    return bool((ink | paper).all() and ink.any() and paper.any())


def drawing_hashes(images):
    return sorted(hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images)


@needs_small_zips
@needs_npz
@pytest.mark.parametrize("name", sorted(SMALL_ZIPS))
def test_official_small_zip_matches_npz(name, small_zips, omniglot_full):
    md5, n_characters = SMALL_ZIPS[name]
    path = OMNIGLOT_DIR / name
    assert data.md5sum(path) == md5
    small = small_zips[name]
    counts = zip_characters(path)
    assert len(small) == n_characters == len(counts) and set(counts.values()) == {20}
    assert small.images.shape == (n_characters, 20, 105, 105) and small.images.dtype == torch.uint8
    assert black_and_white(small.images)
    assert small.characters == sorted(counts, key=lambda c: c.split("/"))
    assert small.subsets == ["background"] * n_characters
    row = {c: k for k, c in enumerate(omniglot_full.characters)}
    for k, character in enumerate(small.characters):  # same drawings; the npz keeps them in no particular order
        full = row[character]
        assert omniglot_full.subsets[full] == "background"
        assert drawing_hashes(small.images[k]) == drawing_hashes(omniglot_full.images[full])


@needs_npz
def test_omniglot_full(omniglot_full):
    o = omniglot_full
    assert o.images.shape == (1623, 20, 105, 105) and o.images.dtype == torch.uint8
    assert o.subsets == ["background"] * 964 + ["evaluation"] * 659
    assert len(set(o.characters)) == 1623
    for subset, n_alphabets in [("background", 30), ("evaluation", 20)]:
        chars = [c for c, s in zip(o.characters, o.subsets) if s == subset]
        assert chars == sorted(chars, key=lambda c: c.split("/"))
        assert len({c.split("/")[0] for c in chars}) == n_alphabets
    assert o.characters[0] == "Alphabet_of_the_Magi/character01" and o.characters[964] == "Angelic/character01"
    assert black_and_white(o.images[::10])  # a sample: a full pass is slow, and the zip tests check every pixel
    evaluation = data.load_omniglot(SHARED, subset="evaluation", download=False)
    assert evaluation.characters == o.characters[964:] and torch.equal(evaluation.images, o.images[964:])


@needs_small_zips
def test_load_omniglot_from_zips(monkeypatch, tmp_path, small_zips):
    """Without the npz the official zips are used: here a stand-in for images_background.zip made of the official
    PNGs of three characters of a small zip, stored in reverse order (the reader sorts them)."""
    small = small_zips["images_background_small1.zip"]
    wanted = small.characters[:3]
    path = tmp_path / "omniglot" / "images_background.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(OMNIGLOT_DIR / "images_background_small1.zip") as src, zipfile.ZipFile(path, "w") as dst:
        for name in reversed(src.namelist()):
            if "/".join(name.split("/")[1:3]) in wanted:
                dst.writestr(name.replace("images_background_small1/", "images_background/"), src.read(name))
    with pytest.raises(DataError, match="corrupt or truncated") as e:  # not the official full zip's MD5
        data.load_omniglot(tmp_path, subset="background", download=False)
    assert str(path) in str(e.value) and "68d2efa1b9178cc56df9314c21c6e718" in str(e.value)
    monkeypatch.setitem(omniglot.ZIP_MD5, "background", data.md5sum(path))
    loaded = data.load_omniglot(tmp_path, subset="background", download=False)
    assert loaded.characters == wanted and loaded.subsets == ["background"] * 3
    assert torch.equal(loaded.images, small.images[:3])
    with pytest.raises(DataError) as e:  # "all" also needs the evaluation zip
        data.load_omniglot(tmp_path, download=False)
    msg = str(e.value)
    assert "images_evaluation.zip" in msg and str(tmp_path / "omniglot") in msg
    assert "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_evaluation.zip" in msg


def test_load_omniglot_checks_the_npz(tmp_path):
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "omniglot_full.npz").write_bytes(b"not the npz")
    with pytest.raises(DataError, match="corrupt or truncated") as e:
        data.load_omniglot(tmp_path, download=False)
    assert "omniglot_full.npz" in str(e.value) and "c2c82b7a01bd2a483b14733faee43ebf" in str(e.value)


def test_omniglot_bad_arguments_and_files(tmp_path):
    with pytest.raises(ConfigError, match="background, evaluation"):
        data.load_omniglot(tmp_path, subset="train", download=False)
    with pytest.raises(ConfigError):
        data.read_omniglot_zip(tmp_path / "x.zip", "all")
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable Omniglot zip"):
        data.read_omniglot_zip(tmp_path / "x.zip", "evaluation")
    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (28, 28), 255).save(png, format="PNG")
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as z:
        z.writestr("images_evaluation/Alpha/character01/0001_01.png", png.getvalue())
    with pytest.raises(DataError, match="28x28 pixels, expected 105x105"):
        data.read_omniglot_zip(tmp_path / "y.zip", "evaluation")


# ------------------------------------------------------------------------------------------- registry


def test_registry():
    assert list(data.DATASETS) == ["digits", "mnist", "fashion-mnist", "cifar100", "mini-imagenet", "cub200"]
    for loader, description in data.DATASETS.values():
        assert callable(loader) and isinstance(description, str) and description
    with pytest.raises(ConfigError) as e:
        data.load_dataset("cifar10")
    assert "'cifar10'" in str(e.value) and "digits, mnist, fashion-mnist, cifar100" in str(e.value)
    assert data.load_dataset("digits").x_train.shape == (1257, 1, 8, 8)
