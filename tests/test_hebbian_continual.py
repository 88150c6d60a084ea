"""The competitive and neural-gas methods in the continual engine: no forgetting by construction, resumable."""

import json

import pytest
import torch

from lifelong.cli import main
from lifelong.engine import TrainConfig, run
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, build_model, run_experiment
from lifelong.methods import Competitive, NeuralGasMethod
from lifelong.benchmarks import make_scenario

FAST = dict(epochs=2, batch_size=32, progress=False)


@pytest.fixture(scope="module")
def digits_scenario():
    return make_scenario("split-digits")


def fresh(name, scenario, setting, seed=0, **options):
    torch.manual_seed(seed)
    return build_method(name, build_model(scenario, hidden=(32,)), setting, options)


@pytest.mark.parametrize("name", ["competitive", "neural-gas"])
def test_class_incremental_without_forgetting(digits_scenario, name):
    method = fresh(name, digits_scenario, "class")
    first_units = {}

    class Spy(type(method)):
        def after_task(self, task):
            super().after_task(task)
            first_units[task.id] = self.model.units.detach().clone()

    method.__class__ = Spy
    results = run(method, digits_scenario, TrainConfig(**FAST))
    # each class brought 20 units; the units of every earlier task are exactly where that task left them
    assert method.model.units.shape[0] == 10 * 20
    for t in range(4):
        assert torch.equal(first_units[t], method.model.units[:len(first_units[t])])
    # fine-tuning ends near 20% here (it knows only the last task's classes); local learning keeps them all
    assert results["final_average_accuracy"] > 0.95 and results["final_forgetting"] < 0.03


def test_scores_are_minus_the_distance_to_the_nearest_unit_of_each_output(digits_scenario):
    method = fresh("competitive", digits_scenario, "class", units_per_class=2)
    for task in digits_scenario.tasks[:2]:
        method.before_task(task)
    units = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, 1.0], [9.0, 9.0], [2.0, 2.0],
                          [0.0, 4.0]])
    method.model.units.data = units
    scores = method.predict(torch.tensor([[0.0, 2.0]]))
    # outputs 0..3 own units (0,1), (2,3), (4,5), (6,7): nearest squared distances 4, 1, 2, 4
    assert scores.tolist() == [[-4.0, -1.0, -2.0, -4.0]]
    assert method.model.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_only_the_winner_of_the_samples_own_class_moves(digits_scenario):
    method = fresh("competitive", digits_scenario, "class", units_per_class=3, learning_rate=0.5)
    task = digits_scenario.tasks[0]
    method.before_task(task)
    before = method.model.units.detach().clone()
    x = task.x_train[:1].flatten(1)
    label = int(task.y_train[0])
    method.local_update(x, task.y_train[:1], torch.zeros(1, dtype=torch.long))
    moved = (method.model.units != before).any(1).nonzero().flatten().tolist()
    own = list(range(3 * label, 3 * label + 3))
    nearest = own[int(((before[own] - x) ** 2).sum(1).argmin())]
    assert moved == [nearest]
    assert torch.allclose(method.model.units[nearest], before[nearest] + 0.5 * (x[0] - before[nearest]))


def test_neural_gas_method_anneals_per_class_and_builds_edges(digits_scenario):
    method = fresh("neural-gas", digits_scenario, "class", units_per_class=8)
    run(method, digits_scenario, TrainConfig(**FAST))
    for (task_id, label), gas in method.gases.items():
        n = int((digits_scenario.tasks[task_id].y_train == label - 2 * task_id).sum())
        assert gas["t_max"] == n and gas["t"] == 2 * n  # two epochs, annealed over the first
        edges = method.edges(task_id, label)
        assert torch.equal(edges, edges.T) and edges.any()


@pytest.mark.parametrize("setting", ["task", "domain"])
def test_task_and_domain_settings(digits_scenario, setting):
    method = fresh("competitive", digits_scenario, setting, units_per_class=10)
    results = run(method, digits_scenario, TrainConfig(**FAST))
    assert results["final_average_accuracy"] > 0.95
    if setting == "domain":  # shared outputs 0/1: every task adds its own units under them
        assert method.model.labels.max() == 1 and method.model.tasks.unique().tolist() == [0, 1, 2, 3, 4]


class InterruptedCompetitive(Competitive):
    def before_task(self, task):
        if task.id == 2:
            raise KeyboardInterrupt
        super().before_task(task)


class InterruptedNeuralGas(NeuralGasMethod):
    def before_task(self, task):
        if task.id == 2:
            raise KeyboardInterrupt
        super().before_task(task)


@pytest.mark.exact
@pytest.mark.parametrize("name,interrupted_class", [("competitive", InterruptedCompetitive),
                                                     ("neural-gas", InterruptedNeuralGas)])
