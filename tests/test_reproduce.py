import json
import re

import pytest
import torch

from lifelong.cli import main
from lifelong.errors import ConfigError
from lifelong.reproduce import load, method_options, render, reproduce
from lifelong.results import summary


def test_summary_flags_two_paper_stds_or_one_and_a_half_points():
    # mean 71.5, sample std 0.71: within 2 x 1.26 and 1.5 points of the paper's 71.02
    assert summary([71.0, 72.0], 71.02, 1.26) == "71.50 +- 0.71 (n=2)"
    # 1.6 points away but within 2 stds (3.73): flagged by the 1.5-point rule
    assert summary([64.4, 64.4], 66.00, 3.73).endswith("!")
    # 0.3 points away but 3 of the paper's stds (0.08): flagged
    assert summary([19.95], 19.71, 0.08) == "19.95 (n=1) !"
    assert summary([50.0], None) == "50.00 (n=1)"  # a row of ours only: nothing to compare


def test_rows_run_with_the_papers_coefficients_and_estimators():
    assert method_options("ewc", "class") == ("ewc", {"fisher": "predicted", "estimate": "batch", "strength": 600})
    # Hsu et al.'s MAS: the mean over the outputs read (2 per task seen in the class setting), the paper's lambda
    assert method_options("mas", "domain") == ("mas", {"estimate": "batch", "reduction": "mean", "strength": 10000})
    assert method_options("l2", "task") == ("l2", {"strength": 0.01})
    # Hsu et al.'s LwF (van de Ven's code) has no warm-up, which ours runs by default
    assert method_options("lwf-all-2000it", "class") == ("lwf", {"warmup": False, "class_distillation": "all-classes"})
    assert method_options("lwf-all-2000it", "domain") == ("lwf", {"warmup": False})
    assert method_options("lwf", "task") == ("lwf", {"warmup": False})
    assert method_options("finetune", "task") == ("finetune", {})


def test_render_puts_ours_beside_the_paper():
    runs = {f"lwf/task/{seed}": {"final_average_accuracy": value, "wall_time_s": 10.0}
            for seed, value in enumerate((0.995, 0.997))}
    table = render({"runs": runs}, notes="our notes")
    row = next(line for line in table.splitlines() if "(`lwf`)" in line)
    assert row.split(" | ")[1:4] == ["99.60 +- 0.03", "99.60 +- 0.14 (n=2)", "71.02 +- 1.26"]
    assert "not run" in row and "(`finetune`)" not in table  # rows with no runs are left out
    assert table.rstrip().endswith("our notes")


def test_a_cell_of_runs_made_with_other_epochs_says_so_flagged_or_not():
    # finetune task-IL, paper 93.46 +- 2.01: 94.0 is within the rule, 97.0 is flagged; both ran 1 epoch, not 4
    for value, cell in ((0.94, "94.00 (n=1) [1 epochs]"), (0.97, "97.00 (n=1) ! [1 epochs]")):
        runs = {"finetune/task/0": {"final_average_accuracy": value, "wall_time_s": 1.0, "epochs": 1}}
        row = next(line for line in render({"runs": runs}).splitlines() if "(`finetune`)" in line)
        assert row.split(" | ")[1:3] == ["93.46 +- 2.01", cell]


def test_bad_rows_and_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no row 'adam'"):
        reproduce("hsu2018-split-mnist", ["adam"], ["task"], [0], tmp_path)
    with pytest.raises(ConfigError, match="unknown setting"):
        reproduce("hsu2018-split-mnist", ["finetune"], ["tasks"], [0], tmp_path)
    with pytest.raises(ConfigError, match="unknown reproduction"):
        reproduce("hsu2018", ["finetune"], ["task"], [0], tmp_path)


def test_reproduce_command_writes_the_table_and_continues_where_it_stopped(shared_data, tmp_path, capsys):
    argv = ["reproduce", "hsu2018-split-mnist", "--methods", "finetune", "--setting", "task", "--seeds", "1",
            "--epochs", "1", "--data-dir", str(shared_data), "--no-download", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr()
    row = next(line for line in out.out.splitlines() if "(`finetune`)" in line)
    assert "93.46 +- 2.01" in row and "(n=1)" in row
    run_file = tmp_path / "hsu2018_split_mnist_runs" / "finetune_task_0.json"
    first = json.loads(run_file.read_text())
    assert first["key"] == "finetune/task/0" and 0.5 < first["final_average_accuracy"] <= 1
    assert len(first["accuracy_matrix"]) == 5
    # the same command again: the finished run is kept, not run again; a second seed is added beside it
    assert main(argv[:6] + ["--seeds", "2"] + argv[8:]) == 0
    log = capsys.readouterr().err
    assert "seed 0" not in log and "seed 1" in log
    assert json.loads(run_file.read_text()) == first
    table = (tmp_path / "hsu2018_split_mnist.md").read_text()
    # not the protocol's 4 epochs: said in the cell (whether the cell is flagged depends on the CPU's last bits)
    assert re.search(r"\(n=2\)( !)? \[1 epochs\]", table)
    # the same table with another protocol (4 epochs, not 1) would mix the two: refused before anything runs
    assert main(argv[:8] + argv[10:]) == 2
    error = capsys.readouterr().err
    assert "made differently" in error and "finetune_task_0.json" in error  # which file to delete to run it again
    # deleting a run's file removes the run (the table's JSON is derived from the run files)
    (tmp_path / "hsu2018_split_mnist_runs" / "finetune_task_1.json").unlink()
    assert set(load(tmp_path)["runs"]) == {"finetune/task/0"}


def test_tables_say_how_many_threads_their_runs_used_and_on_which_cpu(monkeypatch):
    from lifelong.results import KERNEL_VARIABLES, machine, thread_note

    for name in KERNEL_VARIABLES:  # the suite may itself run under narrowed kernels (.ci/run does)
        monkeypatch.delenv(name, raising=False)
    here = machine()
    assert here["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and here["cpu"]
    assert thread_note([{"threads": 1, "machine": here}, {"threads": 1, "machine": here}]) == \
        f"Torch threads: 1 (every run). Made on: {here['cpu']} ({here['architecture']}), kernels " \
        f"{here['cpu_capability']}, BLAS {here['blas'].split(':')[0]} (every run)."
    other = {**here, "cpu_capability": "DEFAULT", "kernel_variables": {"ATEN_CPU_CAPABILITY": "default"}}
    mixed = thread_note([{"threads": 1, "machine": here}, {"threads": 2, "machine": other}, {}])
    assert mixed.startswith("Torch threads: MIXED") and "1: 1 run(s), 2: 1 run(s), not recorded: 1 run(s)" in mixed
    assert "Made on: MIXED" in mixed and "kernels DEFAULT, BLAS" in mixed and "ATEN_CPU_CAPABILITY=default: 1" in mixed


def test_a_run_records_the_kernels_it_was_made_with(monkeypatch):
    from lifelong.results import KERNEL_VARIABLES, machine

    for name in KERNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert machine()["kernel_variables"] == {"ATEN_CPU_CAPABILITY": "avx2"}
