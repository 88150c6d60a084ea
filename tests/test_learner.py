"""The learner users keep: learn task by task, predict the data set's labels, save and load, own data and models."""

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lifelong import Learner
from lifelong.data import load_digits
from lifelong.errors import ConfigError, DataError
from lifelong.experiment import run_experiment
from lifelong.benchmarks import make_scenario

FAST = dict(epochs=2, batch_size=32, lr=0.005, optimizer="adam", progress=False)
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def labelled(task):
    """A scenario task as a user holds it: inputs and the data set's own labels."""
    return task.x_train, np.asarray(task.classes)[task.y_train.numpy()]


def held_out(task):
    return task.x_test, np.asarray(task.classes)[task.y_test.numpy()]


def accuracy_row(learner, tasks):
    return [learner.evaluate(*held_out(t)) for t in tasks]


# ---------------------------------------------------------------------- the engine drives the same learner
@pytest.mark.parametrize("method, options", [("finetune", {}), ("lwf", {}), ("icarl", {"memory": 60})])
def test_a_learner_fed_task_by_task_matches_run_experiment(digits, method, options):
    results = run_experiment(method, digits, "class", hidden=(32,), method_options=options, **FAST)
    learner = Learner(method, hidden=(32,), **FAST, **options)
    for k, task in enumerate(digits.tasks):
        learner.learn(*labelled(task))
        assert accuracy_row(learner, digits.tasks[:k + 1]) == pytest.approx(results["accuracy_matrix"][k][:k + 1],
                                                                              abs=1e-12)


def test_run_experiment_hands_back_its_learner(digits):
    """It takes the data set's raw inputs (the run prepared them) and answers in its class names."""
    results, learner = run_experiment("finetune", digits, "class", hidden=(32,), return_learner=True, **FAST)
    raw, last = load_digits(), digits.tasks[-1]
    mine = torch.isin(raw.y_test, torch.tensor(last.classes))
    assert learner.evaluate(raw.x_test[mine], raw.y_test[mine].numpy()) == pytest.approx(results["accuracy_matrix"][-1][-1])
    assert learner.classes_ == [digits.class_names[c] for t in digits.tasks for c in t.classes]
    learner.learn(raw.x_test[:20], raw.y_test[:20].numpy() + 10)  # integer labels: new classes "10".."19"
    assert learner.classes_[10:] == sorted({str(c + 10) for c in raw.y_test[:20].tolist()})


# ---------------------------------------------------------------------- save, then go on in a new process
CONTINUE = """
import json, sys
import numpy as np
from lifelong import Learner
from lifelong.benchmarks import make_scenario
tasks = make_scenario("split-digits").tasks
learner = Learner.load(sys.argv[1])
rows = []
for k in range(2, 5):
    t = tasks[k]
    learner.learn(t.x_train, np.asarray(t.classes)[t.y_train.numpy()])
    rows.append([learner.evaluate(s.x_test, np.asarray(s.classes)[s.y_test.numpy()]) for s in tasks[:k + 1]])
print(json.dumps(rows))
"""


@pytest.mark.exact
@pytest.mark.parametrize("method, options", [("ewc", {}), ("lwf", {}), ("bic", {"memory": 100}),
                                             ("si", {"reset_optimizer": False})])  # Adam's moments saved too
