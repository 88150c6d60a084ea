"""`lifelong reproduce buzzega2020-der`: the protocol as data, the grid on a tiny scenario (no MNIST), resuming
without rerunning, and the table's flags on a document built here."""

import json

import pytest

from lifelong import reproduce_der
from lifelong.benchmarks import make_scenario
from lifelong.cli import main
from lifelong.errors import ConfigError
from lifelong.reproduce_der import BENCHMARKS, PAPER, ROWS, hyper_parameters, plan, planned_runs, render
from lifelong.results import summary


@pytest.fixture
def tiny(monkeypatch):
    """S-MNIST class-IL shrunk: scikit-learn's digits (no download), one buffer of 20."""
    monkeypatch.setitem(BENCHMARKS, "s-mnist-class", ("S-MNIST class-IL", "split-digits", "class", "seq-mnist", (20,)))
    monkeypatch.setitem(reproduce_der.PAPER, "er", {**PAPER["er"], "s-mnist-class": (80.43,)})
    monkeypatch.setattr(reproduce_der, "hyper_parameters", lambda row, benchmark, buffer: hyper_parameters(
        row, "s-mnist-task", None if buffer is None else 200))  # seq-mnist's arguments, buffer 200's
    monkeypatch.setattr(reproduce_der, "scenario_for",
                        lambda benchmark, data_dir, download, seed, batch=None: make_scenario("split-digits", seed=seed))


def test_the_protocol_is_mammoths_best_args():
    assert plan("der++", "s-mnist-class", 200) == {
        "method": "der++", "method_options": {"memory": 200, "minibatch": 128, "alpha": 0.2, "beta": 1.0},
        "stream": True, "epochs": 1, "lr": 0.03, "batch_size": 10, "optimizer": "sgd", "momentum": 0.0,
        "weight_decay": 0.0, "hidden": [100, 100], "scenario": "split-mnist-der"}  # Mammoth's 28x28 in [0, 1]
    # Mammoth's LwF adds wd_reg * sum(theta^2) to its loss: SGD's weight decay is twice wd_reg (0.0005)
    assert plan("lwf", "s-mnist-task", None)["weight_decay"] == 0.001
    assert plan("online-ewc", "p-mnist", None)["method_options"]["strength"] == 0.7
    assert plan("online-ewc", "p-mnist", None)["stream"] is False
    assert plan("online-ewc", "p-mnist", None)["method_options"]["fisher"] == "weighted-empirical"  # ewc_on's
    assert plan("a-gem", "mnist-360", 1000)["batch_size"] == 4  # A-GEM-R's
    assert plan("er-ace", "s-mnist-class", 500)["lr"] == 0.1  # ER's, borrowed
    assert plan("task-free-mas", "p-mnist", None)["lr"] == 0.1  # oEWC's (SGD's 0.2 makes its loss NaN)
    assert plan("task-free-mas", "mnist-360", None)["lr"] == 0.1  # no oEWC on MNIST-360: SGD's
    assert plan("joint", "mnist-360", None)["method_options"] == {"from_scratch": True}  # Mammoth's JOINT
    assert plan("a-gem", "mnist-360", 1000)["stream_batch_size"] == 4  # the stream mixed for the row's batches
    assert "stream_batch_size" not in plan("a-gem", "p-mnist", 200)
    assert plan("task-free-mas", "s-mnist-class", None) == {**plan("sgd", "s-mnist-class", None),
                                                             "method": "task-free-mas"}  # oEWC's = SGD's there
    keys = [key for key, *_ in planned_runs(["sgd", "der", "lwf"], ["s-mnist-class", "p-mnist"], [0])]
    assert keys == ["sgd/s-mnist-class/-/0", "der/s-mnist-class/200/0", "der/s-mnist-class/500/0",
                    "der/s-mnist-class/5120/0", "lwf/s-mnist-class/-/0", "sgd/p-mnist/-/0", "der/p-mnist/200/0",
                    "der/p-mnist/500/0", "der/p-mnist/5120/0"]  # LwF: not on the domain benchmarks ("-")
    assert set(PAPER) == set(ROWS)


def test_summary_flags_one_and_a_half_points_or_two_paper_stds():
    assert summary([80.0, 82.0], 81.0) == "81.00 +- 1.41 (n=2)"
    assert summary([83.0], 81.0).endswith(" !")
    assert summary([81.6], 81.0, paper_std=0.2).endswith(" !")
    assert not summary([90.0], None).endswith("!")  # no paper number: never flagged
    assert summary([90.0], None) == "90.00 (n=1)"  # one seed: no spread shown, not '+- 0.00'


