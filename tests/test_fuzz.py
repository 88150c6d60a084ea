"""Fuzzing what users hand us, with hypothesis: arrays of any dtype, shape and labels for `from_data`, .npz files of
any arrays and of damaged bytes, learner files with entries removed, added or replaced, results documents mutated
the same way. Each either works or raises the library's one-line error (a LifelongError); any other exception is
a bug, and hypothesis prints the smallest input that raised it.

`make test` runs a few examples of each, the same ones every run (derandomize: no run fails by chance, and the whole
file takes seconds). LIFELONG_FUZZ=N runs N random examples of each: `LIFELONG_FUZZ=2000 pytest tests/test_fuzz.py`.
"""

import copy
import io
import json
import os
import tempfile
import zipfile
from functools import reduce
from operator import getitem
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lifelong import Learner
from lifelong.data.user import read_npz
from lifelong.errors import LifelongError
from lifelong.report import report
from lifelong.scenarios import from_data
from lifelong.storage import load_checkpoint, save_checkpoint

EXAMPLES = int(os.environ.get("LIFELONG_FUZZ", "0"))


def fuzz(examples: int):
    """Hypothesis' settings: `examples` fixed examples in `make test`, LIFELONG_FUZZ random ones when set. A fixed
    example that fails is shown as it is, not shrunk (shrinking a report takes minutes: each try draws figures)."""
    phases = list(Phase) if EXAMPLES else [Phase.explicit, Phase.generate]
    return settings(max_examples=EXAMPLES or examples, derandomize=not EXAMPLES, deadline=None, database=None,
                    phases=phases, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def works_or_one_line(call):
    """call(), which must return or raise a LifelongError (whose message is one line); returns what it returned,
    None where it raised."""
    try:
        return call()
    except LifelongError as error:
        assert "\n" not in str(error), str(error)
        return None


# every kind of numpy array a user may have: numbers of every width and byte order, booleans, complex numbers,
# dates, strings and bytes, of 0 to 4 dimensions, empty ones included
DTYPES = (hnp.scalar_dtypes() | hnp.floating_dtypes(endianness="?") | hnp.integer_dtypes(endianness="?")
          | hnp.unicode_string_dtypes(max_len=3) | hnp.byte_string_dtypes(max_len=3))
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
LABELS = st.sampled_from([0, 1, 2, 3, 7, -1, "a", "b", "ant"])


def object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: numpy would read a list among them as another dimension
        array[i] = value
    return array


# inputs a scenario can be made of, of every numeric dtype and any value (NaN too), and extremes: two thirds of the
# examples, so that most reach the checks past the first
NUMERIC = hnp.arrays(hnp.floating_dtypes(endianness="?") | hnp.integer_dtypes() | hnp.unsigned_integer_dtypes()
                     | hnp.boolean_dtypes(), st.tuples(st.integers(16, 40), st.integers(1, 3)).map(tuple)
                     | hnp.array_shapes(min_dims=3, max_dims=4, min_side=16, max_side=20))
# finite values whose variance is not (fill=nothing: every value drawn, not one repeated)
EXTREMES = hnp.arrays(np.float32, st.tuples(st.integers(16, 40), st.integers(1, 3)).map(tuple),
                      elements=st.sampled_from([0.0, 1.0, 1e-45, 3e38, -3e38]), fill=st.nothing())


@st.composite
def arrays_and_labels(draw):
    """Inputs of any dtype and shape, and labels of any kind: mostly one per input (to reach the checks past the
    first), sometimes of another length or dtype."""
    x = draw(NUMERIC | EXTREMES | hnp.arrays(DTYPES, SHAPES))
    n = x.shape[0] if x.ndim else 0
    classes = st.sampled_from([[0, 1], [0, 1, 2, 3], ["a", "b"], [3, "b"]])
    y = draw(st.one_of(
        classes.flatmap(lambda c: st.permutations((c * n)[:n])).map(np.asarray),
        st.lists(LABELS, min_size=n, max_size=n).map(np.asarray),
        hnp.arrays(hnp.scalar_dtypes() | hnp.unicode_string_dtypes(max_len=2), st.just((n,))),
        st.lists(LABELS | st.none() | st.floats() | st.booleans() | st.lists(st.integers(), max_size=2),
                 min_size=n, max_size=n).map(object_array),
        hnp.arrays(DTYPES, SHAPES)))
    return x, y


@fuzz(60)
@given(data=arrays_and_labels(), n_tasks=st.integers(1, 3), test_fraction=st.sampled_from([0.5, 0.5, 0.2, 0.0, 1.0]))
def test_from_data_takes_any_array_or_says_why_not(data, n_tasks, test_fraction):
    x, y = data
    scenario = works_or_one_line(lambda: from_data(x, y, n_tasks=n_tasks, test_fraction=test_fraction))
    if scenario is not None:  # what works is fit to train on: float32 and finite
        for task in scenario.tasks:
            assert task.x_train.dtype == torch.float32 and torch.isfinite(task.x_train).all()


def npz_bytes(arrays: dict, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def read_npz_bytes(content: bytes, need_labels: bool):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        path.write_bytes(content)
        result = works_or_one_line(lambda: read_npz(path, need_labels))
    if result is not None:
        x, y = result
        assert x.dtype == torch.float32 and torch.isfinite(x).all() and len(x) > 0


@fuzz(40)
@given(arrays=arrays_and_labels().map(lambda xy: {"x": xy[0], "y": xy[1]})  # object labels: pickled, refused
       | st.dictionaries(st.sampled_from(["x", "y", "z"]), hnp.arrays(DTYPES, SHAPES), max_size=3),
       compressed=st.booleans(), need_labels=st.booleans())
def test_the_npz_reader_takes_any_arrays_or_says_why_not(arrays, compressed, need_labels):
    read_npz_bytes(npz_bytes(arrays, compressed), need_labels)


GOOD_NPZ = npz_bytes({"x": np.arange(24, dtype=np.float32).reshape(6, 4), "y": np.arange(6) % 2}, False)
GOOD_COMPRESSED = npz_bytes({"x": np.zeros((50, 4), np.float32), "y": np.arange(50) % 2}, True)


@fuzz(40)
@given(base=st.sampled_from([GOOD_NPZ, GOOD_COMPRESSED]), data=st.data(), need_labels=st.booleans())
def test_the_npz_reader_on_damaged_bytes_reads_or_says_why_not(base, data, need_labels):
    content = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(content) - 1))
        content[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        content = content[:data.draw(st.integers(0, len(content)))]
    read_npz_bytes(bytes(content), need_labels)


def test_the_npz_reader_refuses_an_array_larger_than_the_machine_before_reading_it(tmp_path):
    """An .npz whose header declares a petabyte (a few hundred bytes on disk): refused from the header."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**48,)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())  # the header, and none of the 2**48 values it declares
    with pytest.raises(LifelongError, match="declares shape"):
        read_npz(tmp_path / "bomb.npz", need_labels=False)


# ---------------------------------------------------------------------- documents mutated
def place(draw, document) -> tuple | None:
    """A key path into a document of dicts and lists, drawn a level at a time (stopping or going deeper): an entry
    of the top level (a learner file's version, spec, config) is drawn as often as the weights below it together."""
    path, here = (), document
    while isinstance(here, (dict, list)) and here:
        key = draw(st.sampled_from(list(here) if isinstance(here, dict) else range(len(here))))
        path, here = path + (key,), here[key]
        if draw(st.booleans()):
            break
    return path or None


def mutate(document, path: tuple, how: str, value):
    """Replace the entry at `path`, delete it, or add `value` beside it."""
    parent, key = reduce(getitem, path[:-1], document), path[-1]
    if how == "replace":
        parent[key] = value
    elif how == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        parent[f"{key}_added"] = value
    else:
        parent.insert(key, value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10**300, 10**310) | st.floats()
    | st.text(max_size=4) | st.sampled_from(["\udcff", "$\\undefinedcmd{x}$", "class", "few-shot"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
TENSORS = hnp.arrays(st.sampled_from([np.float32, np.int64, np.uint8]),
                     hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)).map(torch.from_numpy)


@st.composite
def mutations(draw, document, values):
    """1 to 3 changes to a copy of `document`: an entry replaced by any value, deleted, or one added beside it."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = place(draw, document)
        if path is None:
            break
        mutate(document, path, draw(st.sampled_from(["replace", "replace", "delete", "add"])), draw(values))
    return document


def saved_learner() -> tuple[dict, np.ndarray]:
    """A learner of two tasks saved with the method that keeps the most state (exemplars, an optimizer, a bias
    layer); its file's contents, and inputs it predicts."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 6)).astype(np.float32), np.arange(120) % 4
    learner = Learner("bic", hidden=(8,), memory=40, epochs=1, progress=False)
    learner.learn(x[y < 2], y[y < 2]).learn(x[y >= 2], y[y >= 2])
    with tempfile.TemporaryDirectory() as folder:
        learner.save(Path(folder) / "learner.pt")
        return load_checkpoint(Path(folder) / "learner.pt"), x  # the contents, under their digest


LEARNER, LEARNER_INPUTS = saved_learner()


@fuzz(60)
@given(contents=mutations(LEARNER, JSON_VALUES | TENSORS))
def test_learner_load_on_a_mutated_file_works_or_says_why_not(contents):
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(Path(folder) / "learner.pt", contents)  # a valid digest: the checks after it are fuzzed
        learner = works_or_one_line(lambda: Learner.load(Path(folder) / "learner.pt"))
    if learner is not None:  # a learner that loads predicts, or says why not
        works_or_one_line(lambda: learner.predict(LEARNER_INPUTS))


@fuzz(30)
@given(data=st.data())
def test_learner_load_on_damaged_bytes_says_why_not(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "learner.pt"
        save_checkpoint(path, LEARNER)
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(content[:data.draw(st.integers(0, len(content)))]))
        works_or_one_line(lambda: Learner.load(path))


RESULTS = {"status": "complete", "method": "finetune", "setting": "class", "scenario": "split-digits", "seed": 0,
           "accuracy_matrix": [[0.9, None], [0.7, 0.8]], "average_accuracy": [0.9, 0.75],
           "final_average_accuracy": 0.75, "final_forgetting": 0.2, "backward_transfer": -0.2, "wall_time_s": 1.0,
           "task_classes": [[0, 1], [2, 3]], "scenario_config": {"kind": "split-by-classes"},
           "config": {"epochs": 1, "lr": 0.001, "seed": 0, "extra": {"backbone": "mlp", "method_options": {}}}}


@fuzz(12)  # a document that passes draws three figures: a second each
@given(document=mutations(RESULTS, JSON_VALUES))
def test_report_on_a_mutated_results_document_works_or_says_why_not(document):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "results.json").write_text(json.dumps(document))  # \udcff as an escape, as JSON allows
        works_or_one_line(lambda: report(folder, out=Path(folder) / "report"))
