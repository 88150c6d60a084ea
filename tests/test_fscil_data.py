"""miniImageNet and CUB-200 for few-shot class-incremental learning: their loaders, read on tiny copies written in
the official layouts, and the sessions the shipped index lists (whose lines are image paths) build from them.

The tiny copies hold images the real lists name (the lists are cut short, by monkeypatching, to a few of their
lines) and images no list names. Images are written as PNG data under their .jpg names (Pillow reads a file by its
content), so that their pixels come back exactly.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from lifelong import few_shot
from lifelong.data import load_cub200, load_mini_imagenet
from lifelong.errors import ConfigError, DataError
from lifelong.experiment import train_config
from lifelong.benchmarks import make_scenario

PROTOCOLS = {"fscil-mini-imagenet": "mini_imagenet", "fscil-cub200": "cub200"}
# the image a line names, written out here rather than taken from the loaders under test: miniImageNet's file name,
# CUB-200's path under CUB_200_2011/images/
FILE_OF_LINE = {"mini_imagenet": lambda line: line.split("/")[3], "cub200": lambda line: line.split("/", 2)[2]}


def class_of(line: str) -> str:
    """The class folder a list line names: the wnid, or CUB's `101.White_Pelican`."""
    return line.split("/")[-2]


def short_lists(protocol: str) -> list[list[str]]:
    """The real lists cut short: two lines of each of the base session's first two classes, then the first shot
    of session 2's first two classes, then session 3's first line."""
    lists = few_shot.read_index_lists(protocol)
    base_classes = list(dict.fromkeys(class_of(line) for line in lists[0]))[:2]
    base = [line for c in base_classes for line in [x for x in lists[0] if class_of(x) == c][:2]]
    second = [next(x for x in lists[1] if class_of(x) == c) for c in list(dict.fromkeys(map(class_of, lists[1])))[:2]]
    return [base, second, lists[2][:1]]


