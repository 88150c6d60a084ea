import json
import math

import pytest
import torch

import lifelong.compression as compression
from lifelong.cli import main
from lifelong.compression import (CompressionConfig, as_float_images, best_bias_shift, count_errors, make_classifier,
                                  omit_classes, predict_logits, raise_bias, run_compression, train)
from lifelong.data import load_digits, load_mnist
from lifelong.errors import ConfigError, TrainingError
from lifelong.report import plot_temperature
from lifelong.transforms import random_crop


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def small_config(**overrides):
    options = dict(teacher_hidden=(64,), student_hidden=(32,), teacher_epochs=4, student_epochs=4, batch_size=32,
                   lr=0.05, jitter=1, bias_validation=200)
    options.update(overrides)
    return CompressionConfig(**options)


def test_distilled_student_trains_on_the_shared_loss_with_the_value_by_hand(digits, monkeypatch):
    # a student whose logits are all 0 predicts q = 1/K at every T, so the first batch's loss is
    # soft_weight * T^2 * log K + hard_weight * log K, whatever the teacher says: (0.5 * 400 + 0.25) * ln 10
    calls = []

    def spy(*args, **kwargs):
        loss = shared(*args, **kwargs)
        calls.append((args, kwargs, loss.item()))
        return loss

    shared = compression.knowledge_distillation_loss
    monkeypatch.setattr(compression, "knowledge_distillation_loss", spy)
    config = small_config(temperature=20.0, soft_weight=0.5, hard_weight=0.25, student_epochs=1)
    x, y = as_float_images(digits.x_train), digits.y_train
    student = make_classifier(64, (32,), 10)
    torch.nn.init.zeros_(student.classifier.weight)
    torch.nn.init.zeros_(student.classifier.bias)
    teacher_logits = torch.randn(len(x), 10) * 5
    train(student, x, y, 1, config, torch.Generator().manual_seed(0), teacher_logits)
    assert len(calls) == math.ceil(len(x) / 32)  # every batch
    (student_logits, batch_teacher, batch_y, T, soft_w, hard_w), kwargs, first = calls[0]
    assert (T, soft_w, hard_w, kwargs) == (20.0, 0.5, 0.25, {"t2_scaling": True})
    assert first == pytest.approx((0.5 * 400 + 0.25) * math.log(10), rel=1e-5)
    # and the batch's teacher logits are the rows of the samples in the batch (their labels match)
    rows = [int((teacher_logits == row).all(1).nonzero()) for row in batch_teacher]
    assert torch.equal(y[rows], batch_y)


def test_plain_student_uses_hard_targets_only(digits, monkeypatch):
    monkeypatch.setattr(compression, "knowledge_distillation_loss", lambda *a, **k: pytest.fail("distilled"))
    x, y = as_float_images(digits.x_train[:64]), digits.y_train[:64]
    train(make_classifier(64, (8,), 10), x, y, 1, small_config(), torch.Generator().manual_seed(0))


def test_omitting_a_class_removes_all_of_it_and_keeps_rows_together():
    x = torch.arange(20.0).reshape(10, 2)
    y = torch.tensor([3, 0, 3, 1, 2, 3, 9, 3, 4, 3])
    logits = torch.arange(10.0)[:, None].repeat(1, 10)
    kept_x, kept_y, kept_logits = omit_classes(x, y, [3], logits)
    assert torch.equal(kept_y, torch.tensor([0, 1, 2, 9, 4]))
    assert torch.equal(kept_x[:, 0] / 2, kept_logits[:, 0])  # row i of x and of the logits stay together
    assert len(omit_classes(x, y, [3, 0, 1])[1]) == 3


def test_raising_a_bias_moves_only_that_class_logit_by_the_shift():
    torch.manual_seed(0)
    model = make_classifier(16, (8,), 5)
    x = torch.randn(7, 16)
    before = predict_logits(model, x)
    raise_bias(model, 2, 3.5)
    after = predict_logits(model, x)
    assert torch.allclose(after[:, 2] - before[:, 2], torch.full((7,), 3.5), atol=1e-5)
    assert torch.equal(after[:, [0, 1, 3, 4]], before[:, [0, 1, 3, 4]])


def test_best_bias_shift_and_error_counts_by_hand():
    # class 1's logit is 2 below the winner on its two samples, and 3 below on the class-0 sample
    logits = torch.tensor([[5.0, 3.0], [4.0, 2.0], [6.0, 3.0]])
    y = torch.tensor([1, 1, 0])
    assert count_errors(logits, y, 1) == (2, 2)
    assert best_bias_shift(logits, y, 1) == pytest.approx(2.1)  # > 2 fixes both, < 3 keeps the 0 right
    shifted = logits.clone()
    shifted[:, 1] += 2.1
    assert count_errors(shifted, y, 1) == (0, 0)


def test_jitter_is_a_translation_by_at_most_two_pixels():
    x = torch.rand(50, 1, 12, 12)
    x[:, :, :2], x[:, :, -2:], x[:, :, :, :2], x[:, :, :, -2:] = 0, 0, 0, 0  # content inside: shifts lose nothing
    moved = random_crop(x, 2, torch.Generator().manual_seed(0))
    shifts = set()
    for original, image in zip(x, moved):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(torch.roll(original, (dy, dx), (1, 2)), image)]
        assert match
        shifts.add(match[0])
    assert len(shifts) > 10  # the shifts vary from image to image