def test_render_puts_ours_beside_the_paper_with_the_hyper_parameters():
    run = lambda accuracy: {"final_average_accuracy": accuracy, "wall_time_s": 1.0, "threads": 1,  # noqa: E731
                            "machine": {}, "plan": plan("der", "s-mnist-class", 200)}
    document = {"runs": {"der/s-mnist-class/200/0": run(0.80), "der/s-mnist-class/200/1": run(0.82),
                         "gdumb/s-mnist-class/200/0": run(0.5)}}
    table = render(document, notes="because")
    row = next(line for line in table.splitlines() if line.startswith("| DER | 200 |"))
    assert "| 84.55 | 81.00 +- 1.41 (n=2) ! |" in row
    gdumb = next(line for line in table.splitlines() if line.startswith("| GDumb"))
    assert "| - | 50.00 (n=1) |" in gdumb  # not in the paper: no flag
    assert "| DER | s-mnist-class | 200 | lr 0.03, mbs 10, bs 10, alpha 0.2 |" in table
    assert table.rstrip().endswith("because")


def test_the_grid_runs_saves_renders_and_resumes_without_rerunning(tiny, tmp_path, monkeypatch, capsys):
    argv = ["reproduce", "buzzega2020-der", "--rows", "sgd,er", "--benchmarks", "s-mnist-class", "--seeds", "1",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    runs = tmp_path / "buzzega2020_der_runs"
    assert sorted(p.name for p in runs.iterdir()) == ["er_s-mnist-class_20_0.json", "sgd_s-mnist-class_-_0.json"]
    first = json.loads((runs / "er_s-mnist-class_20_0.json").read_text())
    assert first["plan"]["method_options"] == {"memory": 20, "minibatch": 10} and first["plan"]["stream"]
    table = (tmp_path / "buzzega2020_der.md").read_text()
    assert "| ER | 20 | 80.43 |" in table and "(n=1)" in table
    assert json.loads((tmp_path / "buzzega2020_der.json").read_text())["runs"].keys() == {
        "er/s-mnist-class/20/0", "sgd/s-mnist-class/-/0"}
    capsys.readouterr()
    # again with a second seed: the finished runs are not run again
    ran = []
    real = reproduce_der.run_one
    monkeypatch.setattr(reproduce_der, "run_one", lambda job: ran.append(job["key"]) or real(job))
    assert main(argv[:6] + ["--seeds", "2"] + argv[8:]) == 0
    assert sorted(ran) == ["er/s-mnist-class/20/1", "sgd/s-mnist-class/-/1"]
    assert json.loads((runs / "er_s-mnist-class_20_0.json").read_text()) == first
    assert "(n=2)" in (tmp_path / "buzzega2020_der.md").read_text()


def test_a_run_whose_loss_becomes_nan_is_saved_as_diverged_and_the_grid_goes_on(tiny, tmp_path, monkeypatch):
    """A cell's hyper-parameters that make the loss NaN are a result: the run file says so, the table's cell says in
    how many seeds, and the other rows still run."""
    patched = reproduce_der.hyper_parameters
    monkeypatch.setattr(reproduce_der, "hyper_parameters", lambda row, benchmark, buffer: {
        **patched(row, benchmark, buffer), **({"lr": 1e30} if row == "sgd" else {})})
    reproduce_der.reproduce(["sgd", "er"], ["s-mnist-class"], [0], tmp_path)
    runs = tmp_path / "buzzega2020_der_runs"
    sgd = json.loads((runs / "sgd_s-mnist-class_-_0.json").read_text())
    assert sgd["final_average_accuracy"] is None and sgd["diverged"].startswith("the loss became nan")
    assert json.loads((runs / "er_s-mnist-class_20_0.json").read_text())["final_average_accuracy"] > 0.2
    row = next(line for line in (tmp_path / "buzzega2020_der.md").read_text().splitlines() if line.startswith("| SGD"))
    assert "| 19.60 | diverged (NaN loss) in 1 of 1 |" in row


def test_bad_rows_and_benchmarks_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no row 'dr'"):
        reproduce_der.reproduce(["dr"], ["p-mnist"], [0], tmp_path)
    with pytest.raises(ConfigError, match="unknown benchmark 'q-mnist'"):
        reproduce_der.reproduce(["der"], ["q-mnist"], [0], tmp_path)


def test_the_table_keeps_the_notes_file_beside_it(tmp_path):
    (tmp_path / "buzzega2020_der_notes.md").write_text("ER 200: measured.\n")
    reproduce_der.save_table(tmp_path)
    assert (tmp_path / "buzzega2020_der.md").read_text().rstrip().endswith("ER 200: measured.")


def test_a_damaged_run_file_is_refused_in_one_line_naming_it(tmp_path):
    from lifelong.errors import ConfigError
    from lifelong.reproduce_der import NAME, load
    (tmp_path / f"{NAME}_runs").mkdir()
    (tmp_path / f"{NAME}_runs" / "er_p-mnist_200_0.json").write_text('{"key": "er/p-mnist/200/0", "final')
    with pytest.raises(ConfigError, match=r"er_p-mnist_200_0.json is damaged: delete it and run the same command"):
        load(tmp_path)