def save(path, pixels: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as a PNG under `path` (lossless, whatever the name's ending)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


def random_image(rng, height=84, width=84) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_mini_imagenet(data_dir, lists, rng):
    """A tiny miniImageNet in CEC's layout holding the images `lists` name, an unnamed training image per class
    and two test images per class. Returns (train rows, test rows, {file: the (3, 84, 84) pixels expected})."""
    root = data_dir / "miniimagenet"
    expected = {}
    named = [(FILE_OF_LINE["mini_imagenet"](line), class_of(line)) for lines in lists for line in lines]
    extra = [(f"{wnid}99999999.jpg", wnid) for wnid in dict.fromkeys(w for _, w in named)]
    test_rows = [(f"{wnid}9000000{k}.jpg", wnid) for _, wnid in extra for k in range(2)]
    train_rows = [named[i] for i in rng.permutation(len(named))] + extra  # labels: train.csv's order
    for name, _ in train_rows + test_rows:
        pixels = random_image(rng)
        save(root / "images" / name, pixels)
        expected[name] = pixels.transpose(2, 0, 1)
    # one image of another size (resized: a plain colour stays that colour) and one grey image (made RGB)
    save(root / "images" / extra[0][0], np.full((42, 42, 3), (10, 200, 30), np.uint8))
    expected[extra[0][0]] = np.broadcast_to(np.array([10, 200, 30], np.uint8)[:, None, None], (3, 84, 84))
    grey = rng.integers(0, 256, (84, 84), dtype=np.uint8)
    save(root / "images" / extra[1][0], grey)
    expected[extra[1][0]] = np.stack([grey] * 3)
    for split, rows in (("train", train_rows), ("test", test_rows)):
        (root / "split").mkdir(parents=True, exist_ok=True)
        (root / "split" / f"{split}.csv").write_text("filename,label\n" + "".join(f"{n},{w}\n" for n, w in rows))
    return train_rows, test_rows, expected


def write_cub200(data_dir, lists, rng):
    """A tiny CUB-200-2011 in its official layout holding the images `lists` name, an unnamed training image per
    class and two test images per class, image ids shuffled. Returns (rows (image id, path, class id, is train)
    in image-id order, {path: the (3, 84, 84) pixels expected at the default size})."""
    root = data_dir / "cub200" / "CUB_200_2011"
    named = [(FILE_OF_LINE["cub200"](line), class_of(line), 1) for lines in lists for line in lines]
    folders = list(dict.fromkeys(folder for _, folder, _ in named))
    rest = [(f"{folder}/Extra_{folder[:3]}.jpg", folder, 1) for folder in folders]
    rest += [(f"{folder}/Test_{k}.jpg", folder, 0) for folder in folders for k in range(2)]
    images = named + rest
    ids = rng.permutation(len(images)) + 1
    rows = sorted((int(i), path, int(folder[:3]), flag) for i, (path, folder, flag) in zip(ids, images))
    expected = {}
    for _, path, _, _ in rows:
        pixels = random_image(rng)
        save(root / "images" / path, pixels)
        expected[path] = pixels.transpose(2, 0, 1)
    # a wide image (its shorter side already 84: the centre 84 columns are kept) and a larger plain-colour one
    wide, plain = rest[0][0], rest[1][0]
    pixels = random_image(rng, 84, 168)
    save(root / "images" / wide, pixels)
    expected[wide] = pixels[:, 42:126].transpose(2, 0, 1)
    save(root / "images" / plain, np.full((100, 130, 3), (250, 5, 90), np.uint8))
    expected[plain] = np.broadcast_to(np.array([250, 5, 90], np.uint8)[:, None, None], (3, 84, 84))
    for name, column in (("images.txt", 1), ("image_class_labels.txt", 2), ("train_test_split.txt", 3)):
        (root / name).write_text("".join(f"{row[0]} {row[column]}\n" for row in rows))
    return rows, expected


def test_mini_imagenet_labels_and_pixels_are_what_was_written(tmp_path):
    train_rows, test_rows, expected = write_mini_imagenet(tmp_path, short_lists("mini_imagenet"),
                                                          np.random.default_rng(0))
    dataset = load_mini_imagenet(tmp_path)
    wnids = list(dict.fromkeys(w for _, w in train_rows))
    assert dataset.class_names == wnids and dataset.x_train.dtype == torch.uint8
    assert dataset.extras["train_files"] == [n for n, _ in train_rows]
    assert dataset.y_train.tolist() == [wnids.index(w) for _, w in train_rows]
    assert dataset.y_test.tolist() == [wnids.index(w) for _, w in test_rows]
    for x, rows in ((dataset.x_train, train_rows), (dataset.x_test, test_rows)):
        assert torch.equal(x, torch.from_numpy(np.stack([expected[n] for n, _ in rows])))


def test_cub200_labels_split_and_pixels_are_what_was_written(tmp_path):
    rows, expected = write_cub200(tmp_path, short_lists("cub200"), np.random.default_rng(0))
    dataset = load_cub200(tmp_path)
    for flag, x, y, files in ((1, dataset.x_train, dataset.y_train, dataset.extras["train_files"]),
                              (0, dataset.x_test, dataset.y_test, dataset.extras["test_files"])):
        mine = [row for row in rows if row[3] == flag]  # in image-id order
        assert files == [path for _, path, _, _ in mine]
        assert y.tolist() == [class_id - 1 for _, _, class_id, _ in mine]
        assert torch.equal(x, torch.from_numpy(np.stack([expected[path] for _, path, _, _ in mine])))
    assert len(dataset.class_names) == max(row[2] for row in rows)
    assert {dataset.class_names[c - 1] for _, _, c, _ in rows} == {path.split("/")[0] for _, path, _, _ in rows}
    small = load_cub200(tmp_path, size=42)  # `size`: every image 42 x 42, a plain colour still that colour
    assert small.x_train.shape[1:] == (3, 42, 42) and small.x_test.shape[1:] == (3, 42, 42)
    plain = next(path for path, pixels in expected.items() if (pixels == pixels[:, :1, :1]).all())
    colour = small.x_train[small.extras["train_files"].index(plain)]
    assert torch.equal(colour, torch.tensor([250, 5, 90], dtype=torch.uint8)[:, None, None].expand(3, 42, 42))


def expected_sessions(name, data_dir, lists, rng):
    """Write the tiny copy for scenario `name`; return ({file: pixels}, training files in order, label of file)."""
    if name == "fscil-mini-imagenet":
        train_rows, _, expected = write_mini_imagenet(data_dir, lists, rng)
        wnids = list(dict.fromkeys(w for _, w in train_rows))
        return expected, [n for n, _ in train_rows], {n: wnids.index(w) for n, w in train_rows}
    rows, expected = write_cub200(data_dir, lists, rng)
    train = [row for row in rows if row[3] == 1]
    return expected, [path for _, path, _, _ in train], {path: c - 1 for _, path, c, _ in train}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_sessions_hold_exactly_the_images_their_lines_name(name, tmp_path, monkeypatch):
    protocol = PROTOCOLS[name]
    lists = short_lists(protocol)
    expected, train_files, label = expected_sessions(name, tmp_path, lists, np.random.default_rng(1))
    monkeypatch.setattr(few_shot, "read_index_lists", lambda p: lists if p == protocol else None)
    scenario = make_scenario(name, data_dir=tmp_path, download=False)
    assert scenario.backbone == "resnet20" and scenario.augment and len(scenario.tasks) == 3
    # undo the normalisation with the training images' statistics, computed here from the written pixels
    pixels = np.stack([expected[f] for f in train_files]).astype(np.float64) / 255
    mean = pixels.mean(axis=(0, 2, 3))[:, None, None]
    std = pixels.transpose(1, 0, 2, 3).reshape(3, -1).std(axis=1, ddof=1)[:, None, None]
    for task, lines in zip(scenario.tasks, lists):
        files = [FILE_OF_LINE[protocol](line) for line in lines]
        restored = np.rint((task.x_train.double().numpy() * std + mean) * 255).astype(np.uint8)
        assert np.array_equal(restored, np.stack([expected[f] for f in files])), task.id
        assert task.classes == list(dict.fromkeys(label[f] for f in files))
        assert [task.classes[k] for k in task.y_train.tolist()] == [label[f] for f in files]
        assert sorted(task.y_test.tolist()) == sorted(list(range(task.n_classes)) * 2)  # 2 test images a class
    config = train_config(name)
    assert (config.lr, config.momentum, config.weight_decay, config.schedule) == (0.1, 0.9, 5e-4, "cosine")
    assert config.incremental_lr < config.lr


@pytest.mark.parametrize("name", PROTOCOLS)
def test_a_list_naming_an_image_the_data_lacks_is_one_clear_config_error(name, tmp_path, monkeypatch):
    protocol = PROTOCOLS[name]
    lists = short_lists(protocol)
    expected_sessions(name, tmp_path, lists, np.random.default_rng(2))
    absent = few_shot.read_index_lists(protocol)[1][-1]  # session 2's last shot: not in the tiny copy
    lists[1] = lists[1] + [absent]
    monkeypatch.setattr(few_shot, "read_index_lists", lambda p: lists)
    with pytest.raises(ConfigError) as error:
        make_scenario(name, data_dir=tmp_path, download=False)
    message = str(error.value)
    assert message.startswith(f"session_2.txt names {absent}, an image this data set does not have") and \
        "\n" not in message


@pytest.mark.parametrize("name, remove, where", [
    ("fscil-mini-imagenet", "everything", "miniimagenet/split/train.csv is missing: put miniImageNet"),
    ("fscil-mini-imagenet", "an image", "is missing: put miniImageNet"),
    ("fscil-cub200", "everything", "cub200/CUB_200_2011/images.txt is missing: unpack CUB_200_2011.tgz"),
    ("fscil-cub200", "an image", "is missing: unpack CUB_200_2011.tgz"),
])
def test_missing_data_is_one_data_error_that_says_where_to_put_the_files(name, remove, where, tmp_path):
    expected, _, _ = expected_sessions(name, tmp_path / "data", short_lists(PROTOCOLS[name]),
                                       np.random.default_rng(3))
    data_dir = tmp_path / ("empty" if remove == "everything" else "data")
    images = tmp_path / "data" / ("miniimagenet/images" if "mini" in name else "cub200/CUB_200_2011/images")
    if remove == "an image":
        image = next(iter(expected))
        (images / image).unlink()
    with pytest.raises(DataError) as error:
        make_scenario(name, data_dir=data_dir, download=False)
    message = str(error.value)
    folder = data_dir / ("miniimagenet" if "mini" in name else "cub200")
    assert where in message and f"into {folder}," in message and "--data-dir" in message and "\n" not in message
    if remove == "an image":
        assert message.startswith(str(folder)) and image in message
