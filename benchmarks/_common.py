"""Shared by the benchmark scripts: where the data is, thread pinning, saving results."""

import json
import os
import platform
import sys
from pathlib import Path

import time

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))


def data_dir() -> Path:
    """$LIFELONG_DATA, else the read-only shared copies beside the checkout."""
    path = Path(os.environ.get("LIFELONG_DATA", ROOT.parent / "shared" / "data"))
    if not (path / "mnist").exists():
        sys.exit(f"MNIST not found in {path}: set LIFELONG_DATA to a data directory holding mnist/")
    return path


def pin_threads(n: int | None = None) -> int:
    n = n or int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def machine() -> dict:
    """The library's record of the machine (CPU, kernels, BLAS), with the threads and versions of this run."""
    from lifelong.results import machine as where

    return {**where(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}


def save(name: str, document: dict, markdown: str | None = None) -> None:
    """Write RESULTS/name.json and .md. Both say on which machine they were made (figures differ between CPUs):
    the JSON in "machine", the markdown in a last line."""
    from lifelong.results import machine_line

    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {**document, "machine": {**machine(), **document.get("machine", {})}}
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    if markdown is not None:
        made_on = f"Made on: {machine_line(document['machine'])}, {document['machine']['torch_threads']} torch thread(s)."
        (RESULTS / f"{name}.md").write_text(markdown.rstrip("\n") + "\n\n" + made_on + "\n")


def best_of(fn, repeats=3) -> float:
    """The shortest of `repeats` timings of fn() in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
