"""Every bad input a user can hand us is one line and exit code 2 on the command line, a LifelongError in Python:
checkpoints and learner files that load but are not what they claim, decompression bombs, sizes and integers past
what torch or the machine holds, data of the wrong kind, damaged results. Each is refused before the work it would
spoil starts, and says what happened."""

import json
import os
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from lifelong import Learner
from lifelong.cli import main
from lifelong.errors import ConfigError, DataError, TrainingError
from lifelong.experiment import run_experiment
from lifelong.scenarios import from_data
from lifelong.storage import load_checkpoint, save_checkpoint

FAST = dict(epochs=1, progress=False)


def fails(capsys, *argv) -> list[str]:
    """What a command that must fail with exit code 2 printed on stderr; its last line is the error, in one line
    (argparse's own checks exit)."""
    try:
        code = main(list(argv))
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("lifelong: error:"), err
    return lines


def one_line(capsys, *argv) -> str:
    return fails(capsys, *argv)[-1]


def small_data(n=40, features=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), np.arange(n) % classes


@pytest.fixture
def learner_file(tmp_path):
    x, y = small_data()
    Learner("finetune", hidden=(8,), **FAST).learn(x, y).save(tmp_path / "learner.pt")
    return tmp_path / "learner.pt"


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of about a hundred bytes whose header declares width x height one-bit pixels (a decompression bomb:
    its pixels, never decoded here, would take gigabytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image_folder(root, per_class=(3, 3), side=6):
    from PIL import Image

    for k, n in enumerate(per_class):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((side, side), 40 * k + i, np.uint8)).save(root / f"class{k}" / f"{i}.png")
    return root


# ---------------------------------------------------------------------- files that load but are not what they claim
@pytest.mark.parametrize("content", ["learner", {}, [1, 2], 7])
def test_resume_from_a_loadable_file_that_is_no_checkpoint_is_one_line(tmp_path, capsys, learner_file, content):
    out = tmp_path / "run"
    out.mkdir()
    if content == "learner":
        (out / "checkpoint.pt").write_bytes(learner_file.read_bytes())
    else:
        torch.save(content, out / "checkpoint.pt")
    line = one_line(capsys, "run", "--method", "finetune", "--setting", "class", "--hidden", "8", "--quiet",
                    "--out", str(out), "--resume")
    assert "checkpoint.pt" in line
    assert ("is a saved learner" if content == "learner" else "is not a checkpoint of lifelong run") in line


def saved(path) -> dict:
    return load_checkpoint(path)  # the contents under the file's digest


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("rng"), "it lacks rng"),
    (lambda s: s.update(extra=1), "unknown entries extra"),
    (lambda s: s["spec"].update(hidden=[10**8]), r"hidden sizes \[100000000\]"),
    (lambda s: s["spec"].update(hidden=[10**7, 10**7]), r"an MLP of 100,000,080,000,000 parameters"),
    (lambda s: s["spec"].update(input_shape=[1, 50_000, 50_000]), "input shape"),
    (lambda s: s["spec"].update(backbone="resnet20", input_shape=[1, 50_000, 50_000]), "input shape"),
    (lambda s: s["method"].update(head_sizes=[10**9]), "does not match its tasks"),
    (lambda s: s["spec"].update(method="magic"), "unknown method 'magic'"),
    (lambda s: s.update(version=torch.zeros(3)), "format version tensor"),
    (lambda s: s["spec"]["options"].update(memory=torch.zeros(9, 9)), "method options .* are not names with numbers"),
    (lambda s: s.update(optimizer={"groups": [[torch.zeros(2)]], "state": {}}), "its optimizer's state"),
])
def test_a_learner_file_of_other_keys_or_absurd_shapes_is_refused_before_anything_is_built(
        learner_file, monkeypatch, change, message):
    state = saved(learner_file)
    change(state)
    save_checkpoint(learner_file, state)  # its digest valid: what is checked next is the contents
    monkeypatch.setattr(Learner, "_rebuild", lambda *a, **k: pytest.fail("built from an unchecked file"))
    with pytest.raises(DataError, match=message):
        Learner.load(learner_file)


