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
from lifelong.errors import ConfigError, DataError
from lifelong.experiment import run_experiment
from lifelong.scenarios import make_scenario

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
    results, learner = run_experiment("finetune", digits, "class", hidden=(32,), return_learner=True, **FAST)
    last = digits.tasks[-1]
    assert learner.evaluate(*held_out(last)) == pytest.approx(results["accuracy_matrix"][-1][-1])
    assert learner.classes_ == [c for t in digits.tasks for c in t.classes]


# ---------------------------------------------------------------------- save, then go on in a new process
CONTINUE = """
import json, sys
import numpy as np
from lifelong import Learner
from lifelong.scenarios import make_scenario
tasks = make_scenario("split-digits").tasks
learner = Learner.load(sys.argv[1])
rows = []
for k in range(2, 5):
    t = tasks[k]
    learner.learn(t.x_train, np.asarray(t.classes)[t.y_train.numpy()])
    rows.append([learner.evaluate(s.x_test, np.asarray(s.classes)[s.y_test.numpy()]) for s in tasks[:k + 1]])
print(json.dumps(rows))
"""


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
