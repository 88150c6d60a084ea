"""Data read from disk through a DataLoader (`from_data(folder, on_disk=True)`): the same batches, hence the same
numbers, as the in-memory path."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lifelong.data.user import ImageFiles
from lifelong.errors import ConfigError
from lifelong.experiment import run_experiment
from lifelong.inputs import in_order
from lifelong.scenarios import from_data, in_memory
from lifelong.storage import load_checkpoint

FAST = dict(epochs=3, batch_size=32, lr=0.001, optimizer="adam", hidden=(64,))


@pytest.mark.exact
def test_disk_and_memory_give_the_same_accuracy_matrix(omniglot_folder):
    on_disk = from_data(omniglot_folder, n_tasks=5, test_fraction=0.25, validation_fraction=0.2, workers=2,
                        on_disk=True)
    assert isinstance(on_disk.tasks[0].x_train, ImageFiles) and on_disk.tasks[0].x_train.workers == 2
    assert [len(t.x_train) for t in on_disk.tasks] == [48] * 5  # 4 characters x (15 - 3 held out for validation)
    loaded = in_memory(on_disk)
    assert isinstance(loaded.tasks[0].x_train, torch.Tensor) and loaded.tasks[0].x_train.shape == (48, 1, 28, 28)
    mean = torch.cat([t.x_train for t in loaded.tasks]).mean().item()
    assert abs(mean) < 0.1  # normalised with the training images' statistics, from the streaming pass
    disk = run_experiment("finetune", on_disk, "class", **FAST)
    memory = run_experiment("finetune", loaded, "class", **FAST)
    assert disk["accuracy_matrix"] == memory["accuracy_matrix"]  # the same batches: the same numbers, to the last bit
    assert disk["validation_accuracy_matrix"] == memory["validation_accuracy_matrix"]
    assert disk["epoch_loss"] == memory["epoch_loss"]
    assert disk["accuracy_matrix"][0][0] > 0.5  # 4 characters: learnt, not chance


# every method on both paths: those that keep exemplars (their memory holds a list of files), distil, measure
# importance or take features in passes of their own; workers=0 reads in this process (the same numbers, faster here)
ON_BOTH_PATHS = {
    "replay": {"memory": 40, "mix": "repeat"},
    "icarl": {"memory": 40},
    "bic": {"memory": 100, "validation_share": 0.2},
    "bic-upper-bound": {"memory": 100, "bias_correction": False, "retrain_head": True},
    "podnet": {"memory": 100, "proxies": 3, "finetune_epochs": 2, "spatial_on_vectors": True},
    "lwf": {}, "ewc": {}, "mas": {}, "si": {}, "joint": {}, "competitive": {}, "topic": {"nodes": 40},
    "prototype": {},
}


@pytest.fixture(scope="module")
def both_paths(omniglot_folder):
    on_disk = from_data(omniglot_folder, n_tasks=5, test_fraction=0.25, validation_fraction=0.2, workers=0,
                        on_disk=True)
    return on_disk, in_memory(on_disk)


@pytest.mark.exact
@pytest.mark.parametrize("name", ON_BOTH_PATHS)
def test_every_method_gives_the_same_accuracy_matrix_from_disk(both_paths, name):
    on_disk, loaded = both_paths
    method, options = name.split("-upper-bound")[0], ON_BOTH_PATHS[name]
    disk = run_experiment(method, on_disk, "class", method_options=options, **FAST)
    memory = run_experiment(method, loaded, "class", method_options=options, **FAST)
    assert disk["accuracy_matrix"] == memory["accuracy_matrix"]
    assert disk["epoch_loss"] == memory["epoch_loss"]
    assert disk["method_details"] == memory["method_details"]
    assert max(row[i] for i, row in enumerate(disk["accuracy_matrix"])) > 0.5  # a task learnt (chance: 0.05)


@pytest.mark.exact
def test_the_memory_of_data_on_disk_keeps_files_and_reads_them_again(both_paths, tmp_path):
    on_disk, loaded = both_paths
    options = dict(method_options={"memory": 40, "selection": "herding"}, **FAST)
    disk = run_experiment("replay", on_disk, "class", out_dir=tmp_path / "disk", **options)
    memory = run_experiment("replay", loaded, "class", out_dir=tmp_path / "memory", **options)
    stored = load_checkpoint(tmp_path / "disk" / "checkpoint.pt")["method"]["memory"]["x"]
    kept = {key: value["image_files"] for key, value in stored.items()}
    assert sum(len(files) for files in kept.values()) == 40 and all(len(f) == 2 for f in kept.values())
    assert all(isinstance(f, str) and f.endswith(".png") for files in kept.values() for f in files)
    # the same exemplars on both paths: the files chosen hold the very images the in-memory memory keeps
    in_ram = load_checkpoint(tmp_path / "memory" / "checkpoint.pt")["method"]["memory"]["x"]
    images = ImageFiles.from_state_dict(stored[(0, 0)])
    assert torch.equal(torch.stack([images[i] for i in range(len(images))]), in_ram[(0, 0)])
    assert disk["accuracy_matrix"] == memory["accuracy_matrix"]


def test_a_test_folder_on_disk_is_the_test_set(omniglot_folder, tmp_path):
    """The last 5 drawings of each character copied to a test folder: its images are each task's test set, labelled
    by their class folders' names (a test folder that lacks a class does not shift the others' labels)."""
    train, test = tmp_path / "train", tmp_path / "test"
    for character in sorted(omniglot_folder.iterdir()):
        for kind, drawings in ((train, sorted(character.iterdir())[:15]), (test, sorted(character.iterdir())[15:])):
            (kind / character.name).mkdir(parents=True)
            for drawing in drawings:
                (kind / character.name / drawing.name).write_bytes(drawing.read_bytes())
    (test / "character03").rename(test / "zz")  # a test folder's classes are found by name...
    with pytest.raises(ConfigError, match="classes the training folder lacks: zz"):
        from_data(train, x_test=test, n_tasks=5, on_disk=True, workers=0)
    (test / "zz").rename(test / "character03")
    for drawing in (test / "character00").iterdir():  # ...and need not all be there: no test drawings of one
        drawing.unlink()
    (test / "character00").rmdir()
    scenario = from_data(train, x_test=test, n_tasks=5, class_order_seed=1, on_disk=True, workers=0)
    assert [len(t.x_train) for t in scenario.tasks] == [60] * 5 and sum(len(t.x_test) for t in scenario.tasks) == 95
    for task in scenario.tasks:
        for i in (0, 7, 14):  # each test image is one of its class's test drawings, labelled within its task
            file = task.x_test.files[i]
            assert file.parent.parent == test
            assert scenario.class_names[task.classes[int(task.y_test[i])]] == file.parent.name
    # normalised with the training images' statistics: a test image's numbers are those of the same file in training
    same = from_data(omniglot_folder, n_tasks=5, test_fraction=0.25, on_disk=True, workers=0)
    image = scenario.tasks[0].x_test[0]
    twin = ImageFiles(scenario.tasks[0].x_test.files[:1], "L", None, scenario.tasks[0].x_train.mean,
                      scenario.tasks[0].x_train.std)[0]
    assert torch.equal(image, twin) and image.shape == same.tasks[0].x_test[0].shape
    result = run_experiment("finetune", scenario, "class", **FAST)
    assert max(row[i] for i, row in enumerate(result["accuracy_matrix"])) > 0.5


def test_image_files_are_indexed_as_a_tensor_of_their_images_would_be(both_paths):
    on_disk, loaded = both_paths
    files, tensor = on_disk.tasks[1].x_train, loaded.tasks[1].x_train
    mask = on_disk.tasks[1].y_train == 2
    for index in (slice(3, 20, 4), torch.tensor([5, 0, 5]), mask, [1, 2]):
        picked = files[index]
        assert isinstance(picked, ImageFiles)
        assert torch.equal(torch.stack([picked[i] for i in range(len(picked))]), tensor[index])
    assert torch.equal(files[torch.tensor(4)], tensor[4])
    assert list(in_order(files[[]], 4)) == [] and list(in_order(files[:5], 4))[1].shape == tensor[4:5].shape


@pytest.mark.exact
def test_an_interrupted_run_on_disk_resumes_with_the_same_exemplars(both_paths, tmp_path, monkeypatch):
    """BiC's two memories (training and validation exemplars) are lists of files in the checkpoint: a run stopped
    before its third task continues to the numbers of an uninterrupted run."""
    from lifelong.methods.bic import BiC

    on_disk, _ = both_paths
    options = dict(method_options={"memory": 100, "validation_share": 0.2}, **FAST)
    whole = run_experiment("bic", on_disk, "class", out_dir=tmp_path / "whole", **options)
    before_task = BiC.before_task

    def stop_at_task_2(self, task):
        if task.id == 2:
            raise KeyboardInterrupt
        before_task(self, task)

    monkeypatch.setattr(BiC, "before_task", stop_at_task_2)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("bic", on_disk, "class", out_dir=tmp_path / "cut", **options)
    monkeypatch.setattr(BiC, "before_task", before_task)
    resumed = run_experiment("bic", on_disk, "class", out_dir=tmp_path / "cut", resume=True, **options)
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["method_details"] == whole["method_details"]


def test_the_command_line_runs_a_folder_on_disk_as_in_memory(omniglot_folder, tmp_path, capsys):
    """`lifelong run --data FOLDER --on-disk` (a method with a memory) gives the numbers of the same run in memory."""
    from lifelong.cli import main

    common = ["run", "--data", str(omniglot_folder), "--method", "replay", "--memory", "40", "--setting", "class",
              "--n-tasks", "4", "--epochs", "1", "--hidden", "32", "--quiet"]
    assert main(common + ["--on-disk", "--data-workers", "0", "--out", str(tmp_path / "disk")]) == 0
    assert main(common + ["--out", str(tmp_path / "memory")]) == 0
    disk, memory = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("disk", "memory"))
    assert disk["scenario"] == memory["scenario"] == omniglot_folder.name
    assert disk["scenario_config"]["on_disk"] and not memory["scenario_config"].get("on_disk")
    assert len(disk["accuracy_matrix"]) == 4 and disk["task_classes"][0] == [0, 1, 2, 3, 4]  # 20 characters, 4 tasks
    assert disk["accuracy_matrix"] == memory["accuracy_matrix"]
    assert f"{omniglot_folder.name}: 4 tasks, 320 training samples" in capsys.readouterr().err  # 20 x 16 drawings for training


def test_only_image_folders_are_read_from_disk():
    with pytest.raises(ConfigError, match="on_disk=True reads image folders"):
        from_data(np.zeros((4, 2), dtype=np.float32), ["a", "a", "b", "b"], n_tasks=1, on_disk=True)


@pytest.mark.parametrize("path", ["disk", "memory"])
def test_a_learner_after_a_run_predicts_raw_images_in_their_class_names(both_paths, path, tmp_path):
    """The learner a run hands back (and `lifelong run` saves) takes the images as read from their files and
    answers in the folders' names: on each task's test images its accuracy is the run's own last row."""
    from lifelong import Learner
    from lifelong.data.user import read_image

    on_disk, loaded = both_paths
    scenario = on_disk if path == "disk" else loaded
    results, learner = run_experiment("replay", scenario, "class", method_options={"memory": 40},
                                      return_learner=True, **FAST)
    learner.save(tmp_path / "learner.pt")
    learner = Learner.load(tmp_path / "learner.pt")
    for task, accuracy in zip(on_disk.tasks, results["accuracy_matrix"][-1]):
        raw = torch.stack([read_image(f, "L", None) for f in task.x_test.files])  # uint8, as a user has them
        names = [scenario.class_names[task.classes[k]] for k in task.y_test.tolist()]
        assert learner.evaluate(raw.numpy(), names) == pytest.approx(accuracy, abs=1e-9)
    assert set(learner.classes_) == set(scenario.class_names)
    # it learns on: images in memory beside a memory of files (read into memory to train with them)
    learner.learn(raw.numpy(), [f"new-{name}" for name in names])
    assert learner.classes_[-4:] == sorted(f"new-{name}" for name in set(names))
    assert learner.evaluate(raw.numpy(), [f"new-{name}" for name in names]) > 0.5


