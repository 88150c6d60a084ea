"""Bounds on the numbers users hand us, past which no one means what they typed: each is refused in one line
before anything is read or allocated, rather than as an overflow deep in torch or a machine out of memory.
Readable without importing torch, so that the command line checks its arguments at once."""

from .errors import ConfigError

MAX_INT = 2**63 - 1  # torch's int64: a larger batch size, seed or count overflows where torch takes it
MAX_SEED = MAX_INT  # torch.manual_seed takes more (up to 2**64 - 1), but a seed is also a count above
MAX_THREADS = 4096  # --threads, --workers, --data-workers: torch takes a C int, and each is a thread or process
MAX_RUNS = 10_000  # `lifelong run --seeds N`: the seeds are listed, and each run trained, one after the other
MAX_SIZE = 2048  # the side images are resized to: 2048 x 2048 RGB is 12.6 million values per image
# one input's values (a saved learner's input shape): 3 x 2048 x 2048 fits, 50,000 x 50,000 (2.5e9) does not
MAX_INPUT_VALUES = 2**24
# an MLP's weights and biases: 4 GB of float32, three times that with Adam's two moments
MAX_PARAMETERS = 10**9


def mlp_parameters(n_inputs: int, hidden) -> int:
    """The weights and biases of the library's MLP backbone on `n_inputs` values (its head not counted)."""
    sizes = [n_inputs, *hidden]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def check_mlp(n_inputs: int, hidden) -> None:
    """Refuse an MLP of more than MAX_PARAMETERS, before a byte of it is allocated."""
    count = mlp_parameters(n_inputs, hidden)
    if count > MAX_PARAMETERS:
        raise ConfigError(f"an MLP of hidden sizes {','.join(map(str, hidden))} on inputs of {n_inputs:,} value(s) "
                          f"holds {count:,} parameters, more than the {MAX_PARAMETERS:,} allowed: give smaller hidden "
                          "sizes")
