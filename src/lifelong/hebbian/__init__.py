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

# the estimators import scikit-learn (a second or more): loaded on first use, so that the methods, which need only
# the rules, start fast
_WHERE = {"CompetitiveClassifier": "competitive", "CompetitiveLearning": "competitive", "quantization_error":
          "competitive", "KrotovHopfield": "krotov", "krotov_update": "krotov", "HebbianMemory": "memory",
          "NeuralGas": "neural_gas", "Hebb": "online", "Oja": "online", "Sanger": "online",
          "coactivation": "rules", "accumulate_coactivation": "rules", "squared_distances": "rules",
          "winner_update": "rules", "annealed": "rules", "neural_gas_step": "rules"}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'lifelong.hebbian' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = ["HebbianMemory", "coactivation", "accumulate_coactivation", "Hebb", "Oja", "Sanger", "CompetitiveLearning",
           "CompetitiveClassifier",
           "NeuralGas", "KrotovHopfield", "squared_distances", "winner_update", "quantization_error",
           "neural_gas_step", "annealed", "krotov_update"]
