"""FACT's prediction on fscil-omniglot (seed 0) after its last session, for eta 0 / 0.1 / 0.5 / 1 and both
projections: how much the virtual prototypes' view moves the argmax (`results/fact_notes.md`). Prints only.

    python benchmarks/fact_eta.py
"""

import torch
import torch.nn.functional as F
from _common import data_dir

from lifelong.benchmarks import make_scenario
from lifelong.experiment import run_experiment


def main():
    scenario = make_scenario("fscil-omniglot", data_dir=data_dir(), download=False)
    _, learner = run_experiment("fact", scenario, "class", seed=0, progress=False, return_learner=True)
    method = learner.method
    x = torch.cat([task.x_test for task in scenario.tasks])
    y = torch.cat([task.y_test + method.offsets[task.id] for task in scenario.tasks])
    with torch.no_grad():
        features, weight = method.model.eval().features(x), method.head_weight()
        cosine = method.scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T
        for projection in ("official", "class"):
            method.projection = projection
            virtual = method.virtual_logits(features, weight)
            print(f"{projection}: logit span per image (median) virtual "
                  f"{(virtual.max(1).values - virtual.min(1).values).median():.2f}, cosine "
                  f"{(cosine.max(1).values - cosine.min(1).values).median():.2f}")
            for eta in (0.0, 0.1, 0.5, 1.0):
                method.eta = eta
                accuracy = (method.predict(x).argmax(1).cpu() == y).float().mean().item()
                print(f"  eta {eta}: accuracy on the 100 classes {100 * accuracy:.2f}")


if __name__ == "__main__":
    main()
