"""Results files: one JSON document per run, written atomically (never half a file on disk)."""

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from . import __version__


def versions() -> dict:
    return {"lifelong": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _to_json(value):
    """NaN (a task not yet evaluated) becomes null, so the file is valid JSON for every reader."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _replace_atomically(path, write) -> None:
    """`write(tmp)` a temporary file in the same folder, then rename it over `path` (atomic on POSIX): a reader
    never sees half a file, and a failure leaves the last good file and no temporary one. The file is opened as
    any other (the umask decides who may read it); the process id keeps concurrent writers apart."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path, document: dict) -> None:
    _replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(_to_json(document), indent=2) + "\n"))


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path, state: dict) -> None:
    """torch.save, atomically. The state holds tensors and plain Python data only, so that `load_checkpoint`
    can read it without unpickling anything else."""
    _replace_atomically(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    """torch.load with `weights_only=True`: tensors, numbers, strings and containers of them, nothing that can
    run code when it is read (a pickle can name any function to call; this loader refuses every such name and
    raises `pickle.UnpicklingError`). Loaded onto the CPU; the caller moves what it needs."""
    return torch.load(path, weights_only=True, map_location="cpu")


def thread_note(runs) -> str:
    """How many torch threads the runs of a table used (results differ in the last digits with the count): one
    line, which says so when they were mixed."""
    counts = {}
    for run in runs:
        key = run.get("threads", "not recorded")
        counts[key] = counts.get(key, 0) + 1
    if len(counts) == 1:
        return f"Torch threads: {next(iter(counts))} (every run)."
    return "Torch threads: MIXED, " + ", ".join(f"{k}: {n} run(s)" for k, n in counts.items()) + \
        " (numbers differ in their last digits with the thread count)."


def time_left(elapsed_s: float, done: int, total: int) -> str:
    """", about M min left" from the mean time of the runs done so far (empty when nothing is left)."""
    if done >= total or done == 0:
        return ""
    left = elapsed_s / done * (total - done)
    return f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"
