"""lifelong: continual (lifelong) learning on PyTorch."""

__version__ = "0.1.0"
