"""split-cifar100 end to end on a tiny archive in the official format (CIFAR-100 itself is not on this machine)."""

import json

import numpy as np
import torch
from test_data import official_members, tiny_cifar, write_cifar_archive

from lifelong.data import read_cifar100_archive
from lifelong.engine import TrainConfig, run
from lifelong.experiment import build_method, build_model
from lifelong.scenarios import split_by_classes


def test_split_cifar100_in_icarl_order_trains_a_resnet_with_augmentation(tmp_path):
    batches, meta = tiny_cifar(n_train=200, n_test=100)
    batches["train"]["fine_labels"] = np.arange(200) % 100  # two training images and one test image per class
    batches["test"]["fine_labels"] = np.arange(100)
    archive = write_cifar_archive(tmp_path / "cifar-100-python.tar.gz", official_members(batches, meta))
    dataset = read_cifar100_archive(archive)

    scenario = split_by_classes(dataset, 10, class_order_seed=1993, name="split-cifar100")
    scenario.augment, scenario.backbone = True, "resnet20"
    assert scenario.tasks[0].classes == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76]  # iCaRL's first 10 classes
    assert [len(t.x_train) for t in scenario] == [20] * 10 and scenario.input_shape == (3, 32, 32)

    torch.manual_seed(0)
    method = build_method("lwf", build_model(scenario), "class")
    config = TrainConfig(epochs=1, batch_size=10, lr=0.01, progress=False)
    results = run(method, scenario, config)
    assert method.model.head.out_features == 100
    assert len(results["accuracy_matrix"]) == 10 and results["status"] == "complete"


def test_the_bic_reproduction_runs_end_to_end_on_an_official_format_archive(tmp_path, monkeypatch, capsys):
    """`lifelong reproduce wu2019-bic-cifar100` with the paper's protocol (5 steps of 20 classes in iCaRL's order,
    ResNet-32, 2,000 exemplars, its validation split) scaled down to one epoch, on a tiny archive whose checksum
    stands in for the official one."""
    from lifelong.cli import main
    from lifelong.data import cifar
    from lifelong.data.files import md5sum

    batches, meta = tiny_cifar(n_train=1200, n_test=200)
    batches["train"]["fine_labels"] = np.arange(1200) % 100  # 12 training images per class: 10 for validation
    batches["test"]["fine_labels"] = np.arange(200) % 100
    archive = write_cifar_archive(tmp_path / "data" / "cifar100" / "cifar-100-python.tar.gz",
                                  official_members(batches, meta))
    monkeypatch.setattr(cifar, "MD5", md5sum(archive))
    out = tmp_path / "bic"
    argv = ["reproduce", "wu2019-bic-cifar100", "--data-dir", str(tmp_path / "data"), "--no-download", "--epochs",
            "1", "--methods", "bic", "--seeds", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| BiC: + bias removal (paper) | 84.00 | 74.69 | 67.93 | 61.25 | 56.69 |" in table
    run = json.loads((out / "wu2019_bic_cifar100_runs" / "bic_0.json").read_text())
    assert run["classes_seen"] == [20, 40, 60, 80, 100] and len(run["accuracy_seen_classes"]) == 5
    assert run["train"]["extra"]["backbone"] == "resnet32" and run["method_options"]["memory"] == 2000
    assert run["method_details"]["validation_per_class"] == 2000 // 100 // 10  # 9:1 of the quota after 100 classes
    assert (out / "wu2019_bic_cifar100.png").stat().st_size > 0
    assert main(argv) == 0  # the same command again: the finished run is kept, nothing is rerun
