"""The errors a user can act on.

Every error that the command line reports as one line (and exit code 2) derives from `LifelongError`;
anything else is a bug and keeps its traceback.
"""


class LifelongError(Exception):
    """Base class of the errors that say what the user should do."""


class ConfigError(LifelongError, ValueError):
    """An unknown name or a bad value in the configuration."""


class DataError(LifelongError, OSError):
    """A data file is missing, corrupt or unreadable."""


class TrainingError(LifelongError, RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""
