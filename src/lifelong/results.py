"""Results files: one JSON document per run, written atomically (never half a file on disk)."""

import json
import os
import platform
import tempfile
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


def write_json(path, document: dict) -> None:
    """Write to a temporary file in the same folder, then rename it over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # as an ordinary file would be (mkstemp makes it readable by its owner only)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_to_json(document), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path, state: dict) -> None:
    """torch.save, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left beside the last good checkpoint
        raise
