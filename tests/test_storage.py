"""Files written safely: atomic replace (a full disk, a planted link), one writer at a time (two real processes),
leftovers of killed writers, and digests that catch changed bytes."""

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lifelong import Learner, storage
from lifelong.cli import main
from lifelong.engine import TrainConfig
from lifelong.errors import ConfigError, DataError
from lifelong.experiment import run_experiment
from lifelong.loggers import csv_file
from lifelong.report import file_names
from lifelong.results import write_json
from lifelong.benchmarks import make_scenario

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
FAST = dict(epochs=1, batch_size=32, lr=0.005, optimizer="adam", progress=False)
SMALL_RUN = ["--method", "finetune", "--setting", "class", "--epochs", "1", "--hidden", "16", "--quiet"]


@pytest.fixture(scope="module")
def two_tasks():
    scenario = make_scenario("split-digits")
    scenario.tasks = scenario.tasks[:2]
    return scenario


def small_learner(scenario) -> Learner:
    task = scenario.tasks[0]
    learner = Learner("finetune", hidden=(16,), **FAST)
    return learner.learn(task.x_train, np.asarray(task.classes)[task.y_train.numpy()])


def one_line(capsys, argv) -> str:
    """The error of a command that fails: one line, its last (after what a run says it starts), exit code 2."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("lifelong: error:") and "Traceback" not in "\n".join(err), err
    assert sum(line.startswith("lifelong: error:") for line in err) == 1
    return err[-1]


def flip_tensor_bytes(path: Path) -> None:
    """Invert 4 bytes in the middle of the largest tensor's data in a torch.save zip file (the data are stored
    uncompressed, after a local header of 30 bytes, the name and an extra field)."""
    info = max((i for i in zipfile.ZipFile(path).infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    middle = info.header_offset + 30 + name_length + extra_length + info.file_size // 2
    raw[middle:middle + 4] = bytes(b ^ 0xFF for b in raw[middle:middle + 4])
    path.write_bytes(raw)


# ---------------------------------------------------------------------- the atomic writer
def test_a_full_disk_is_one_line_naming_the_path_and_the_last_file_is_kept(tmp_path, monkeypatch, two_tasks):
    results = tmp_path / "results.json"
    write_json(results, {"tasks": 1})
    learner = small_learner(two_tasks)
    learner.save(tmp_path / "model.pt")
    saved = (tmp_path / "model.pt").read_bytes()

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage, "_write_file", full)
    with pytest.raises(DataError, match=f"^no space left on device writing {results}"):
        write_json(results, {"tasks": 2})
    with pytest.raises(DataError, match="no space left on device writing .*model.pt"):
        learner.save(tmp_path / "model.pt")
    assert json.loads(results.read_text()) == {"tasks": 1}  # the last complete files, as they were
    assert (tmp_path / "model.pt").read_bytes() == saved
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_link_planted_where_the_report_writes_is_replaced_not_followed(tmp_path, capsys):
    from test_report_html import fake_run

    (tmp_path / "runs").mkdir()
    write_json(tmp_path / "runs" / "results.json", fake_run("finetune"))
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("report.html", "report.png"):
        (out / name).symlink_to(victim)
    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert victim.read_text() == "precious"
    for name in ("report.html", "report.png"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 1000
    (out / "metrics.csv").symlink_to(victim)  # a run's table of each task, rewritten after every task
    csv_file(out / "metrics.csv")({**fake_run("finetune"), "accuracy_seen_classes": [0.9] * 5, "forgetting": [0.1] * 4,
                                   "train_time_s": [1.0] * 5, "eval_time_s": [0.1] * 5})
    assert victim.read_text() == "precious" and (out / "metrics.csv").read_text().count("\n") == 6


def test_a_scenario_name_read_from_a_results_file_never_becomes_a_path(tmp_path, capsys):
    from test_report_html import fake_run

    evil = f"/../../../..{tmp_path}/evil"  # where the report would land if the name were a path
    for folder, scenario in (("a", evil), ("b", "split-digits")):
        write_json(tmp_path / "runs" / folder / "results.json", {**fake_run("finetune"), "scenario": scenario})
    out = tmp_path / "runs" / "out"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert not (tmp_path / "evil.png").exists()
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if not p.is_dir()}
    reports = written - {Path("runs/a/results.json"), Path("runs/b/results.json")}
    assert len(reports) == 3 and all(p.parent == Path("runs/out") for p in reports)  # only inside --out
    assert Path("runs/out/report-split-digits.png") in reports
    assert list(file_names(["a/b", "a b", "..", ".hidden", "x" * 200]).values()) == \
        ["a-b", "a-b-2", "scenario", "hidden", "x" * 80]


# ---------------------------------------------------------------------- one writer at a time, two real processes
HOLD = textwrap.dedent("""
    import sys, time
    from lifelong.storage import lock_beside, lock_folder
    kind, path = sys.argv[1:]
    with (lock_folder if kind == "folder" else lock_beside)(path):
        print("held", flush=True)
        time.sleep(300)
