"""`lifelong run`'s command line checked before any training: its seeds, its --out folder, its --param options, and
the options of --data (your own image folder)."""

import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..limits import MAX_RUNS, MAX_SEED
from .arguments import comma_list


def methods_named(args) -> list[str]:
    """--method's names; `all`: `catalog.methods_for_all` of the scenario (the few-shot methods on few-shot ones)."""
    from .. import catalog

    if args.method != "all":
        return comma_list(args.method)
    return catalog.methods_for_all(None if args.data is not None else args.scenario or "split-digits")


def parse_seeds(seeds: str | None, seed: int | None) -> list[int]:
    """--seeds as a list (0,1,2) or a count (3: 0, 1, 2); else [--seed] (default 0)."""
    if seeds is None:
        return [0 if seed is None else seed]
    if seed is not None:
        raise ConfigError("give --seed (one run) or --seeds (several), not both")
    try:
        values = [int(v) for v in comma_list(seeds)]
    except ValueError:
        raise ConfigError(f"--seeds takes a list like 0,1,2 or a count like 3, got {seeds[:50]!r}") from None
    if len(values) == 1:
        if not 1 <= values[0] <= MAX_RUNS:  # checked before the list is made: --seeds 10**9 would fill the memory
            raise ConfigError(f"--seeds {values[0]}: a count of seeds must be from 1 to {MAX_RUNS:,}")
        values = list(range(values[0]))
    if len(set(values)) != len(values) or min(values) < 0 or max(values) > MAX_SEED:
        raise ConfigError(f"--seeds must be distinct seeds from 0 to 2**63 - 1, got {seeds[:50]!r}")
    return values


def check_writable(out: Path) -> None:
    """--out must be a folder this process can write, found before any training."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder (it is created if needed)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write to --out {out} ({error.strerror or error}): choose another folder") from None


def options_by_method(methods: list[str], options: dict) -> dict[str, dict]:
    """--param options go to each of the methods run that accepts them (one command compares several methods);
    an option that none of them accepts is an error (a typo, or an option of another method)."""
    from ..methods import METHODS, method_options

    accepted = {name: method_options(METHODS[name]) for name in methods}
    known = set().union(*accepted.values())
    unknown = sorted(set(options) - known)
    if unknown:
        ran = ", ".join(methods)
        raise ConfigError(f"{', '.join(unknown)}: not an option of {ran}; their options: "
                          f"{', '.join(sorted(known)) or 'none'} (`lifelong list --method NAME` explains each method's)")
    return {name: {k: v for k, v in options.items() if k in accepted[name]} for name in methods}


def check_data_options(args) -> None:
    """`lifelong run --data FOLDER` and its options: each one only where it has an effect, the folders there."""
    given = lambda *names: [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, False)]  # noqa: E731
    if args.data is None:
        folder_options = given("test_data", "test_fraction", "size", "on_disk", "data_workers")
        if folder_options:
            raise ConfigError(f"{', '.join(folder_options)} go with --data FOLDER (your own images); a benchmark "
                              "(--scenario) has its own")
        return
    benchmark_options = given("scenario", "ways", "shots", "base_classes", "data_dir", "no_download")
    if benchmark_options:
        raise ConfigError(f"--data FOLDER is your own data set: leave out {', '.join(benchmark_options)} "
                          "(a benchmark's options)")
    if args.test_data is not None and args.test_fraction is not None:
        raise ConfigError("--test-data is the test set: --test-fraction (a share of --data held out) has no effect "
                          "with it; give one of the two")
    if args.data_workers is not None and args.data_workers < 0:
        raise ConfigError(f"--data-workers must be 0 (read in the training process) or more, got {args.data_workers}")
    if args.data_workers is not None and not args.on_disk:
        raise ConfigError("--data-workers sets the processes that read --on-disk images: add --on-disk, or leave "
                          "it out (in memory, nothing is read while training)")
    cores = os.cpu_count() or 1
    if args.data_workers is not None and args.data_workers > cores:  # as --threads: allowed, but said
        print(f"lifelong: warning: {args.data_workers} data workers on {cores} cores: they will take turns, which is "
              f"slower than --data-workers {cores}", file=sys.stderr)
    for option, folder in (("--data", args.data), ("--test-data", args.test_data)):
        if folder is not None and not Path(folder).is_dir():
            raise ConfigError(f"{option} {folder}: not a folder; give an image folder with one sub-folder per class")
