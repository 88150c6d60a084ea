"""Grids of runs in parallel (`lifelong reproduce --workers N`, `--ray`): the same per-run files and table as one
run after another, and an interrupted grid continued."""

import json
import os
import subprocess
import sys

import pytest
import torch

from lifelong.cli import main
from lifelong.grid import run_grid
from lifelong.reproduce_steps import PROTOCOLS, REPRODUCTIONS, reproduce_steps, stem

NAME = "tiny-digits"  # a grid of 2 rows x 2 seeds on split-digits, 1 epoch per step: seconds per run
TINY = dict(rows={"finetune": ("fine-tuning", "finetune", {}),
                  "replay": ("replay, 100 samples", "replay", {"memory": 100})},
            scenario="split-digits", train=dict(epochs=1, lr=0.01, optimizer="adam", batch_size=64))
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def tiny():
    """The tiny protocol registered for this module's tests (the jobs carry it to the workers)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROTOCOLS, NAME, TINY)
        patch.setitem(REPRODUCTIONS, NAME, "a tiny grid for the tests")
        yield


@pytest.fixture(scope="module")
def serial(tiny, tmp_path_factory):
    """The grid made one run after another in this process, on one thread."""
    out = tmp_path_factory.mktemp("serial")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reproduce_steps(NAME, None, SEEDS, out)
    finally:
        torch.set_num_threads(threads)
    return out


def saved(out) -> dict:
    """Every per-run file's content without its timings, and the table without its line of times."""
    runs = {}
    for path in sorted((out / f"{stem(NAME)}_runs").glob("*.json")):
        run = json.loads(path.read_text())
        runs[path.name] = {k: v for k, v in run.items() if k not in ("wall_time_s", "train_time_s")}
    table = [line for line in (out / f"{stem(NAME)}.md").read_text().splitlines() if " s each on average" not in line]
    return {"runs": runs, "table": table}


@pytest.mark.exact
def test_workers_give_the_same_runs_and_table_as_one_after_another(serial, tmp_path):
    reproduce_steps(NAME, None, SEEDS, tmp_path, workers=2, threads=1)
    ours, reference = saved(tmp_path), saved(serial)
    assert sorted(ours["runs"]) == ["finetune_0.json", "finetune_1.json", "replay_0.json", "replay_1.json"]
    assert ours == reference  # the same accuracies to the last digit, the same table
    assert all(run["threads"] == 1 for run in ours["runs"].values())
    assert any("| replay, 100 samples (ours, n=2) |" in line for line in ours["table"])


@pytest.mark.exact
def test_an_interrupted_grid_continues_with_workers(serial, tmp_path):
    def stop(line):  # Ctrl-C just after the first run's file is written
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reproduce_steps(NAME, None, SEEDS, tmp_path, workers=2, threads=1, log=stop)
    kept = list((tmp_path / f"{stem(NAME)}_runs").glob("*.json"))
    assert len(kept) == 1  # the runs under way when it stopped are not saved: they are made again
    before = kept[0].stat().st_mtime_ns
    lines = []
    reproduce_steps(NAME, None, SEEDS, tmp_path, workers=2, threads=1, log=lines.append)
    assert len(lines) == 3 and all(line.startswith(("[1/3]", "[2/3]", "[3/3]")) for line in lines)
    assert kept[0].stat().st_mtime_ns == before  # the finished run was kept, not made again
    assert saved(tmp_path) == saved(serial)


def worker_pid_and_threads(job):  # run in a worker: which process, with how many torch threads, on which cores
    return os.getpid(), torch.get_num_threads(), tuple(sorted(os.sched_getaffinity(0)))


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="cores are pinned where Linux lets us")
def test_each_worker_is_its_own_process_with_its_share_of_the_cores():
    results = []
    run_grid(list(range(4)), worker_pid_and_threads, lambda job, result: results.append((job, *result)), workers=2)
    assert sorted(job for job, *_ in results) == [0, 1, 2, 3]
    pids = {pid for _, pid, _, _ in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // 2)
    assert {threads for _, _, threads, _ in results} == {share}
    by_worker = {pid: pinned for _, pid, _, pinned in results}
    if len(cores) >= 2:  # each worker on cores of its own, as many as its threads
        assert all(len(pinned) == share for pinned in by_worker.values())
        assert len(set().union(*by_worker.values())) == share * len(by_worker)
        assert set().union(*by_worker.values()) <= set(cores)


def test_ray_absent_is_one_clear_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    out = tmp_path / "out"
    assert main(["reproduce", "wu2019-bic-split-mnist", "--ray", "--out", str(out), "--no-download",
                 "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "pip install 'lifelong[ray]'" in error
    assert not out.exists()  # nothing ran, nothing was written
    # the library itself never imports Ray
    code = "import sys, lifelong.cli, lifelong.grid, lifelong.reproduce, lifelong.reproduce_steps; " \
           "assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_ray_tasks_give_the_same_runs_and_table(serial, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'lifelong[ray]', or '.[test]')")
    reproduce_steps(NAME, None, SEEDS, tmp_path, ray_address="local", threads=1)
    assert saved(tmp_path) == saved(serial)