def test_a_learner_file_whose_state_loads_but_cannot_predict_is_refused_at_load(learner_file):
    state = saved(learner_file)
    state["spec"]["inputs"] = {"pad_to": None, "mean": "abc", "std": [1.0]}  # how its inputs are prepared
    save_checkpoint(learner_file, state)
    with pytest.raises(DataError, match="its contents do not fit together"):
        Learner.load(learner_file)


class Features(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.layer = nn.Linear(6, width)
        self.out_features = width

    def forward(self, x):
        return self.layer(x.flatten(1))


@pytest.mark.parametrize("method, options", [("finetune", {}), ("bic", {"memory": 40}), ("ewc", {})])
def test_load_with_a_model_of_another_shape_names_what_differs(tmp_path, method, options):
    x, y = small_data(n=120)
    learner = Learner(method, Features(8), **options, **FAST)
    learner.learn(x[y < 2], y[y < 2]).learn(x[y >= 2], y[y >= 2])
    learner.save(tmp_path / "mine.pt")
    with pytest.raises(ConfigError, match=r"layer.weight is \(16, 6\) in the model, \(8, 6\) in the file"):
        Learner.load(tmp_path / "mine.pt", model=Features(16))
    again = Learner.load(tmp_path / "mine.pt", model=Features(8))
    assert (again.predict(x) == learner.predict(x)).all()


def test_a_model_for_a_learner_on_a_library_backbone_is_refused_not_ignored(learner_file):
    with pytest.raises(ConfigError, match="library's mlp backbone.*without model="):
        Learner.load(learner_file, model=Features(8))


# ---------------------------------------------------------------------- images
def bomb_folder(tmp_path, width=50_000, height=50_000):
    folder = image_folder(tmp_path / "photos")
    (folder / "class1" / "bomb.png").write_bytes(png_declaring(width, height))
    return folder


@pytest.mark.parametrize("command", [["run", "--method", "finetune", "--n-tasks", "1"], ["learn", "new.pt"],
                                     ["predict", "LEARNER"]])
def test_a_decompression_bomb_in_data_is_one_line_naming_the_file(tmp_path, capsys, learner_file, command):
    folder = bomb_folder(tmp_path)
    argv = [str(learner_file) if a == "LEARNER" else str(tmp_path / a) if a == "new.pt" else a for a in command]
    line = one_line(capsys, *argv, "--data", str(folder), "--quiet" if command[0] != "predict" else "--size=4")
    assert "bomb.png declares over" in line and "decompression bomb" in line


def test_an_image_past_the_bound_is_refused_from_its_header_without_pillows_warning(tmp_path):
    from lifelong.data.user import read_image, read_image_folder

    folder = bomb_folder(tmp_path, 10_000, 10_000)  # 10^8 pixels: Pillow warns, and would decode it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is a second line on the command line
        with pytest.raises(DataError, match="declares 10000 x 10000 pixels"):
            read_image_folder(folder)
        with pytest.raises(DataError, match="declares 10000 x 10000 pixels"):
            read_image(folder / "class1" / "bomb.png", "L")


@pytest.mark.parametrize("command", ["run", "learn", "predict"])
@pytest.mark.parametrize("size", ["0", "-3", "4096"])
def test_a_size_that_is_no_side_is_one_line_before_anything_is_read(tmp_path, capsys, learner_file, command, size):
    folder = bomb_folder(tmp_path)  # read, it would be refused for the bomb instead
    argv = {"run": ["run", "--method", "finetune"], "learn": ["learn", str(tmp_path / "new.pt")],
            "predict": ["predict", str(learner_file)]}[command]
    assert "--size: expected a side in pixels from 1 to 2048" in one_line(capsys, *argv, "--data", str(folder),
                                                                          f"--size={size}")
    with pytest.raises(ConfigError, match="size must be a whole number from 1 to 2048"):
        from_data(folder, n_tasks=1, size=int(size))


# ---------------------------------------------------------------------- arrays
def test_npz_inputs_of_half_precision_are_read_as_float32(tmp_path, capsys):
    x, y = small_data()
    np.savez(tmp_path / "half.npz", x=x.astype(np.float16), y=y)
    assert main(["learn", str(tmp_path / "m.pt"), "--data", str(tmp_path / "half.npz"), "--hidden", "8", "--epochs",
                 "1", "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "m.pt"), "--data", str(tmp_path / "half.npz")]) == 0
    assert "accuracy:" in capsys.readouterr().err


@pytest.mark.parametrize("x, message", [
    (np.array([["a", "b"]] * 8), "must be numbers, got an array of <U1"),
    (np.zeros((0, 4), np.float32), r"are empty \(shape \(0, 4\)\)"),
    (np.zeros((8, 0), np.float32), r"are empty \(shape \(8, 0\)\)"),
    (np.ones((8, 2), np.complex64), "must be numbers, got an array of complex64"),
])
def test_npz_inputs_of_strings_or_no_rows_are_one_line(tmp_path, capsys, learner_file, x, message):
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(len(x)) % 2)
    for argv in (["learn", str(tmp_path / "new.pt")], ["predict", str(learner_file)]):
        line = one_line(capsys, *argv, "--data", str(tmp_path / "bad.npz"))
        assert f"the inputs x of {tmp_path / 'bad.npz'} " in line and re.search(message, line), line


def test_from_data_refuses_no_rows_strings_and_nan_and_takes_any_real_dtype():
    x, y = small_data()
    with pytest.raises(ConfigError, match="are empty"):
        from_data(x[:0], y[:0], n_tasks=1)
    with pytest.raises(ConfigError, match="must be numbers"):
        from_data(x.astype(str), y, n_tasks=1)
    with pytest.raises(ConfigError, match="labels must be integers or strings"):
        from_data(x, np.array([None] * len(x)), n_tasks=1)
    broken = x.copy()
    broken[5, 2] = np.nan
    with pytest.raises(ConfigError, match="1 NaN or infinite value.*input 5"):
        from_data(broken, y, n_tasks=1)
    extreme = np.full_like(x, 3e38)  # finite, but their variance is not
    extreme[::2] *= -1
    with pytest.raises(ConfigError, match="cannot be normalised in float32"):
        from_data(extreme, y, n_tasks=1)
    reference = from_data(x, y, n_tasks=2).tasks[0].x_train
    for dtype in (np.float64, np.float16, ">f4"):  # big-endian: an .npz written on another machine
        task = from_data(x.astype(dtype), y, n_tasks=2).tasks[0]
        assert task.x_train.dtype == torch.float32 and torch.allclose(task.x_train, reference, atol=2e-3)
    pixels = (np.arange(40 * 6).reshape(40, 6) % 256)
    assert torch.equal(from_data(pixels.astype(np.int64), y, n_tasks=2).tasks[0].x_train,
                       from_data(pixels.astype(np.uint8), y, n_tasks=2).tasks[0].x_train)  # integers as pixels


# ---------------------------------------------------------------------- numbers
@pytest.mark.parametrize("argv, message", [
    (["--batch-size", str(10**20)], "argument --batch-size: expected a whole number between -2**63 and 2**63 - 1"),
    (["--seed", str(10**20)], "argument --seed: expected a seed from 0 to 2**63 - 1"),
    (["--class-order-seed", str(2**32)], "argument --class-order-seed: expected a seed from 0 to 2**32 - 1"),
    (["--threads", str(2**40)], "argument --threads: expected a number of threads or processes up to 4096"),
    (["--hidden", "100000000000"], "holds 200,000,000,000 parameters, more than the 1,000,000,000 allowed"),
    (["--hidden", "400,x"], "--hidden takes positive layer sizes"),
    (["--device", "meta"], "device 'meta' cannot train"),
    (["--seeds", "1000000000"], "a count of seeds must be from 1 to 10,000"),
    (["--seeds", f"0,{2**63}"], "distinct seeds from 0 to 2**63 - 1"),
    (["--seeds", "5000", "--setting", "class,task"], "20,000 runs, more than the 10,000"),
])
def test_numbers_past_what_torch_or_the_machine_holds_are_one_line(capsys, argv, message):
    # --out a file: were the number let through, the command would stop there, before any training
    line = one_line(capsys, "run", "--method", "finetune,lwf", *argv, "--out", os.devnull)
    assert message in line, line


def test_a_hidden_size_that_cannot_be_allocated_is_one_line(monkeypatch):
    import lifelong.learner

    monkeypatch.setattr(lifelong.learner, "check_mlp", lambda *a: None)  # within the bound, the machine decides
    x, y = small_data()
    with pytest.raises(ConfigError, match="does not fit in memory here"):
        Learner("finetune", hidden=(10**14,), **FAST).learn(x, y)


def test_seeds_past_torchs_are_refused_in_python_too():
    with pytest.raises(ConfigError, match="seed must be a whole number from 0 to"):
        Learner("finetune", seed=10**20)


def test_data_workers_above_the_core_count_warn_as_threads_do(tmp_path, capsys):
    folder = image_folder(tmp_path / "photos")
    cores = os.cpu_count() or 1
    # a --hidden that fails after the data options are checked: no training
    lines = fails(capsys, "run", "--data", str(folder), "--on-disk", "--data-workers", str(cores + 1), "--hidden", "x")
    assert lines[0] == (f"lifelong: warning: {cores + 1} data workers on {cores} cores: they will take turns, which "
                        f"is slower than --data-workers {cores}")
    assert len(fails(capsys, "run", "--data", str(folder), "--on-disk", "--data-workers", str(cores),
                     "--hidden", "x")) == 1


# ---------------------------------------------------------------------- messages that say what happened
def test_a_class_with_one_image_names_test_fraction_and_the_class(tmp_path, capsys):
    folder = image_folder(tmp_path / "photos", per_class=(3, 1))
    line = one_line(capsys, "run", "--data", str(folder), "--n-tasks", "1", "--method", "finetune", "--quiet")
    assert "test_fraction 0.2 holds out 0 of the 1 samples of class 'class1'" in line and "--test-data" in line
    assert "validation" not in line


def test_nan_in_a_learners_data_says_so_and_a_nan_loss_names_learns_options(tmp_path, capsys):
    x, y = small_data()
    broken = x.copy()
    broken[3, 1] = np.inf
    with pytest.raises(ConfigError, match="NaN or infinite value.*input 3"):
        Learner("finetune", hidden=(8,), **FAST).learn(broken, y)
    np.savez(tmp_path / "nan.npz", x=broken, y=y)
    line = one_line(capsys, "learn", str(tmp_path / "m.pt"), "--data", str(tmp_path / "nan.npz"))
    assert "nan.npz hold 1 NaN or infinite value" in line and not (tmp_path / "m.pt").exists()

    with pytest.raises(TrainingError) as error:  # good data, a learning rate that explodes
        Learner("finetune", hidden=(8,), lr=1e30, optimizer="sgd", epochs=3, progress=False).learn(x * 1e6, y)
    message = str(error.value)
    assert "lower the learning rate" in message and "learner.config.lr" in message and "--lr" in message
    assert "--out" not in message and "resume" not in message
    with pytest.raises(TrainingError, match="lower the learning rate .* into a new --out"):  # a run's, its own
        run_experiment("finetune", from_data(x * 1e6, y, n_tasks=2), hidden=(8,), lr=1e30, optimizer="sgd",
                       epochs=3, progress=False)


# ---------------------------------------------------------------------- lifelong report
def results_document(scenario="split-digits", n_tasks=2) -> dict:
    """A results document as `lifelong run` writes it (the fields the report reads)."""
    matrix = [[0.9 - 0.1 * (i - j) if j <= i else None for j in range(n_tasks)] for i in range(n_tasks)]
    average = [sum(row[:i + 1]) / (i + 1) for i, row in enumerate(matrix)]
    return {"status": "complete", "method": "finetune", "setting": "class", "scenario": scenario, "seed": 0,
            "accuracy_matrix": matrix, "average_accuracy": average, "final_average_accuracy": average[-1],
            "final_forgetting": 0.1, "backward_transfer": -0.1, "wall_time_s": 1.0,
            "task_classes": [[2 * t, 2 * t + 1] for t in range(n_tasks)],
            "config": {"epochs": 1, "lr": 0.001, "seed": 0, "extra": {"backbone": "mlp"}}}


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(accuracy_matrix="abc"), "accuracy_matrix is not a square matrix"),
    (lambda d: d.update(accuracy_matrix=[[0.9, None], [None, 0.8]]), "lacks accuracies of a task it has done"),
    (lambda d: d.update(average_accuracy=[0.9, "x"]), "average_accuracy is not a list of accuracies"),
    (lambda d: d.update(average_accuracy=[]), "average_accuracy is not a list of accuracies"),
    (lambda d: d.update(seed="zero"), "seed is not an integer"),
    (lambda d: d.update(wall_time_s=[1]), "wall_time_s is not a number"),
    (lambda d: d.update(final_forgetting=10**400), "final_forgetting is not a number"),
    (lambda d: d.update(method=["finetune"]), "method is not text"),
    (lambda d: d.update(config={"extra": 3}), "config's extra is not a dict"),
    (lambda d: d.update(task_classes=[[0, 1]]), "task_classes are not one list of classes per task"),
    (lambda d: d.update(scenario="\udcff"), "text that is not valid Unicode"),
])
def test_report_on_results_of_wrong_types_is_one_line(tmp_path, capsys, change, message):
    document = results_document()
    change(document)
    (tmp_path / "results.json").write_text(json.dumps(document))
    assert message in one_line(capsys, "report", str(tmp_path))


