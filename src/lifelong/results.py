"""Results files: one JSON document per run, written atomically (never half a file on disk)."""

import json
import platform

import numpy as np
import torch

from . import __version__
from .storage import load_checkpoint, save_checkpoint, write_text  # noqa: F401 (imported from here too)


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


def write_json(path, document: dict) -> None:
    """The document as JSON, replaced atomically (`lifelong.storage`)."""
    write_text(path, json.dumps(_to_json(document), indent=2) + "\n")


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


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
