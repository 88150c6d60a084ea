"""The version of lifelong, in a module of its own: the results files record it, and nothing here imports more."""

__version__ = "0.1.0"
