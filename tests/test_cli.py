import json

import pytest
import torch

from lifelong.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "sgd-magic"], "unknown method 'sgd-magic'"),
    (["run", "--scenario", "split-imagenet"], "unknown scenario 'split-imagenet'"),
    (["run", "--setting", "instance"], "unknown setting 'instance'"),
    (["run", "--epochs", "0"], "epochs must be at least 1"),
    (["run", "--lr", "-0.1"], "learning rate must be a positive number"),
    (["run", "--hidden", "400,x"], "--hidden takes positive layer sizes"),
    (["run", "--param", "lamda=2"], "lamda: not an option of"),
    (["run", "--method", "lwf", "--param", "gamma=0.5"], "gamma: not an option of lwf"),  # online-ewc's
    (["run", "--resume"], "--resume needs the --out directory"),
    (["run", "--resume", "--out", "/nonexistent/run"], "nothing to resume: /nonexistent/run does not exist"),
    (["run", "--device", "gpu"], "unknown device 'gpu'"),
    (["run", "--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["run", "--param", "strength"], "--param takes KEY=VALUE, got 'strength'"),
    (["run", "--device", "cuda:7"], "device 'cuda:7'"),
    (["run", "--scenario", "split-mnist", "--data-dir", "/nonexistent/data", "--no-download"],
     "/nonexistent/data/mnist"),
    (["run", "--data", "/nonexistent/photos"], "--data /nonexistent/photos: not a folder"),
    (["run", "--data", ".", "--scenario", "split-mnist"], "leave out --scenario"),
    (["run", "--data", ".", "--data-dir", "/data"], "leave out --data-dir"),
    (["run", "--on-disk"], "--on-disk go with --data FOLDER"),
    (["run", "--data", ".", "--data-workers", "4"], "--data-workers sets the processes that read --on-disk"),
    (["run", "--data", ".", "--test-data", ".", "--test-fraction", "0.3"], "--test-fraction (a share of --data"),
])
def test_bad_input_is_one_clear_line_and_exit_code_2(capsys, argv, message):
    try:
        code, out, err = run_cli(capsys, *argv)
    except SystemExit as exit:  # argparse's own checks exit
        code, (out, err) = exit.code, capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifelong: error:") and message in lines[0]
    assert "Traceback" not in err