def test_save_after_task_2_load_in_a_new_process_and_go_on_as_one_process_would(digits, tmp_path, method, options):
    one = Learner(method, hidden=(32,), **FAST, **options)
    for task in digits.tasks[:2]:
        one.learn(*labelled(task))
    one.save(tmp_path / "learner.pt")
    expected = []
    for k in range(2, 5):
        one.learn(*labelled(digits.tasks[k]))
        expected.append(accuracy_row(one, digits.tasks[:k + 1]))
    child = subprocess.run([sys.executable, "-c", CONTINUE, str(tmp_path / "learner.pt")], capture_output=True,
                           text=True, env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == expected  # exactly: the same numbers, not close ones


def test_the_learner_owns_its_random_state(digits):
    """What the program draws between two tasks does not change what the learner learns."""
    quiet, noisy = (Learner("lwf", hidden=(32,), **FAST) for _ in range(2))
    for task in digits.tasks[:3]:
        quiet.learn(*labelled(task))
        torch.rand(1000)  # the user's own randomness
        np.random.rand(10)
        noisy.learn(*labelled(task))
    x = digits.tasks[0].x_test
    assert torch.equal(quiet.decision_function(x), noisy.decision_function(x))


# ---------------------------------------------------------------------- labels, data, models
def test_predict_returns_the_labels_given_to_learn_strings_included(digits):
    names = {c: f"digit-{c}" for c in range(10)}  # the same order as the integers
    by_int, by_name = Learner("finetune", hidden=(32,), **FAST), Learner("finetune", hidden=(32,), **FAST)
    for task in digits.tasks[:3]:
        x, y = labelled(task)
        by_int.learn(x, y)
        by_name.learn(x, np.asarray([names[c] for c in y]))
    x = torch.cat([t.x_test for t in digits.tasks[:3]])
    assert [names[c] for c in by_int.predict(x)] == by_name.predict(x).tolist()
    assert set(by_int.predict(x)) <= set(range(6)) and by_int.classes_ == [0, 1, 2, 3, 4, 5]
    proba = by_int.predict_proba(x)
    assert proba.shape == (len(x), 6) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert np.array_equal(np.asarray(by_int.classes_)[proba.argmax(1)], by_int.predict(x))


@pytest.mark.exact
def test_numpy_arrays_tensors_and_map_style_datasets_are_the_same_data(digits):
    task = digits.tasks[0]
    x, y = labelled(task)

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i], int(y[i])

    learners = [Learner("finetune", hidden=(32,), **FAST) for _ in range(3)]
    learners[0].learn(x, torch.as_tensor(y))
    learners[1].learn(x.numpy(), y)
    learners[2].learn(Pairs())
    scores = [learner.decision_function(task.x_test) for learner in learners]
    assert torch.equal(scores[0], scores[1]) and torch.equal(scores[0], scores[2])


class SmallConvNet(nn.Module):
    """A user's feature extractor: no `out_features`, the library measures it."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x):
        return self.layers(x)


@pytest.mark.exact
def test_your_own_feature_extractor_gets_the_growing_head_and_saves(digits, tmp_path):
    torch.manual_seed(0)
    learner = Learner("replay", SmallConvNet(), memory=40, **FAST)
    for task in digits.tasks[:2]:
        learner.learn(*labelled(task))
    assert learner.method.model.head.in_features == 32
    x = digits.tasks[1].x_test
    assert learner.evaluate(*held_out(digits.tasks[1])) > 0.5  # it learned something: chance is 0.25
    learner.save(tmp_path / "mine.pt")
    with pytest.raises(ConfigError, match="model=..."):
        Learner.load(tmp_path / "mine.pt")
    again = Learner.load(tmp_path / "mine.pt", model=SmallConvNet())
    assert torch.equal(again.decision_function(x), learner.decision_function(x))


def test_a_model_that_does_not_give_feature_vectors_is_one_clear_error(digits):
    learner = Learner("finetune", nn.Conv2d(1, 4, 3), **FAST)
    with pytest.raises(ConfigError, match="a batch of feature vectors"):
        learner.learn(*labelled(digits.tasks[0]))


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_a_clear_line(digits):
    with pytest.raises(ConfigError, match="unknown method"):
        Learner("nope")
    with pytest.raises(ConfigError, match="has no option mem"):
        Learner("icarl", mem=3)
    learner = Learner("finetune", hidden=(32,), **FAST)
    with pytest.raises(ConfigError, match="learned nothing yet"):
        learner.predict(digits.tasks[0].x_test)
    x, y = labelled(digits.tasks[0])
    with pytest.raises(ConfigError, match="one per input"):
        learner.learn(x, y[:-1])
    learner.learn(x, y)
    with pytest.raises(ConfigError, match="learned in an earlier task"):
        learner.learn(x, y)
    with pytest.raises(ConfigError, match="inputs of shape"):
        learner.learn(x[:, :, :4], y + 2)
    with pytest.raises(ConfigError, match="inputs of shape"):
        learner.predict(x.flatten(1))
    with pytest.raises(ConfigError, match="needs the task id"):
        task_learner = Learner("finetune", setting="task", hidden=(32,), **FAST).learn(x, y)
        task_learner.predict(x)


def test_a_crafted_file_is_not_loaded_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"format": "lifelong.Learner", "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="nothing was run"):
        Learner.load(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save({"some": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a saved learner"):
        Learner.load(tmp_path / "other.pt")


# ---------------------------------------------------------------------- a scenario of your own data
def write_image_folder(root, digits, per_class=None):
    """The digits' test images as PNG files, one folder per class named after the digit."""
    from PIL import Image

    x, labels = [], []
    for task in digits.tasks:
        for image, y in zip(task.x_test, task.y_test):
            x.append((image[0] - image.min()) / (image.max() - image.min() + 1e-8))
            labels.append(task.classes[int(y)])
    images = (torch.stack(x) * 255).round().to(torch.uint8)
    for k, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"digit-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.numpy()).save(folder / f"{k:04d}.png")
    return images, labels