def test_predict_and_learn_read_folders_as_the_learner_saw_its_images(omniglot_folder, tmp_path, capsys, monkeypatch):
    """`lifelong predict` on a run's learner: a folder of images without classes (the predictions, as the learner
    gives them on the same images in memory), and a folder of class sub-folders (a CSV row per file, and the
    accuracy), read 3 files at a time here; `lifelong learn` on colour images for a grey learner."""
    import csv

    from lifelong import Learner, cli
    from lifelong.data.user import read_image

    learner_file = str(tmp_path / "run" / "learner.pt")
    assert cli.main(["run", "--data", str(omniglot_folder), "--method", "replay", "--memory", "200", "--setting",
                     "class", "--epochs", "5", "--hidden", "64", "--quiet", "--out", str(tmp_path / "run")]) == 0
    flat = tmp_path / "flat"
    flat.mkdir()
    drawings = sorted((omniglot_folder / "character07").iterdir())
    for drawing in drawings:
        (flat / drawing.name).write_bytes(drawing.read_bytes())
    monkeypatch.setattr(cli.learn, "PREDICT_CHUNK", 3)  # 20 drawings: 7 reads (`lifelong predict` is in cli/learn.py)
    capsys.readouterr()
    assert cli.main(["predict", learner_file, "--data", str(flat)]) == 0
    raw = torch.stack([read_image(drawing, "L") for drawing in drawings])
    assert capsys.readouterr().out.split() == Learner.load(learner_file).predict(raw).tolist()
    assert cli.main(["predict", learner_file, "--data", str(omniglot_folder), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 400 and rows[21]["file"] == str(omniglot_folder / "character01" / "01.png")
    share = sum(row["prediction"] == row["label"] for row in rows) / len(rows)
    assert f"accuracy: {100 * share:.2f}% on 400 inputs" in capsys.readouterr().err and share > 0.5
    # it learns on from a folder of colour images: read in its own grey, as the run read its images
    colour = tmp_path / "colour"
    for character in ("character00", "character01"):
        (colour / f"new-{character}").mkdir(parents=True)
        for drawing in sorted((omniglot_folder / character).iterdir()):
            Image.open(drawing).convert("RGB").save(colour / f"new-{character}" / drawing.name)
    assert cli.main(["learn", learner_file, "--data", str(colour), "--quiet"]) == 0  # was: "inputs of shape (3, 28, 28)"
    assert Learner.load(learner_file).classes_[-2:] == ["new-character00", "new-character01"]
    capsys.readouterr()
    assert cli.main(["learn", learner_file, "--data", str(flat), "--quiet"]) == 2
    assert "has no class sub-folders" in capsys.readouterr().err
