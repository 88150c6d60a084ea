"""lifelong: continual (lifelong) learning on PyTorch."""

from ._version import __version__  # noqa: F401


def __getattr__(name):
    # `from lifelong import Learner` without importing torch for `import lifelong` alone (the CLI's --help)
    if name == "Learner":
        from .learner import Learner

        return Learner
    raise AttributeError(f"module 'lifelong' has no attribute {name!r}")