def test_an_image_folder_becomes_a_scenario_that_any_method_runs(digits, tmp_path):
    from lifelong.data.user import read_image_folder
    from lifelong.scenarios import from_data

    images, labels = write_image_folder(tmp_path / "photos", digits)
    x, y, names = read_image_folder(tmp_path / "photos")
    assert names == [f"digit-{d}" for d in range(10)] and x.dtype == torch.uint8 and x.shape[1:] == (1, 8, 8)
    order = np.argsort([f"digit-{label}/{k:04d}" for k, label in enumerate(labels)], kind="stable")
    assert torch.equal(x[:, 0], images[torch.as_tensor(order)])  # pixels read back exactly, in sorted file order
    scenario = from_data(tmp_path / "photos", n_tasks=5, test_fraction=0.25)
    assert [t.classes for t in scenario.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert scenario.class_names == names
    n_train = sum(len(t.x_train) for t in scenario.tasks)
    n_test = sum(len(t.x_test) for t in scenario.tasks)
    assert n_train + n_test == len(x) and abs(n_test / len(x) - 0.25) < 0.02
    results = run_experiment("replay", scenario, "class", hidden=(32,), method_options={"memory": 50}, **FAST)
    assert results["final_average_accuracy"] > 0.3  # fine-tuning alone keeps 0.2 at most: the data were learnable


def test_numpy_features_with_string_labels_and_a_given_test_set():
    from lifelong.scenarios import from_data

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = np.repeat(["ant", "bee", "cat", "dog"], 30)
    scenario = from_data(x, y, n_tasks=2, x_test=x[::3], y_test=y[::3])
    assert scenario.class_names == ["ant", "bee", "cat", "dog"] and scenario.input_shape == (1, 1, 5)
    assert [len(t.x_train) for t in scenario.tasks] == [60, 60] and [len(t.x_test) for t in scenario.tasks] == [20, 20]
    with pytest.raises(ConfigError, match="classes the training set lacks"):
        from_data(x, y, n_tasks=2, x_test=x[:2], y_test=["ant", "eel"])
    with pytest.raises(ConfigError, match="n_tasks must divide"):
        from_data(x, y, n_tasks=3)


def test_an_image_folder_with_mixed_sizes_needs_a_size(tmp_path):
    from PIL import Image

    from lifelong.data.user import read_image_folder

    for name, side in (("a", 8), ("b", 10)):
        (tmp_path / name).mkdir()
        Image.new("L", (side, side)).save(tmp_path / name / "1.png")
    with pytest.raises(ConfigError, match="give a size"):
        read_image_folder(tmp_path)
    assert read_image_folder(tmp_path, size=6)[0].shape == (2, 1, 6, 6)
    (tmp_path / "b" / "2.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        read_image_folder(tmp_path, size=6)


# ---------------------------------------------------------------------- the same from the command line
def one_line_error(capsys, argv):
    from lifelong.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lifelong: error:"), err
    return err[0]


def test_learn_then_predict_from_the_command_line_as_in_python(digits, tmp_path, capsys):
    from lifelong.cli import main

    (x1, y1), (x2, y2) = labelled(digits.tasks[0]), labelled(digits.tasks[1])
    np.savez(tmp_path / "first.npz", x=x1.numpy(), y=y1)
    np.savez(tmp_path / "later.npz", x=x2.numpy(), y=y2)
    test_x = torch.cat([digits.tasks[0].x_test, digits.tasks[1].x_test])
    np.savez(tmp_path / "test.npz", x=test_x.numpy())
    model = str(tmp_path / "model.pt")
    assert main(["learn", model, "--data", str(tmp_path / "first.npz"), "--method", "replay", "--memory", "20",
                 "--epochs", "2", "--hidden", "32", "--quiet"]) == 0
    assert main(["learn", model, "--data", str(tmp_path / "later.npz"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", model, "--data", str(tmp_path / "test.npz")]) == 0
    printed = [int(v) for v in capsys.readouterr().out.split()]
    python = Learner("replay", hidden=(32,), memory=20, epochs=2, progress=False)
    python.learn(x1, y1).learn(x2, y2)
    assert printed == python.predict(test_x).tolist()
    assert "already has its method" in one_line_error(capsys, ["learn", model, "--data", str(tmp_path / "later.npz"),
                                                               "--method", "lwf"])


@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "finetune", "--optimizer", "adam", "--momentum", "0.5"], "momentum has no effect"),
    (["run", "--method", "finetune", "--warmup-lr", "0.1"], "--warmup-lr has no effect"),
    (["learn", "x.pt", "--data", "nothing.npz"], "give an image folder"),
])
def test_options_without_effect_and_bad_data_are_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, argv)