def test_resume_after_an_interruption_gives_the_same_numbers(digits_scenario, tmp_path, name, interrupted_class):
    config = TrainConfig(seed=5, **FAST)
    reference = run(fresh(name, digits_scenario, "class", seed=5), digits_scenario, config)
    torch.manual_seed(5)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted_class(build_model(digits_scenario, hidden=(32,)), "class"), digits_scenario, config,
            out_dir=tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["status"].startswith("running: 2 of 5")
    resumed = run(fresh(name, digits_scenario, "class", seed=5), digits_scenario, config, out_dir=tmp_path,
                  resume=True)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"] and resumed["status"] == "complete"


def test_command_line_runs_the_local_learners_beside_finetuning(tmp_path, capsys):
    code = main(["run", "--method", "competitive,neural-gas,finetune", "--setting", "class", "--epochs", "1",
                 "--hidden", "32", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    summary = capsys.readouterr().out
    assert "competitive" in summary and "neural-gas" in summary and "finetune" in summary
    results = json.loads((tmp_path / "class-competitive" / "results.json").read_text())
    assert results["final_average_accuracy"] > 0.9


def test_bad_options(digits_scenario):
    with pytest.raises(ConfigError, match="units_per_class"):
        fresh("competitive", digits_scenario, "class", units_per_class=0)
    with pytest.raises(ConfigError, match="learning_rate"):
        fresh("competitive", digits_scenario, "class", learning_rate=2.0)
    with pytest.raises(ConfigError, match="lambda_initial"):
        fresh("neural-gas", digits_scenario, "class", lambda_initial=-1)
    with pytest.raises(ConfigError, match="no option"):
        fresh("neural-gas", digits_scenario, "class", learning_rate=0.1)


@pytest.mark.slow
def test_split_mnist_class_incremental_competitive_keeps_old_classes(shared_data):
    scenario = make_scenario("split-mnist", data_dir=shared_data, download=False)
    results = run_experiment("competitive", scenario, "class", epochs=1, progress=False)
    # fine-tuning ends near 20% here (tests/test_engine.py); units that only their own class moves keep the rest
    assert results["final_average_accuracy"] > 0.9 and results["final_forgetting"] < 0.05
    assert min(results["accuracy_matrix"][-1]) > 0.85


def _stream(scenario):
    return TrainConfig(stream=True, batch_size=10, progress=False)


@pytest.mark.parametrize("name", ["competitive", "neural-gas"])
def test_a_stream_makes_each_class_units_from_its_first_samples(digits_scenario, name):
    """Told no boundary, each class still gets units_per_class units, made of its first samples in arrival order
    (checked with a learning rate that moves nothing), and the stream learns about as well as one epoch does."""
    frozen = {"learning_rate": 1e-12} if name == "competitive" else {"eps_initial": 1e-12, "eps_final": 1e-12}
    method = fresh(name, digits_scenario, "class", units_per_class=3, **frozen)
    arrived = []

    class Spy(type(method)):
        def local_update(self, x, targets, task_ids):
            arrived.append((x.flatten(1).clone(), targets.clone()))
            super().local_update(x, targets, task_ids)

    method.__class__ = Spy
    run(method, digits_scenario, _stream(digits_scenario))
    x = torch.cat([a[0] for a in arrived])
    y = torch.cat([a[1] for a in arrived])
    assert method.model.units.shape[0] == 10 * 3 and not method.held
    for label in range(10):
        first = x[y == label][:3]
        assert torch.allclose(method.model.units[method.model.labels == label], first, atol=1e-6)

    learned = run(fresh(name, digits_scenario, "class"), digits_scenario, _stream(digits_scenario))
    one_epoch = run(fresh(name, digits_scenario, "class"), digits_scenario, TrainConfig(epochs=1, batch_size=10,
                                                                                        progress=False))
    assert learned["final_average_accuracy"] > one_epoch["final_average_accuracy"] - 0.05


def test_a_stream_class_short_of_samples_gets_units_at_the_evaluation(digits_scenario):
    method = fresh("competitive", digits_scenario, "class", units_per_class=3)
    method.enter_stream(digits_scenario.tasks)
    x = torch.arange(12.0).reshape(6, 2)
    zeros = torch.zeros(4, dtype=torch.long)
    # class 0: samples 0 and 2 held; class 1: samples 1 and 3 held (too few for 3 units)
    method.local_update(x[:4], torch.tensor([0, 1, 0, 1]), zeros)
    assert method.model.units.shape[0] == 0 and len(method.held) == 2
    # samples 4 and 5 of class 0: 0, 2 and 4 become its units, and 5 trains the nearest, 4 at (8, 9):
    # w <- w + 0.05 (x - w) = (8.1, 9.1)
    method.local_update(x[4:], torch.tensor([0, 0]), zeros[:2])
    assert torch.allclose(method.model.units, torch.tensor([[0.0, 1.0], [4.0, 5.0], [8.1, 9.1]]))
    assert list(method.held) == [(0, 1)]
    method.before_evaluation(None)  # class 1 gets its units from the two held
    assert method.model.labels.tolist() == [0, 0, 0, 1, 1] and method.model.units[3:].tolist() == x[[1, 3]].tolist()
