"""Reports: a comparison table for the terminal and plots a person would rather look at than read."""

import json
import math
import re
from pathlib import Path

from .errors import ConfigError, DataError
from .results import read_json, write_json


def _pct(value) -> str:
    return "   -" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:5.1f}"


def comparison_table(results: list[dict]) -> str:
    """One table per scenario. One row per run (average accuracy after each task, then final accuracy, forgetting
    and BWT, in %), or, where a method ran with several seeds in a setting, one row per (setting, method) with
    mean +- std over the seeds and their number n."""
    if not results:
        return "(no results)"
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    if len(scenarios) > 1:  # different scenarios are never averaged together
        return "\n\n".join(comparison_table([r for r in results if r["scenario"] == s]) for s in scenarios)
    groups = _by_method(results)
    if any(len(runs) > 1 for runs in groups.values()):
        return seed_table(groups)
    return _run_table(results)


IGNORED = ("seed", "progress", "eval_batch_size", "device")  # what may differ between runs averaged together


def _how(run: dict) -> dict:
    """How a run was trained, but for its seed: runs are averaged only when this is equal."""
    config = run.get("config", {})
    return {k: v for k, v in config.items() if k not in IGNORED}


def _by_method(results: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs grouped by (setting, method), and by training configuration where one method ran with several (the
    method's label then names what differs, say `finetune [epochs=2]`)."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["setting"], r["method"], repr(sorted(_how(r).items(), key=str))), []).append(r)
    labelled = {}
    for (setting, method, _), runs in groups.items():
        others = [g[0] for (s, m, _), g in groups.items() if (s, m) == (setting, method) and g[0] is not runs[0]]
        differing = sorted({k for other in others for k, v in _how(runs[0]).items() if _how(other).get(k) != v})
        label = f"{method} [{', '.join(f'{k}={_how(runs[0])[k]}' for k in differing)}]" if differing else method
        labelled[(setting, label)] = runs
    return labelled


def _mean_std(values: list) -> str:
    stats = _stats(values)
    return "-" if not stats["n"] else f"{100 * stats['mean']:.1f} +- {100 * stats['std']:.1f}"


def seed_table(groups: dict[tuple[str, str], list[dict]]) -> str:
    """Mean +- std (sample std) over the seeds of each (setting, method), with n and the seeds."""
    first = next(iter(groups.values()))[0]
    width = max(20, *(len(method) for _, method in groups))
    lines = [f"{first['scenario']}: mean +- std over seeds, in % (task-aware in the task setting, over all seen "
             "outputs otherwise)",
             f"{'setting':<8} {'method':<{width}} {'n':>2} {'final':>12} {'forgetting':>12} {'BWT':>12}  seeds"]
    for (setting, method), runs in groups.items():
        seeds = ",".join(str(r["seed"]) for r in runs)
        lines.append(f"{setting:<8} {method:<{width}} {len(runs):>2} "
                     f"{_mean_std([r['final_average_accuracy'] for r in runs]):>12} "
                     f"{_mean_std([r['final_forgetting'] for r in runs]):>12} "
                     f"{_mean_std([r['backward_transfer'] for r in runs]):>12}  {seeds}")
    return "\n".join(lines)


def _run_table(results: list[dict]) -> str:
    first = results[0]
    n_tasks = len(first["accuracy_matrix"])
    curve_width = 6 * n_tasks
    lines = [f"{first['scenario']}: {n_tasks} tasks, seed {first['seed']}; accuracy in % "
             "(task-aware in the task setting, over all seen outputs otherwise)",
             f"{'setting':<8} {'method':<20} {'average accuracy after each task':<{curve_width}} "
             f"{'final':>6} {'forget':>6} {'BWT':>6} {'time':>7}"]
    for r in results:
        curve = " ".join(_pct(a) for a in r["average_accuracy"])
        done = re.match(r"running: (\d+) of (\d+)", r.get("status", "complete"))  # a run that has not finished
        method = f"{r['method']} ({done[1]}/{done[2]} tasks)" if done else r["method"]
        lines.append(f"{r['setting']:<8} {method:<20} {curve:<{curve_width}} {_pct(r['final_average_accuracy']):>6} "
                     f"{_pct(r['final_forgetting']):>6} {_pct(r['backward_transfer']):>6} {r['wall_time_s']:6.1f}s")
    return "\n".join(lines)


def write_summary(out_dir, results: list[dict]) -> None:
    """summary.json (the headline numbers of every run, and their mean and std over seeds per scenario, setting
    and method) and summary.txt (the table) in `out_dir`."""
    out_dir = Path(out_dir)
    keys = ("method", "setting", "scenario", "seed", "average_accuracy", "final_average_accuracy",
            "final_forgetting", "backward_transfer", "wall_time_s")
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["setting"], r["method"]), []).append(r)
    aggregated = [{"scenario": scenario, "setting": setting, "method": method, "n": len(runs),
                   "seeds": [r["seed"] for r in runs],
                   **{key: _stats([r[key] for r in runs]) for key in ("final_average_accuracy", "final_forgetting",
                                                                     "backward_transfer")}}
                  for (scenario, setting, method), runs in groups.items()]
    write_json(out_dir / "summary.json", {"runs": [{k: r[k] for k in keys} for r in results],
                                          "over_seeds": aggregated})
    (out_dir / "summary.txt").write_text(comparison_table(results) + "\n")