def test_pipeline_on_digits_and_the_omitted_class(digits):
    results = run_compression(digits, small_config(teacher_hidden=(128,), teacher_epochs=6), log=None)
    n_test = len(digits.y_test)
    for net in ("teacher", "student", "distilled"):
        assert 0 <= results[net]["test_errors"] < 0.2 * n_test  # all of them learn the digits (chance: 90% errors)
    om = results["omitted"]
    # the transfer set: the training set less the 200 held out, less every 3 that was not held out
    threes_in_transfer_pool = int((digits.y_train == 3).sum()) - om["held_out_of_class"]
    assert om["held_out"] == 200 and om["held_out_of_class"] > 0
    assert om["transfer_set_size"] == len(digits.y_train) - 200 - threes_in_transfer_pool
    assert om["test_count_of_class"] == int((digits.y_test == 3).sum())
    # raising class 3's bias can only turn predictions into 3s: errors on 3s never go up
    assert om["fixed_shift"]["errors_on_class"] <= om["as_trained"]["errors_on_class"]
    assert om["validated_shift"]["errors_on_class"] <= om["as_trained"]["errors_on_class"]
    json.dumps(results)  # the results are plain JSON


def test_the_omitted_transfer_set_has_no_example_of_the_class(digits, monkeypatch):
    seen = []
    real_train = compression.train
    monkeypatch.setattr(compression, "train", lambda model, x, y, *a, **k: seen.append(y.clone()) or
                        real_train(model, x, y, *a, **k))
    run_compression(digits, small_config(teacher_epochs=1, student_epochs=1, omit_class=3), log=None)
    # teacher, plain and distilled students see every class; the fourth net sees no 3 and every other digit
    assert [sorted(set(y.tolist())) for y in seen] == [list(range(10))] * 3 + [[0, 1, 2, 4, 5, 6, 7, 8, 9]]


def test_soft_targets_alone_teach_the_student(digits):
    # Hinton's point: the soft targets carry the teacher's knowledge; a student with no hard-target term learns
    config = small_config(hard_weight=0.0)
    x, y = as_float_images(digits.x_train), digits.y_train
    torch.manual_seed(0)
    teacher = make_classifier(64, (64,), 10)
    train(teacher, x, y, 10, config, torch.Generator().manual_seed(0))
    student = make_classifier(64, (32,), 10)
    train(student, x, torch.zeros_like(y), 10, config, torch.Generator().manual_seed(1), predict_logits(teacher, x))
    x_test = as_float_images(digits.x_test)
    teacher_errors = count_errors(predict_logits(teacher, x_test), digits.y_test)[0]
    student_errors = count_errors(predict_logits(student, x_test), digits.y_test)[0]
    assert student_errors <= teacher_errors + 15  # labels were all 0: what it knows came from the teacher


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "0"], "temperature must be a positive number"),
    (["--temperature", "-2"], "temperature must be a positive number"),
    (["--soft-weight", "-1"], "soft_weight must be a finite number >= 0"),
    (["--hard-weight", "-0.5"], "hard_weight must be a finite number >= 0"),
    (["--epochs", "0"], "teacher_epochs must be an integer >= 1"),
    (["--omit-class", "three"], "--omit-class takes a class index"),
    (["--omit-class", "12", "--dataset", "digits", "--epochs", "1"], "omit_class must be a class index in 0..9"),
    (["--plot-temperature", "3,x"], "--plot-temperature takes comma-separated logits"),
    (["--plot-temperature", "3,10", "--temperature", "0"], "temperature must be a positive number"),
    (["--data-dir", "/nonexistent/data", "--no-download"], "/nonexistent/data/mnist"),
])
def test_bad_input_is_one_clear_line_and_exit_code_2(capsys, tmp_path, argv, message):
    code = main(["distill", "--quiet", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifelong: error:") and message in lines[0]


def test_cli_distills_on_digits_and_plots_the_temperature(capsys, tmp_path):
    code = main(["distill", "--dataset", "digits", "--epochs", "2", "--student-epochs", "2", "--omit-class", "none",
                 "--quiet", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "distilled at T = 20" in out and "paper" not in out  # paper numbers only for MNIST
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["omit_class"] is None and "omitted" not in results
    assert main(["distill", "--plot-temperature", "3,10", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "temperature.png").stat().st_size > 10_000


def test_temperature_plot_needs_two_finite_logits(tmp_path):
    with pytest.raises(ConfigError, match="at least 2 finite logits"):
        plot_temperature([4.0], tmp_path / "t.png")
    with pytest.raises(ConfigError, match="temperature"):
        plot_temperature([3.0, 10.0], tmp_path / "t.png", temperatures=[1.0, 0.0])


@pytest.mark.slow
def test_distillation_on_an_mnist_subset(shared_data):
    mnist = load_mnist(shared_data, download=False)
    mnist.x_train, mnist.y_train = mnist.x_train[:6000], mnist.y_train[:6000]
    mnist.x_test, mnist.y_test = mnist.x_test[:2000], mnist.y_test[:2000]
    config = CompressionConfig(teacher_hidden=(256, 256), student_hidden=(64, 64), teacher_epochs=4,
                               student_epochs=3, bias_validation=500)
    results = run_compression(mnist, config, log=None)
    for net in ("teacher", "student", "distilled"):
        assert results[net]["test_errors"] < 0.2 * 2000  # a few hundred SGD steps: learning, far from converged
    om = results["omitted"]
    assert om["transfer_set_size"] == 5500 - int((mnist.y_train == 3).sum()) + om["held_out_of_class"]
    assert om["fixed_shift"]["errors_on_class"] <= om["as_trained"]["errors_on_class"]


def test_a_diverging_loss_is_a_training_error(digits):
    x, y = as_float_images(digits.x_train[:64]), digits.y_train[:64]
    with pytest.raises(TrainingError, match="lower the learning rate"):
        train(make_classifier(64, (8,), 10), x * float("inf"), y, 1, small_config(), torch.Generator())
