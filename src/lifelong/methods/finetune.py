"""Fine-tuning: the base class as it is. Its own file so that every method has one."""

from .base import Method


class Finetune(Method):
    pass
