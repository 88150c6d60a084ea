"""Fine-tuning: the base class as it is. Its own file so that every method has one."""

from .base import Method


class Finetune(Method):
    reads_from_disk = True  # its inputs pass through `training_data` alone