@pytest.mark.parametrize("content, message", [
    (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
    (b'{"method": "fine\xfftune"}', "not UTF-8 text: byte 16"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "is not a results file"),
])
def test_report_on_deep_nesting_non_utf8_bytes_or_endless_numbers_is_one_line(tmp_path, capsys, content, message):
    (tmp_path / "results.json").write_bytes(content)
    assert message in one_line(capsys, "report", str(tmp_path))


def test_report_out_that_is_an_existing_file_is_one_line(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(results_document()))
    (tmp_path / "taken").write_text("")
    assert f"--out {tmp_path / 'taken'} is a file" in one_line(capsys, "report", str(tmp_path), "--out",
                                                                 str(tmp_path / "taken"))
    assert "cannot write to --out" in one_line(capsys, "report", str(tmp_path), "--out", str(tmp_path / "taken" / "x"))
    assert (tmp_path / "taken").read_text() == ""


def test_names_that_matplotlib_reads_as_math_are_drawn_as_plain_text(tmp_path, capsys):
    import matplotlib.pyplot as plt

    from lifelong.report import report_figure

    name = r"$\undefinedcmd{x}$"  # a folder's name, given to `lifelong run --data` as the scenario's
    document = results_document(scenario=name)
    document["method"] = "my $method$"
    (tmp_path / "results.json").write_text(json.dumps(document))
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.png").stat().st_size > 10_000
    figure = report_figure([document])
    assert figure.get_suptitle() == r"\$\undefinedcmd{x}\$"  # drawn as "$\undefinedcmd{x}$"
    plt.close(figure)