def test_list_names_every_method_and_scenario(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("finetune", "finetune-fc", "feature-extraction", "joint",
                 "split-digits", "split-mnist", "split-fashion", "permuted-mnist", "split-cifar100",
                 "hsu2018-split-mnist"):
        assert f"  {name} " in out


def test_run_writes_results_and_report(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(capsys, "run", "--method", "finetune,joint", "--setting", "class", "--epochs", "2",
                           "--hidden", "32", "--quiet", "--out", str(out_dir))
    assert code == 0
    assert "finetune" in out and "joint" in out and "final" in out
    results = json.loads((out_dir / "class-finetune" / "results.json").read_text())
    for key in ("accuracy_matrix", "average_accuracy", "class_order", "seed", "versions", "train_time_s", "config"):
        assert key in results
    # on which CPU, with which kernels and BLAS (floats differ in their last bits between them)
    assert results["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert results["machine"]["cpu"] and results["machine"]["blas"]
    R = results["accuracy_matrix"]
    assert len(R) == 5 and all(0 <= v <= 1 for i, row in enumerate(R) for v in row[: i + 1])
    assert all(v is None for i, row in enumerate(R) for v in row[i + 1:])
    assert len(results["average_accuracy"]) == 5 and results["status"] == "complete"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert {r["method"] for r in summary["runs"]} == {"finetune", "joint"}

    code, out, _ = run_cli(capsys, "report", str(out_dir))
    assert code == 0 and "joint" in out and (out_dir / "report.png").stat().st_size > 10_000


def test_the_default_run_trains_every_method_that_needs_no_memory(capsys, tmp_path):
    """`make demo`'s `lifelong run`, class setting, one epoch: every method of `all` on split-digits (the few-shot
    ones are for the few-shot scenarios) that keeps no exemplars runs to the end (none is refused by its own check)."""
    from lifelong import catalog
    code, out, err = run_cli(capsys, "run", "--setting", "class", "--epochs", "1", "--hidden", "16", "--quiet",
                             "--out", str(tmp_path / "demo"))
    assert code == 0, err
    expected = {name for name in catalog.methods_for_all("split-digits") if not catalog.METHODS[name][2]}
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert {r["method"] for r in summary["runs"]} == expected
    assert not any(line.startswith("skipped:") for line in err.splitlines()), err


@pytest.mark.parametrize("argv, few_shot", [
    ([], False), (["--scenario", "split-mnist"], False), (["--data", "photos"], False),
    (["--scenario", "fscil-omniglot"], True), (["--scenario", "fscil-cifar100"], True),
])
def test_method_all_is_every_method_the_few_shot_ones_on_few_shot_scenarios_only(argv, few_shot):
    """What `--method all` (the default) runs, read from the command line as `lifelong run` reads it (no training):
    the ordinary methods everywhere, the few-shot ones (topic, prototype, cec, fact) only on a few-shot scenario; named,
    they run anywhere."""
    from lifelong import catalog
    from lifelong.cli import build_parser
    from lifelong.cli.run_checks import methods_named

    methods = methods_named(build_parser().parse_args(["run", *argv]))
    assert ("topic" in methods, "prototype" in methods, "cec" in methods, "fact" in methods) == (few_shot,) * 4
    assert set(methods) == set(catalog.METHODS) - (set(catalog.FEW_SHOT_METHODS) if not few_shot else set())
    assert methods_named(build_parser().parse_args(["run", "--method", "topic,finetune"])) == ["topic", "finetune"]


def test_single_run_writes_results_json_in_out(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "run", "--method", "finetune", "--setting", "task", "--epochs", "1",
                         "--hidden", "16", "--quiet", "--out", str(tmp_path))
    assert code == 0 and json.loads((tmp_path / "results.json").read_text())["setting"] == "task"
    # a second invocation with --resume finds the run complete and gives the same numbers
    first = json.loads((tmp_path / "results.json").read_text())["accuracy_matrix"]
    code, _, _ = run_cli(capsys, "run", "--method", "finetune", "--setting", "task", "--epochs", "1",
                         "--hidden", "16", "--quiet", "--out", str(tmp_path), "--resume")
    assert code == 0 and json.loads((tmp_path / "results.json").read_text())["accuracy_matrix"] == first


@pytest.mark.exact
def test_an_interrupted_comparison_resumes_and_a_finished_run_is_never_overwritten(capsys, tmp_path):
    out_dir = tmp_path / "comparison"
    argv = ["run", "--method", "finetune,l2", "--setting", "class", "--hidden", "16", "--quiet", "--out", str(out_dir)]
    assert run_cli(capsys, *argv)[0] == 0
    finished = (out_dir / "class-finetune" / "results.json").read_text()
    # interrupted before l2 began: its directory was never made
    for path in sorted((out_dir / "class-l2").iterdir()):
        path.unlink()
    (out_dir / "class-l2").rmdir()
    code, out, err = run_cli(capsys, *argv, "--resume")
    assert code == 0 and "l2" in out
    assert (out_dir / "class-finetune" / "results.json").read_text() == finished  # resumed, not retrained
    assert json.loads((out_dir / "class-l2" / "results.json").read_text())["status"] == "complete"
    # the same --out without --resume would replace finished results: refused
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "already holds a run" in err
    assert (out_dir / "class-finetune" / "results.json").read_text() == finished


def test_no_command_prints_the_help_and_exits_2(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 2 and "lifelong run" in out


def test_the_comparison_table_marks_a_run_that_has_not_finished():
    from lifelong.report import comparison_table

    run = {"scenario": "split-digits", "seed": 0, "setting": "class", "method": "finetune", "wall_time_s": 3.0,
           "accuracy_matrix": [[0.9, None], [None, None]], "average_accuracy": [0.9, None],
           "final_average_accuracy": 0.9, "final_forgetting": None, "backward_transfer": None}
    assert "finetune (1/2 tasks)" in comparison_table([{**run, "status": "running: 1 of 2 tasks done"}])
    assert "(1/2 tasks)" not in comparison_table([{**run, "status": "complete"}])


def test_seeds_run_each_method_per_seed_and_report_mean_and_std(tmp_path, capsys):
    """--seeds 2: every run kept; the table and summary.json give mean +- std over the seeds, with n, computed by
    hand here from the runs' own results; reports of several invocations keep different configurations apart."""
    import json
    import statistics

    from lifelong.cli import main

    assert main(["run", "--method", "finetune", "--setting", "class", "--seeds", "2", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "a")]) == 0
    table = capsys.readouterr().out
    finals = [json.loads((tmp_path / "a" / "class-finetune" / f"seed-{s}" / "results.json").read_text())
              ["final_average_accuracy"] for s in (0, 1)]
    mean, std = 100 * statistics.mean(finals), 100 * statistics.stdev(finals)
    assert f"{mean:.1f} +- {std:.1f}" in table and " 2 " in table and "0,1" in table
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())["over_seeds"][0]
    assert summary["n"] == 2 and summary["final_average_accuracy"]["mean"] == pytest.approx(mean / 100)
    assert main(["run", "--method", "finetune", "--setting", "class", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    report = capsys.readouterr().out
    assert "finetune [epochs=1]" in report and "finetune [epochs=2]" in report  # never averaged together


@pytest.mark.parametrize("argv, message", [
    (["run", "--seeds", "0,0"], "distinct seeds"),
    (["run", "--seeds", "x"], "--seeds takes a list"),
    (["run", "--seed", "1", "--seeds", "2"], "not both"),
])
def test_bad_seeds_are_one_line(capsys, argv, message):
    from lifelong.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_run_logs_one_line_per_task_and_writes_metrics_csv(tmp_path, capsys):
    """Without a terminal (here: captured), a line per finished task; metrics.csv holds the accuracy matrix."""
    import csv
    import json

    from lifelong.cli import main

    assert main(["run", "--method", "finetune", "--setting", "class", "--epochs", "1",
                 "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    for k in range(5):
        assert f"task {k + 1}/5: average accuracy {100 * results['average_accuracy'][k]:.1f}%" in err
    rows = list(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert len(rows) == 5
    for i, row in enumerate(rows):
        assert float(row["average_accuracy"]) == pytest.approx(results["average_accuracy"][i])
        for j in range(i + 1):
            assert float(row[f"accuracy_task_{j + 1}"]) == pytest.approx(results["accuracy_matrix"][i][j])
        assert row[f"accuracy_task_{min(i + 2, 5)}"] == "" or i == 4


def test_time_left_is_the_mean_of_the_runs_done():
    from lifelong.results import time_left

    assert time_left(60.0, 2, 5) == ", about 2 min left"  # 30 s a run, 3 left: 90 s
    assert time_left(20.0, 2, 4) == ", about 20 s left"
    assert time_left(20.0, 4, 4) == ""
