"""benchmarks/ddp_scaling.py's synthetic CIFAR-100 archive: what the library reads, and the run it launches."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lifelong import data
from lifelong.data import cifar
from lifelong.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ddp_scaling  # noqa: E402


def test_the_synthetic_archive_is_read_by_the_library_and_run_through_its_md5_check(tmp_path, monkeypatch):
    archive = ddp_scaling.write_synthetic_cifar100(tmp_path / "cifar100" / "cifar-100-python.tar.gz",
                                                   n_train=300, n_test=200)
    ds = data.read_cifar100_archive(archive)
    assert ds.n_classes == 100 and ds.x_train.shape == (300, 3, 32, 32) and ds.x_test.shape == (200, 3, 32, 32)
    assert np.bincount(ds.y_train.numpy(), minlength=100).tolist() == [3] * 100  # every fine label equally often
    assert np.bincount(ds.y_test.numpy(), minlength=100).tolist() == [2] * 100
    assert ds.x_train.float().std() > 70  # random pixels, not a constant image
    coarse = ds.extras["coarse_train"].numpy()
    assert all(len(set(coarse[ds.y_train.numpy() == k])) == 1 for k in range(100))  # one coarse label per fine one
    again = ddp_scaling.write_synthetic_cifar100(tmp_path / "again.tar.gz", n_train=300, n_test=200)
    assert (data.read_cifar100_archive(again).x_train == ds.x_train).all()  # seeded
    with pytest.raises(DataError, match="corrupt or truncated"):  # not the official archive's checksum
        data.load_cifar100(tmp_path, download=False)

    out = tmp_path / "run"
    argv = ["run", "--method", "finetune", "--scenario", "split-cifar100", "--setting", "class", "--backbone", "mlp",
            "--hidden", "16", "--n-tasks", "5", "--epochs", "1", "--data-dir", str(tmp_path), "--no-download", "--quiet",
            "--out", str(out)]
    monkeypatch.setattr(cifar, "MD5", cifar.MD5)  # the launcher sets it: the official one again after this test
    assert ddp_scaling.cli_with_md5(data.md5sum(archive), argv) == 0  # the launcher the benchmark's runs go through
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and len(results["train_time_s"]) == 5
    assert results["test_counts"] == [40] * 5