def _stats(values: list) -> dict:
    """{"mean", "std" (sample), "n"} of the finite values (fractions, as in results.json)."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values)}


def load_results(path) -> list[dict]:
    """The results.json at `path`, or every results.json below it."""
    path = Path(path)
    if path.is_file():
        return [_read_results(path)]
    files = sorted(path.glob("**/results.json")) if path.is_dir() else []
    if not files:
        raise ConfigError(f"no results.json found in {path}: give the --out directory of a `lifelong run`")
    return [_read_results(f) for f in files]


REQUIRED = ("method", "setting", "scenario", "seed", "accuracy_matrix", "average_accuracy", "final_average_accuracy",
            "final_forgetting", "backward_transfer", "wall_time_s")


def _read_results(path) -> dict:
    """A results.json, or one clear error when it is damaged or is not one."""
    try:
        document = read_json(path)
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is damaged (not valid JSON: {error.msg}, line {error.lineno}): rerun that run, "
                        "or resume it (lifelong run ... --out DIR --resume) to rewrite it") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror or error})") from None
    missing = [key for key in REQUIRED if not isinstance(document, dict) or key not in document]
    if missing:
        raise DataError(f"{path} is not a results file of lifelong run (no {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''}): give the --out folder of a run")
    return document


def plot(results: list[dict], path) -> None:
    """Average accuracy against tasks learned (one line per run, one panel per setting) and the accuracy
    matrix of every run as a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = sorted({r["setting"] for r in results})
    n_cols = max(len(settings), min(len(results), 4))
    n_rows = 1 + math.ceil(len(results) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.2 * n_rows), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for r in (r for r in results if r["setting"] == setting):
            acc = r["average_accuracy"]
            ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], marker="o", label=r["method"])
        ax.set(title=f"{setting}-incremental", xlabel="tasks learned", ylabel="average accuracy (%)", ylim=(0, 101))
        ax.legend(fontsize=7)
    for ax in axes[0][len(settings):]:
        ax.axis("off")
    cells = axes[1:].flatten()
    for ax, r in zip(cells, results):
        R = np.array([[np.nan if v is None else 100 * v for v in row] for row in r["accuracy_matrix"]])
        ax.imshow(R, vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in np.ndenumerate(R):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black")
        ax.set(title=f"{r['method']} ({r['setting']})", xlabel="test task j", ylabel="after task i",
               xticks=range(len(R)), yticks=range(len(R)))
    for ax in cells[len(results):]:
        ax.axis("off")
    fig.suptitle(f"{results[0]['scenario']}: accuracy matrices R[i][j] (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(*paths) -> str:
    """The comparison of the runs at `paths` (run folders or results.json files; several invocations together,
    each scenario apart), with a plot per scenario saved beside the first path; returns the text."""
    results = [r for path in paths for r in load_results(path)]
    folder = Path(paths[0]) if Path(paths[0]).is_dir() else Path(paths[0]).parent
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    figures = []
    for scenario in scenarios:
        figure = folder / ("report.png" if len(scenarios) == 1 else f"report-{scenario}.png")
        plot([r for r in results if r["scenario"] == scenario], figure)
        figures.append(str(figure))
    return comparison_table(results) + f"\n\nplots: {', '.join(figures)}"


def plot_temperature(logits, path, temperatures=None, class_names=None, marked=(1.0, 20.0)) -> None:
    """Class probabilities q_i = exp(z_i / T) / sum_j exp(z_j / T) of one logit vector z against the temperature T
    (Hinton et al. 2015): at T = 1 nearly all mass is on the top class; as T grows the small probabilities (how
    much a 2 looks like a 3 or a 7) rise and the distribution tends to uniform. Left linear, right log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from .distillation import softmax_with_temperature

    z = torch.as_tensor(logits, dtype=torch.float64).flatten()
    if z.numel() < 2 or not torch.isfinite(z).all():
        raise ConfigError(f"the temperature plot needs at least 2 finite logits, got {list(z.tolist())}")
    temperatures = np.geomspace(0.5, 100, 200) if temperatures is None else np.asarray(temperatures, float)
    q = torch.stack([softmax_with_temperature(z, float(t)) for t in temperatures]).numpy()  # checks T > 0
    names = class_names or [str(i) for i in range(z.numel())]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, scale in zip(axes, ("linear", "log")):
        for i, name in enumerate(names):
            ax.plot(temperatures, q[:, i], label=f"{name} (z = {z[i].item():.3g})")
        for t in marked:
            ax.axvline(t, color="grey", linestyle=":", linewidth=1)
            ax.text(t, 1.0, f" T={t:g}", color="grey", fontsize=8, va="top")
        ax.set(xscale="log", yscale=scale, xlabel="temperature T", ylabel="probability q_i",
               ylim=(max(q.min(), 1e-12) if scale == "log" else 0, 1.05))
    axes[0].set_title("softmax(z / T)")
    axes[1].set_title("the same, log scale")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
