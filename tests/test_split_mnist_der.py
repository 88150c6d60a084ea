"""`split-mnist-der`: Buzzega et al. 2020's S-MNIST (Mammoth's seq-mnist): 28x28 in [0, 1], not padded, not
normalised, 5 tasks in the natural class order; and split_by_classes' `normalize` option under it."""

import torch

from lifelong.benchmarks import make_scenario
from lifelong.data import load_dataset
from lifelong.data.dataset import Dataset
from lifelong.experiment import train_config
from lifelong.scenarios import split_by_classes


def _tiny() -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.arange(40) % 4
    return Dataset("tiny", x[:32], y[:32], x[32:], y[32:], [str(c) for c in range(4)])


def test_normalize_false_leaves_the_pixels_in_0_1():
    data = _tiny()
    raw = split_by_classes(data, 2, normalize=False)
    first = data.y_train < 2  # the natural order: task 0 holds classes 0 and 1
    assert torch.allclose(raw.tasks[0].x_train, data.x_train[first].float() / 255)
    assert raw.input_preparation["mean"] == [0.0] and raw.input_preparation["std"] == [1.0]
    assert raw.config["normalize"] is False
    # the default normalises with the training statistics (mean 0, std 1 over the training images)
    normed = split_by_classes(data, 2)
    x = torch.cat([t.x_train for t in normed.tasks])
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-3
    assert "normalize" not in normed.config  # results of runs made before the option read the same


def test_training_defaults_are_mammoths_sgd_on_seq_mnist():
    config = train_config("split-mnist-der")
    assert (config.epochs, config.batch_size, config.lr, config.optimizer, config.momentum) == \
        (1, 10, 0.03, "sgd", 0.0)


def test_split_mnist_der_on_mnist(shared_data):
    s = make_scenario("split-mnist-der", data_dir=shared_data, download=False)
    assert len(s) == 5 and s.input_shape == (1, 28, 28)
    assert [t.classes for t in s.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    mnist = load_dataset("mnist", data_dir=shared_data, download=False)
    keep = mnist.y_test >= 8
    x = s.tasks[4].x_test
    assert x.shape == (int(keep.sum()), 1, 28, 28) and x.min() == 0 and x.max() == 1
    assert torch.allclose(x, mnist.x_test[keep].float() / 255)  # ToTensor's pixels, as Mammoth's seq-mnist
    assert s.tasks[4].y_test.tolist() == (mnist.y_test[keep] - 8).tolist()  # labels within the task
    # split-mnist is the same images padded to 32x32 and normalised
    padded = make_scenario("split-mnist", data_dir=shared_data, download=False)
    mean, std = padded.input_preparation["mean"][0], padded.input_preparation["std"][0]
    assert torch.allclose(padded.tasks[4].x_test[:, :, 2:30, 2:30] * std + mean, x, atol=1e-5)