def test_out_that_is_a_file_or_unwritable_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert "is a file" in one_line_error(capsys, ["run", "--method", "finetune", "--out", str(tmp_path / "afile")])
    below_a_file = str(tmp_path / "afile" / "run")  # a folder no one can create (root writes anywhere else)
    assert "cannot write" in one_line_error(capsys, ["run", "--method", "finetune", "--out", below_a_file])


def test_each_methods_options_are_listed_with_defaults_and_meaning(capsys):
    from lifelong.cli import main

    assert main(["list", "--method", "bic"]) == 0
    out = capsys.readouterr().out
    assert "validation_share = 0.1" in out and "9:1" in out and "settings: class" in out


@pytest.mark.parametrize("content, message", [('{"method": "lwf", "accu', "is damaged (not valid JSON"),
                                              ('{"method": "lwf"}', "is not a results file"),
                                              ('[1, 2]', "is not a results file")])
def test_report_on_a_damaged_or_foreign_results_file_is_one_line(tmp_path, capsys, content, message):
    (tmp_path / "results.json").write_text(content)
    assert message in one_line_error(capsys, ["report", str(tmp_path)])


def test_a_saved_joint_learner_is_refused_because_it_keeps_no_data(digits, tmp_path):
    learner = Learner("joint", hidden=(32,), **FAST).learn(*labelled(digits.tasks[0]))
    learner.save(tmp_path / "joint.pt")
    with pytest.raises(ConfigError, match="keeps every old task's data"):
        Learner.load(tmp_path / "joint.pt")


def test_threads_are_chosen_recorded_and_checked(tmp_path, capsys):
    from lifelong.cli import main

    assert "at least 1" in one_line_error(capsys, ["run", "--method", "finetune", "--threads", "0"])
    threads = torch.get_num_threads()
    try:
        assert main(["run", "--method", "finetune", "--setting", "class", "--epochs", "1", "--threads", "1",
                     "--quiet", "--out", str(tmp_path / "r")]) == 0
        assert json.loads((tmp_path / "r" / "results.json").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(threads)


def test_version(capsys):
    from lifelong import __version__
    from lifelong.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"lifelong {__version__}"
