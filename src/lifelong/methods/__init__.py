"""Continual-learning methods, one file each, registered by name."""

import inspect

from ..errors import ConfigError
from .base import Method
from .feature_extraction import FeatureExtraction
from .finetune import Finetune
from .finetune_fc import FinetuneFC
from .joint import Joint
from .lwf import LwF
from .ewc import EWC, OnlineEWC
from .l2 import L2
from .mas import MAS, LocalMAS
from .si import SI
from .competitive import Competitive
from .neural_gas import NeuralGasMethod
from .replay import Replay
from .icarl import ICaRL
from .bic import BiC
from .wa import WA
from .lucir import LUCIR
from .podnet import PODNet
from .prototype import Prototype
from .topic import TOPIC
from .cec import CEC
from .fact import FACT
from .er import ER
from .der import DER, DERPP
from .gdumb import GDumb
from .er_ace import ERACE
from .agem import AGEM
from .task_free_mas import TaskFreeMAS

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Finetune, FinetuneFC, FeatureExtraction, Joint, LwF)}
METHODS.update({cls.name: cls for cls in (EWC, OnlineEWC, SI, L2, MAS, LocalMAS)})
METHODS.update({cls.name: cls for cls in (Replay, ICaRL, BiC, WA, LUCIR, PODNet)})  # methods that keep exemplars
METHODS.update({cls.name: cls for cls in (ER, DER, DERPP, GDumb, ERACE, AGEM, TaskFreeMAS)})  # rehearsal from a stream
METHODS.update({cls.name: cls for cls in (Competitive, NeuralGasMethod)})  # local (gradient-free) learners
METHODS.update({cls.name: cls for cls in (TOPIC, Prototype, CEC, FACT)})  # few-shot class-incremental learning


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)} (see `lifelong list`)")
    return METHODS[name]


def method_options(cls: type[Method]) -> list[str]:
    """The method's own constructor options (beyond the model and the setting)."""
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model", "setting")]


def describe_options(cls: type[Method]) -> str:
    """A method's own options with their defaults, and its constructor's docstring that explains them."""
    parameters = inspect.signature(cls.__init__).parameters
    lines = ["options (--param KEY=VALUE; Learner(..., KEY=VALUE)):"]
    for name in method_options(cls):
        default = parameters[name].default
        lines.append(f"  {name} = {'(required)' if default is inspect.Parameter.empty else repr(default)}")
    if len(lines) == 1:
        lines.append("  none")
    doc = inspect.getdoc(cls.__init__)
    if doc and cls.__init__ is not Method.__init__:
        lines += ["", doc]
    return "\n".join(lines)


__all__ = ["METHODS", "Method", "describe_options", "get_method", "method_options", "Finetune", "FinetuneFC", "FeatureExtraction", "Joint", "LwF",
           "EWC", "OnlineEWC", "SI", "L2", "MAS", "LocalMAS", "Competitive", "NeuralGasMethod", "Replay", "ICaRL", "BiC", "Prototype", "TOPIC",
           "ER", "DER", "DERPP"]
__all__ += ["GDumb"]
__all__ += ["PODNet"]
__all__ += ["ERACE", "AGEM", "TaskFreeMAS"]
__all__ += ["WA"]
__all__ += ["LUCIR"]
__all__ += ["CEC"]
__all__ += ["FACT"]
