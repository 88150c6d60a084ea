"""What the command families share: the types that read and bound the command line's values, the parser whose
errors are one line, the options several commands take, and the threads a computing command runs on."""

import argparse
import os
import sys

from ..limits import MAX_INT, MAX_SEED, MAX_SIZE, MAX_THREADS


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def key_value(text: str):
    """KEY=VALUE with VALUE read as a Python number, bool or None when it looks like one."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    for convert in (int, float):
        try:
            return key, convert(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False, "none": None}.get(value.lower(), value)


def bounded(text: str, low: int, high: int, expected: str) -> int:
    """An integer from `low` to `high` (`expected` says so), checked as the command line is read: a number past
    what torch or the machine can hold is refused before any work, not as an overflow deep inside torch."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:30]}")
    return value


def whole(text: str) -> int:
    return bounded(text, -MAX_INT - 1, MAX_INT, "a whole number between -2**63 and 2**63 - 1 (torch's integers)")


def seed(text: str) -> int:
    return bounded(text, 0, MAX_SEED, "a seed from 0 to 2**63 - 1")


def numpy_seed(text: str) -> int:  # numpy's RandomState draws the class order
    return bounded(text, 0, 2**32 - 1, "a seed from 0 to 2**32 - 1 (numpy's)")


def side(text: str) -> int:
    return bounded(text, 1, MAX_SIZE, f"a side in pixels from 1 to {MAX_SIZE}")


def threads(text: str) -> int:  # torch takes a C int, and each is a thread or a process (the lower bound: later)
    return bounded(text, -MAX_THREADS, MAX_THREADS, f"a number of threads or processes up to {MAX_THREADS}")


def layer_sizes(text: str) -> tuple[int, ...]:
    """--hidden's MLP layer sizes, checked before the data are read."""
    from ..errors import ConfigError
    from ..limits import check_mlp
    try:
        sizes = tuple(int(v) for v in comma_list(text))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--hidden takes positive layer sizes like 400,400, got {text[:50]!r}")
    check_mlp(1, sizes)  # on inputs of a single value: sizes no machine holds are refused before the data are read
    return sizes


class OneLineErrors(argparse.ArgumentParser):
    """argparse's errors in the one-line form of every other error: `lifelong: error: ...`, exit code 2."""

    def error(self, message):
        print(f"lifelong: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def add_threads(parser, more: str = "") -> None:
    """--threads, of every command that computes (`main` sets torch's threads from it); `more`: what else it sets."""
    parser.add_argument("--threads", type=threads, help="torch threads (default: $OMP_NUM_THREADS, else 1: small "
                        f"models run fastest on one, and a busy machine slows many threads far more{more})")


def add_data_dir(parser) -> None:
    """--data-dir and --no-download, of the commands that read a benchmark's data."""
    parser.add_argument("--data-dir", help="data directory (default: $LIFELONG_DATA, else ~/.cache/lifelong)")
    parser.add_argument("--no-download", action="store_true", help="never download missing data files")


def set_threads(count: int | None) -> int:
    """torch's intra-op threads: --threads, else $OMP_NUM_THREADS, else 1 (on a shared 2-core machine a
    split-MNIST run took 12.5 s on one thread and 99 s on two beside another busy process)."""
    from ..errors import ConfigError

    if count is None:
        count = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    if count < 1:
        raise ConfigError(f"--threads must be at least 1, got {count}")
    cores = os.cpu_count() or 1
    if count > cores:
        print(f"lifelong: warning: {count} threads on {cores} cores: they will take turns, which is slower than "
              f"--threads {cores}", file=sys.stderr)
    import torch

    torch.set_num_threads(count)
    return count