""")


def hold(kind: str, path) -> subprocess.Popen:
    """Another process holding the lock of `path` until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(path)], stdout=subprocess.PIPE, text=True,
                              env=ENV)
    assert holder.stdout.readline().strip() == "held"
    return holder


def kill(holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGKILL)  # kill -9: no clean-up of its own
    holder.wait()


def test_a_second_run_into_a_locked_out_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(
        tmp_path, capsys, two_tasks):
    out = tmp_path / "run"
    holder = hold("folder", out)
    try:
        for extra in ([], ["--seeds", "2"], ["--resume"]):
            line = one_line(capsys, ["run", *SMALL_RUN, "--out", str(out), *extra])
            assert f"{out} is in use by another lifelong process (pid {holder.pid})" in line, extra
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):  # the engine, as scripts call it
            run_experiment("finetune", two_tasks, "class", hidden=(16,), config=TrainConfig(**FAST), out_dir=out)
        assert sorted(p.name for p in out.rglob("*")) == [".lock"]  # nothing trained, nothing written
    finally:
        kill(holder)
    assert (out / ".lock").exists()  # a killed holder leaves its file, but the lock went with it
    run_experiment("finetune", two_tasks, "class", hidden=(16,), config=TrainConfig(**FAST), out_dir=out)
    assert (out / "results.json").exists() and not (out / ".lock").exists()  # a writer done removes its lock file


def test_a_second_learn_of_one_learner_file_is_refused_before_learning(tmp_path, capsys, monkeypatch, two_tasks):
    task = two_tasks.tasks[1]
    np.savez(tmp_path / "task.npz", x=task.x_train.numpy(), y=np.asarray(task.classes)[task.y_train.numpy()])
    model = tmp_path / "model.pt"
    small_learner(two_tasks).save(model)
    before = model.read_bytes()
    another = small_learner(two_tasks)
    learned = []
    monkeypatch.setattr(Learner, "learn", lambda self, *a: learned.append(a) or self)
    holder = hold("file", model)
    try:
        line = one_line(capsys, ["learn", str(model), "--data", str(tmp_path / "task.npz"), "--quiet"])
        assert f"{model} is being written by another lifelong process (pid {holder.pid})" in line
        assert not learned  # refused from the start: it never learned what it could not save
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
            another.save(model)
    finally:
        kill(holder)
    assert model.read_bytes() == before
    monkeypatch.undo()
    assert main(["learn", str(model), "--data", str(tmp_path / "task.npz"), "--quiet"]) == 0
    assert len(Learner.load(model).classes_) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "task.npz"]  # no lock file left behind


def test_a_lock_file_removed_just_as_it_is_taken_is_taken_anew(tmp_path, monkeypatch):
    """A holder done removes its lock file; a process that had opened it just before gets a lock on a file no one
    else opens, and must take the new one, or two writers would each hold a lock."""
    model = tmp_path / "model.pt"
    flock = storage.fcntl.flock

    def removed_first(fd, operation):
        monkeypatch.undo()
        (tmp_path / ".model.pt.lock").unlink()  # as the holder, done, removes it between our open and our flock
        return flock(fd, operation)

    monkeypatch.setattr(storage.fcntl, "flock", removed_first)
    with storage.lock_beside(model):
        second = subprocess.run([sys.executable, "-c", "import sys; from lifelong.storage import lock_beside\n"
                                 "with lock_beside(sys.argv[1]): pass", str(model)], capture_output=True, text=True,
                                env=ENV)
    assert second.returncode != 0 and f"being written by another lifelong process (pid {os.getpid()})" in second.stderr


