"""Results files: one JSON document per run, written atomically (never half a file on disk)."""

import json
import math
import os
import platform
import re
import statistics
from pathlib import Path

import numpy as np
import torch

from ._version import __version__
from .errors import ConfigError
from .storage import write_text


def versions() -> dict:
    return {"lifelong": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _cpu_model() -> str:
    """The CPU's model name as the kernel reports it (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    """The BLAS torch was built with, and its version where torch says it ("mkl: Intel(R) oneAPI Math Kernel
    Library Version 2024.2-..."): the kernels whose last bits differ between CPUs and instruction sets."""
    config = torch.__config__.show()
    found = re.search(r"BLAS_INFO=(\w+)", config)
    name = found.group(1) if found else "unknown"
    detail = next((line.strip(" -") for line in config.splitlines()
                   if "Math Kernel Library" in line or "OpenBLAS" in line), "")
    return f"{name}: {detail}" if detail else name


# the variables that narrow the kernels a run uses: a figure made under one of them says so
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "DNNL_MAX_CPU_ISA", "MKL_CBWR")


def machine() -> dict:
    """Where a result was made: floats differ in their last bits between CPUs and kernel sets, so every results
    file records the CPU, the vectorised kernels torch chose (`torch.backends.cpu.get_cpu_capability()`), the
    BLAS, and any variable set to narrow them."""
    return {"cpu": _cpu_model(), "architecture": platform.machine(), "cpu_count": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "blas": _blas(),
            "kernel_variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ}}


def machine_line(where: dict | None) -> str:
    """One line naming a results file's machine: 'AMD EPYC (x86_64), kernels AVX512, BLAS mkl'."""
    if not where:
        return "not recorded"
    narrowed = ", ".join(f"{k}={v}" for k, v in where.get("kernel_variables", {}).items())
    return f"{where['cpu']} ({where['architecture']}), kernels {where['cpu_capability']}, " \
           f"BLAS {where['blas'].split(':')[0]}" + (f", {narrowed}" if narrowed else "")


def json_safe(value):
    """NaN (a task not yet evaluated) and infinities become null, so the file is valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path, document: dict) -> None:
    """The document as JSON, replaced atomically (`lifelong.storage`)."""
    write_text(path, json.dumps(json_safe(document), indent=2) + "\n")


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _count_note(label: str, keys: list, why: str) -> str:
    counts = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    if len(counts) == 1:
        return f"{label}: {next(iter(counts))} (every run)."
    return f"{label}: MIXED, " + ", ".join(f"{k}: {n} run(s)" for k, n in counts.items()) + f" ({why})."


def thread_note(runs) -> str:
    """How many torch threads the runs of a table used, and on which CPU they ran (results differ in the last
    digits with both): one line each, which says so when they were mixed."""
    runs = list(runs)
    threads = _count_note("Torch threads", [run.get("threads", "not recorded") for run in runs],
                          "numbers differ in their last digits with the thread count")
    cpus = _count_note("Made on", [machine_line(run.get("machine")) for run in runs],
                       "numbers differ in their last digits between CPUs")
    return f"{threads} {cpus}"


def mean_spread(mean: float, std: float, n: int, digits: int = 2) -> str:
    """A table's cell: 'mean +- std' over n values; one value has no spread to show, so its value alone (not
    '+- 0.00')."""
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} +- {std:.{digits}f}"


def summary(values: list[float], paper: float | None = None, paper_std: float | None = None) -> str:
    """A reproduction's cell: 'mean +- std (n=N)' over the seeds ('value (n=1)' for one), with ' !' when the paper
    has a number and ours is more than 1.5 points (or, where the paper's std is known, 2 of them) from it."""
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    off = abs(mean - paper) if paper is not None else 0.0
    far = paper is not None and (off > 1.5 or (paper_std is not None and off > 2 * paper_std))
    return f"{mean_spread(mean, std, len(values))} (n={len(values)}){' !' if far else ''}"


def time_left(elapsed_s: float, done: int, total: int) -> str:
    """", about M min left" from the mean time of the runs done so far (empty when nothing is left)."""
    if done >= total or done == 0:
        return ""
    left = elapsed_s / done * (total - done)
    return f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"


def read_runs(runs_dir, key) -> dict:
    """The per-run files of a reproduction (`runs_dir/*.json`, one per run, written as each run ends), keyed by
    `key(run)`; {} where the folder does not exist. A file that is not a run's JSON (cut short, edited) is refused in
    one line naming it, before the table is made from the others."""
    runs = {}
    for path in sorted(Path(runs_dir).glob("*.json")) if Path(runs_dir).exists() else []:
        try:
            run = json.loads(path.read_text())
            runs[key(run)] = run
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path} is damaged: delete it and run the same command again to redo that run") from None
    return runs
