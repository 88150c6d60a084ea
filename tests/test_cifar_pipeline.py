"""split-cifar100 end to end on a tiny archive in the official format (CIFAR-100 itself is not on this machine)."""

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