# ---------------------------------------------------------------------- leftovers and integrity
KILLED_MID_WRITE = textwrap.dedent("""
    import os, signal, sys, torch
    from lifelong import storage
    def half_then_killed(fd, data):
        os.write(fd, bytes(data)[:len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    storage._write_file = half_then_killed
    storage.save_checkpoint(sys.argv[1], {"weights": torch.zeros(10_000)})
""")


def test_a_checkpoint_write_killed_midway_leaves_a_file_that_the_next_resume_removes(tmp_path, two_tasks):
    config = TrainConfig(**FAST)
    reference = run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path)
    killed = subprocess.Popen([sys.executable, "-c", KILLED_MID_WRITE, str(tmp_path / "checkpoint.pt")], env=ENV)
    assert killed.wait() == -signal.SIGKILL
    leftovers = list(tmp_path.glob(f".checkpoint.pt.{killed.pid}.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    resumed = run_experiment("finetune", two_tasks, "class", hidden=(16,), config=config, out_dir=tmp_path,
                             resume=True)
    assert not list(tmp_path.glob(".*.tmp"))
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]  # the last checkpoint, kept whole


def test_a_learner_whose_bytes_changed_is_refused_in_one_line(tmp_path, capsys, two_tasks):
    model = tmp_path / "model.pt"
    small_learner(two_tasks).save(model)
    flip_tensor_bytes(model)
    torch.load(model, weights_only=True)  # the zip reader does not notice: without the digest it would load
    with pytest.raises(DataError, match="model.pt is damaged: its contents do not match the SHA-256 digest"):
        Learner.load(model)
    np.savez(tmp_path / "x.npz", x=two_tasks.tasks[0].x_test.numpy())
    assert "is damaged" in one_line(capsys, ["predict", str(model), "--data", str(tmp_path / "x.npz")])


def test_a_checkpoint_whose_bytes_changed_is_refused_by_resume_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *SMALL_RUN, "--out", str(out)]) == 0
    flip_tensor_bytes(out / "checkpoint.pt")
    line = one_line(capsys, ["run", *SMALL_RUN, "--out", str(out), "--resume"])
    assert "checkpoint.pt is damaged: its contents do not match the SHA-256 digest" in line


def test_a_learner_saved_before_digests_still_loads(tmp_path, two_tasks):
    learner = small_learner(two_tasks)
    learner.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)["payload"]
    torch.save(payload, tmp_path / "old.pt")  # the file as lifelong wrote it before digests
    x = two_tasks.tasks[0].x_test
    assert (Learner.load(tmp_path / "old.pt").predict(x) == learner.predict(x)).all()


# ---------------------------------------------------------------------- predict --out
@pytest.mark.parametrize("out, message", [
    ("model.pt", "is LEARNER, an input of this command"),
    ("link-to-model", "is LEARNER, an input of this command"),
    ("x.npz", "is --data, an input of this command"),
    (".", "is a folder"),
    ("missing/predictions.csv", "its folder"),
])
def test_predict_out_that_is_an_input_a_folder_or_nowhere_is_refused_before_any_work(
        tmp_path, capsys, monkeypatch, two_tasks, out, message):
    small_learner(two_tasks).save(tmp_path / "model.pt")
    (tmp_path / "link-to-model").symlink_to(tmp_path / "model.pt")
    np.savez(tmp_path / "x.npz", x=two_tasks.tasks[0].x_test.numpy())
    before = {p: p.read_bytes() for p in (tmp_path / "model.pt", tmp_path / "x.npz")}
    loaded = []
    load = Learner.load
    monkeypatch.setattr(Learner, "load", classmethod(lambda cls, *a, **k: loaded.append(a) or load(*a, **k)))
    line = one_line(capsys, ["predict", str(tmp_path / "model.pt"), "--data", str(tmp_path / "x.npz"),
                             "--out", str(tmp_path / out)])
    assert message in line and not loaded
    assert {p: p.read_bytes() for p in before} == before


def test_predict_writes_its_csv_whole(tmp_path, capsys, two_tasks):
    small_learner(two_tasks).save(tmp_path / "model.pt")
    np.savez(tmp_path / "x.npz", x=two_tasks.tasks[0].x_test.numpy())
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "predictions.csv").symlink_to(victim)
    assert main(["predict", str(tmp_path / "model.pt"), "--data", str(tmp_path / "x.npz"),
                 "--out", str(tmp_path / "predictions.csv")]) == 0
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0] == "index,prediction" and len(rows) == 1 + len(two_tasks.tasks[0].x_test)
    assert victim.read_text() == "precious"
