"""benchmarks/gpu_check.py's paths that need no GPU: the one line without one, the comparison that decides pass or
fail, and a dry run of both parts on the CPU (devices cpu,cpu) with a tiny configuration."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402

NAN = math.nan
COUNTS = [100, 100, 100]


def matrix(*rows):
    return [list(row) + [NAN] * (3 - len(row)) for row in rows]


R = matrix([0.97], [0.50, 0.96], [0.20, 0.40, 0.95])


def test_identical_matrices_pass():
    result = gpu_check.compare(R, R, COUNTS, 0.03)
    assert result["ok"] and result["max_diff"] == 0 and result["max_diff_images"] == 0


def test_a_cell_within_the_tolerance_passes_and_one_beyond_it_fails():
    within = matrix([0.97], [0.50, 0.96], [0.22, 0.40, 0.95])  # 2 points, 2 of 100 test images
    result = gpu_check.compare(R, within, COUNTS, 0.03)
    assert result["ok"] and result["max_diff"] == pytest.approx(0.02) and result["max_diff_images"] == 2
    assert result["cell"] == [3, 1]

    beyond = matrix([0.97], [0.55, 0.96], [0.22, 0.40, 0.95])  # 5 points after task 2 on task 1
    result = gpu_check.compare(R, beyond, COUNTS, 0.03)
    assert not result["ok"] and result["max_diff"] == pytest.approx(0.05) and result["cell"] == [2, 1]
    assert result["max_diff_images"] == 5 and result["cells_over"] == 1
    assert "after task 2, task 1's accuracy differs by 5.0 points (5 test images) > 3" in result["reason"]
    assert gpu_check.compare(R, beyond, COUNTS, 0.05)["ok"]  # the tolerance is inclusive
    assert not gpu_check.compare(beyond, R, COUNTS, 0.03)["ok"]  # either side


def test_cells_measured_on_one_device_only_or_other_shapes_fail():
    partial = matrix([0.97], [0.50, 0.96], [0.20, NAN, 0.95])
    result = gpu_check.compare(R, partial, COUNTS, 0.03)
    assert not result["ok"] and "cell (3, 2) measured on one device only" in result["reason"]
    assert not gpu_check.compare(R, [row[:2] for row in R[:2]], COUNTS, 0.03)["ok"]
    assert not gpu_check.compare(matrix([NAN]), matrix([NAN]), COUNTS, 0.03)["ok"]  # nothing compared


def test_without_a_gpu_it_says_so_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "results"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert capsys.readouterr().out == gpu_check.NO_GPU_LINE + "\n"
    assert not out.exists()


def fake_run(shift: float, fail_on: int | None = None):
    """one_run's stand-in: the second call of each pair shifts a cell by `shift` (or the call `fail_on` raises)."""
    calls = []

    def run(method, setting, options, device, epochs, seed):
        calls.append(device)
        if fail_on is not None and len(calls) == fail_on:
            raise RuntimeError("an op the device lacks")
        rows = [list(r) for r in R]
        if len(calls) % 2 == 0:
            rows[2][0] += shift
        return {"accuracy_matrix": rows, "test_counts": COUNTS, "final_average_accuracy": sum(rows[2]) / 3}

    return run


@pytest.mark.parametrize("shift, code, status", [(0.02, 0, "pass"), (0.05, 1, "FAIL")])
def test_a_disagreement_fails_the_check(tmp_path, monkeypatch, shift, code, status):
    monkeypatch.setattr(gpu_check, "one_run", fake_run(shift))
    argv = ["--devices", "cpu,cpu", "--methods", "finetune,icarl", "--settings", "class", "--skip-speed",
            "--out", str(tmp_path)]
    assert gpu_check.main(argv) == code
    doc = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    assert [(r["method"], r["status"]) for r in doc["agreement"]["rows"]] == [("finetune", status), ("icarl", status)]
    assert doc["agreement"]["rows"][1]["options"] == {"memory": 200}  # the demo's exemplar budget
    text = (tmp_path / "gpu_check_dry_run.md").read_text()
    assert "DRY RUN" in text
    if status == "FAIL":
        assert "**FAIL**: after task 3, task 1's accuracy differs by 5.0 points" in text
        assert doc["verdict"].startswith("FAILED")
    else:
        assert "| finetune | class | 0.517 | 0.523 | 2.0 | 2 |" in text and doc["verdict"] == "all checks passed"


def test_a_run_that_fails_on_one_device_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "one_run", fake_run(0.0, fail_on=2))
    argv = ["--devices", "cpu,cpu", "--methods", "finetune,lwf", "--settings", "class", "--skip-speed",
            "--out", str(tmp_path)]
    assert gpu_check.main(argv) == 1
    rows = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())["agreement"]["rows"]
    assert [r["status"] for r in rows] == ["error", "pass"]
    assert rows[0]["errors"] == {"cpu #2": "RuntimeError: an op the device lacks"}


def test_a_dry_run_of_both_parts_on_the_cpu(tmp_path):
    """Real runs, tiny: one split-digits run per device, then the speed part on 200 synthetic CIFAR images."""
    argv = ["--devices", "cpu,cpu", "--methods", "finetune", "--settings", "class", "--epochs", "1",
            "--synthetic-images", "200", "--speed-tasks", "2", "--repeats", "1", "--out", str(tmp_path)]
    assert gpu_check.main(argv) == 0
    doc = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    assert doc["dry_run"] and doc["environment"]["gpus"] == []
    [row] = doc["agreement"]["rows"]
    assert row["status"] == "pass" and row["max_diff"] == 0  # the same device twice: the same numbers
    speed = doc["speed"]
    assert speed["status"] == "measured" and speed["timed_tasks"] == 2 and speed["images_per_task"] == [20, 20]
    loops = speed["summary"]["loops"]
    assert set(loops) == {"engine fp32", "bare fp32", "bare bfloat16"}
    # the bare loop is the engine's arithmetic: the same weights, batches and augmentation give the same losses
    assert speed["summary"]["fp32_loss_max_relative_difference"] < 1e-5
    assert loops["bare fp32"]["time_over_bare_fp32"] == 1.0
    text = (tmp_path / "gpu_check_dry_run.md").read_text()
    assert "| lifelong engine | mixed | not measured |" in text and "SYNTHETIC pixels" in text
