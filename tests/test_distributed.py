"""One run on two processes (torchrun, the gloo backend on CPU) against the same run on one process.

The two processes each compute the loss of half of every batch of 25 and add their gradients up (`lifelong.
distributed`); one process computes the whole batch. The sums are the same up to float rounding (they are added
in another order), so the weights differ in their last bits and the accuracy matrices may differ where a test
sample lies on a decision boundary: the test allows one test sample per task (1/106 of a task's accuracy), and
asks the training losses to agree to 1e-3 relative (their rounding grows over 5 tasks of Adam: replay's last
task differs by 1e-4). A wrong sum (gradients not added up, importance measured on
half the data, shares weighted as equals) moves the weights by far more and fails both.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lifelong
from lifelong import distributed
from lifelong.cli import main

# batch 25: the tasks' 248 to 354 samples end in batches of 23 (shares of 11 and 12), 2 and 4, and task 1's in a
# batch of 1 (fewer rows than processes: both take it whole)
COMMON = ["--setting", "class", "--epochs", "2", "--hidden", "32", "--batch-size", "25", "--threads", "1", "--quiet"]
METHODS = ["finetune", "lwf", "mas", "ewc", "si", "replay"]
ONE_SAMPLE = 1 / 106  # the smallest task's test set has 106 samples


def torchrun(*argv):
    """`torchrun --nproc_per_node 2 -m lifelong ...`, running this checkout's lifelong."""
    source = str(Path(lifelong.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lifelong", *argv], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def assert_same_run(two: dict, one: dict, one_sample: float = ONE_SAMPLE) -> None:
    assert (two["world_size"], one["world_size"]) == (2, 1)
    R2, R1 = (np.array(r["accuracy_matrix"], dtype=float) for r in (two, one))
    assert np.allclose(R2, R1, atol=one_sample + 1e-9, equal_nan=True), (two["method"], R2 - R1)
    for losses2, losses1 in zip(two["epoch_loss"], one["epoch_loss"]):
        assert np.allclose(losses2, losses1, rtol=1e-3), (two["method"], losses2, losses1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every method once on two processes and once on one, the same options (exemplars: 100)."""
    out = tmp_path_factory.mktemp("distributed")
    argv = ["run", "--method", ",".join(METHODS), "--memory", "100", *COMMON]
    done = torchrun(*argv, "--out", str(out / "two"))
    assert main([*argv, "--out", str(out / "one")]) == 0
    return out, done


def test_two_processes_read_a_folder_on_disk_as_one(omniglot_folder, tmp_path):
    """iCaRL on images read from their files: each process reads its share of every batch, and herding, run by
    every process on the same features, picks the same files on both."""
    argv = ["run", "--method", "icarl", "--memory", "40", "--data", str(omniglot_folder), "--n-tasks", "4",
            "--on-disk", "--data-workers", "0", *COMMON]
    torchrun(*argv, "--out", str(tmp_path / "two"))
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert_same_run(results(tmp_path / "two"), results(tmp_path / "one"), one_sample=1 / 20)  # 20 test drawings a task
    assert results(tmp_path / "two")["method_details"]["memory"]["stored"] == 40


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_give_the_one_process_accuracy_matrix(runs, method):
    out, _ = runs
    assert_same_run(results(out / "two" / f"class-{method}"), results(out / "one" / f"class-{method}"))


def test_only_the_main_process_writes_and_prints(runs):
    out, done = runs
    assert done.stdout.count("final") == 1  # one comparison table, not one per process
    assert (out / "two" / "report.html").exists() and (out / "two" / "class-ewc" / "learner.pt").exists()
    assert not list((out / "two").rglob(".*.tmp"))


def test_a_run_interrupted_on_one_process_resumes_on_two(runs, tmp_path, monkeypatch):
    """Every process loads the checkpoint that one process wrote after task 2, and goes on as one would."""
    from lifelong import loggers

    def stop_after_task_2(path):
        def log(results):
            if len(results["train_time_s"]) == 2:
                raise KeyboardInterrupt
        return log

    argv = ["run", "--method", "ewc", *COMMON, "--out", str(tmp_path / "ewc")]
    monkeypatch.setattr(loggers, "csv_file", stop_after_task_2)
    assert main(argv) == 130
    assert json.loads((tmp_path / "ewc" / "results.json").read_text())["status"] == "running: 2 of 5 tasks done"
    torchrun(*argv, "--resume")
    out, _ = runs
    assert_same_run(results(tmp_path / "ewc"), results(out / "one" / "class-ewc"))


@pytest.mark.parametrize("processes", [1, 2, 3, 4])
def test_shares_and_parts_cover_each_item_once(monkeypatch, processes):
    for batch in range(1, 12):
        rows, weights = [], []
        for r in range(processes):
            monkeypatch.setattr(distributed, "world_size", lambda: processes)
            monkeypatch.setattr(distributed, "rank", lambda: r)
            mine, weight = distributed.share(batch)
            rows += list(range(batch))[mine]
            weights.append(weight)
        expected = list(range(batch)) * (processes if batch < processes else 1)  # too small: each takes it whole
        assert sorted(rows) == sorted(expected) and sum(weights) == pytest.approx(1)
        for unit in (1, 4):
            parts = []
            for r in range(processes):
                monkeypatch.setattr(distributed, "rank", lambda: r)
                parts.append(distributed.part(batch, unit))
            items = [i for p in parts for i in range(batch)[p]]
            assert items == list(range(batch))
            assert all((p.start or 0) % unit == 0 for p in parts)  # whole units (batches) only
