"""Hebbian and competitive learning, as scikit-learn estimators (numpy in, numpy out).

- `HebbianMemory`: a Hopfield associative memory, patterns stored with the averaged Hebbian rule;
  `coactivation(pre, post)`, the Hebbian statistic (1/N) sum_k pre_k^T post_k it is built on (and
  `accumulate_coactivation`, its running sum over batches, which the local MAS importance reads).
- `Hebb`, `Oja`, `Sanger`: online Hebbian rules for a linear layer (unbounded growth, first principal component,
  top principal components).
- `CompetitiveLearning`, `CompetitiveClassifier`: winner-take-all learning, and units labelled by class.
- `NeuralGas`: rank-based soft competition with competitive Hebbian edges (`edges_`, the learned graph).
- `KrotovHopfield`: Hebbian / anti-Hebbian competing hidden units (Krotov & Hopfield 2019).

The continual-learning methods `competitive` and `neural-gas` (lifelong.methods) are built on these pieces.
"""

from .competitive import CompetitiveClassifier, CompetitiveLearning, quantization_error, squared_distances, winner_update
from .krotov import KrotovHopfield, krotov_update
from .memory import HebbianMemory, accumulate_coactivation, coactivation
from .neural_gas import NeuralGas, annealed, neural_gas_step
from .online import Hebb, Oja, Sanger

__all__ = ["HebbianMemory", "coactivation", "accumulate_coactivation", "Hebb", "Oja", "Sanger", "CompetitiveLearning",
           "CompetitiveClassifier",
           "NeuralGas", "KrotovHopfield", "squared_distances", "winner_update", "quantization_error",
           "neural_gas_step", "annealed", "krotov_update"]
