"""Reports: a comparison table for the terminal and plots a person would rather look at than read."""

import json
import math
import re
from pathlib import Path

from .errors import ConfigError, DataError
from .plotting import line_styles, save_png
from .results import mean_spread, write_json
from .storage import replace_atomically, write_text


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
    """How a run was trained, and how its scenario was cut, but for its seed: runs are averaged only when this is
    equal (two runs of one scenario in 5 and in 2 tasks are two rows, not one mean)."""
    config = run.get("config", {})
    cut = run.get("scenario_config") if isinstance(run.get("scenario_config"), dict) else {}
    return {**{k: v for k, v in config.items() if k not in IGNORED},
            **{f"scenario {k}": v for k, v in cut.items() if k not in IGNORED}}


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
    return mean_spread(100 * stats["mean"], 100 * stats["std"], stats["n"], digits=1) if stats["n"] else "-"


def headline(run: dict) -> list[float]:
    """The curve a run is judged by: the average accuracy over the tasks seen after each task, or in a few-shot
    class-incremental run (FSCIL) the accuracy on all classes seen, pooled, as those papers report it (a base
    session of 60 classes weighs more than a session of 5)."""
    few_shot = run.get("scenario_config", {}).get("kind") == "few-shot"
    return run["accuracy_seen_classes"] if few_shot else run["average_accuracy"]


def headline_name(results: list[dict]) -> str:
    few_shot = any(r.get("scenario_config", {}).get("kind") == "few-shot" for r in results)
    return "accuracy on all classes seen" if few_shot else "average accuracy"


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
                     f"{_mean_std([headline(r)[-1] for r in runs]):>12} "
                     f"{_mean_std([r['final_forgetting'] for r in runs]):>12} "
                     f"{_mean_std([r['backward_transfer'] for r in runs]):>12}  {seeds}")
    return "\n".join(lines)


def _run_table(results: list[dict]) -> str:
    first = results[0]
    n_tasks = len(first["accuracy_matrix"])
    curve_width = 6 * n_tasks
    lines = [f"{first['scenario']}: {n_tasks} tasks, seed {first['seed']}; accuracy in % "
             "(task-aware in the task setting, over all seen outputs otherwise)",
             f"{'setting':<8} {'method':<20} {headline_name(results) + ' after each task':<{curve_width}} "
             f"{'final':>6} {'forget':>6} {'BWT':>6} {'time':>7}"]
    for r in results:
        curve = " ".join(_pct(a) for a in headline(r))
        done = re.match(r"running: (\d+) of (\d+)", r.get("status", "complete"))  # a run that has not finished
        method = f"{r['method']} ({done[1]}/{done[2]} tasks)" if done else r["method"]
        lines.append(f"{r['setting']:<8} {method:<20} {curve:<{curve_width}} {_pct(headline(r)[-1]):>6} "
                     f"{_pct(r['final_forgetting']):>6} {_pct(r['backward_transfer']):>6} {r['wall_time_s']:6.1f}s")
    return "\n".join(lines)


def write_summary(out_dir, results: list[dict]) -> None:
    """summary.json (the headline numbers of every run, and their mean and std over seeds per scenario, setting
    and method) and summary.txt (the table) in `out_dir`."""
    out_dir = Path(out_dir)
    keys = ("method", "setting", "scenario", "seed", "average_accuracy", "final_average_accuracy",
            "accuracy_seen_classes", "final_forgetting", "backward_transfer", "wall_time_s")
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["setting"], r["method"]), []).append(r)
    aggregated = [{"scenario": scenario, "setting": setting, "method": method, "n": len(runs),
                   "seeds": [r["seed"] for r in runs],
                   **{key: _stats([r[key] for r in runs]) for key in ("final_average_accuracy", "final_forgetting",
                                                                     "backward_transfer")},
                   "final_accuracy_seen_classes": _stats([r["accuracy_seen_classes"][-1] for r in runs])}
                  for (scenario, setting, method), runs in groups.items()]
    write_json(out_dir / "summary.json", {"runs": [{k: r[k] for k in keys} for r in results],
                                          "over_seeds": aggregated})
    write_text(out_dir / "summary.txt", comparison_table(results) + "\n")


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
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is damaged (not valid JSON: {error.msg}, line {error.lineno}): rerun that run, "
                        "or resume it (lifelong run ... --out DIR --resume) to rewrite it") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is damaged (not UTF-8 text: byte {error.start}): rerun that run, or resume it "
                        "(lifelong run ... --out DIR --resume) to rewrite it") from None
    except (ValueError, RecursionError) as error:  # an integer of thousands of digits, lists nested thousands deep
        raise DataError(f"{path} is not a results file of lifelong run ({type(error).__name__}: "
                        f"{str(error)[:80]})") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror or error})") from None
    missing = [key for key in REQUIRED if not isinstance(document, dict) or key not in document]
    if missing:
        raise DataError(f"{path} is not a results file of lifelong run (no {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''}): give the --out folder of a run")
    check_results(document, path)
    return document


def _is_number(value) -> bool:
    """An int or float that a float holds (JSON's integers have no bound; 10**400 is no accuracy)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def check_results(document: dict, path) -> None:
    """What the table and the plots read of a results document, of the types `lifelong run` writes: a document of
    other types is refused in one line, not met as a TypeError in the middle of a plot."""
    def refuse(what: str):
        raise DataError(f"{path} is not a results file of lifelong run, or was altered: {what}")

    for key in ("method", "setting", "scenario"):
        if not isinstance(document[key], str):
            refuse(f"its {key} is not text")
    try:  # a string JSON decodes from an escape (\udcff) that no UTF-8 page or terminal can show
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        refuse("it holds text that is not valid Unicode")
    if isinstance(document["seed"], bool) or not isinstance(document["seed"], int):
        refuse("its seed is not an integer")
    matrix = document["accuracy_matrix"]
    if not isinstance(matrix, list) or not matrix or not all(
            isinstance(row, list) and len(row) == len(matrix) and all(v is None or _is_number(v) for v in row)
            for row in matrix):
        refuse("its accuracy_matrix is not a square matrix of accuracies")
    # a task done (row i holds accuracies) was evaluated on itself and every task before it
    if any(row != [None] * len(row) and not all(_is_number(v) for v in row[:i + 1]) for i, row in enumerate(matrix)):
        refuse("its accuracy_matrix lacks accuracies of a task it has done")
    few_shot = isinstance(document.get("scenario_config"), dict) and \
        document["scenario_config"].get("kind") == "few-shot"
    for key in ("average_accuracy", "accuracy_seen_classes"):
        curve = document.get(key)
        if (key in document or few_shot) and not (isinstance(curve, list) and 1 <= len(curve) <= len(matrix)
                                                  and all(_is_number(v) for v in curve)):
            refuse(f"its {key} is not a list of accuracies, one per task done")
    for key in ("final_average_accuracy", "final_forgetting", "backward_transfer"):
        if document[key] is not None and not _is_number(document[key]):
            refuse(f"its {key} is not a number")
    if not _is_number(document["wall_time_s"]):
        refuse("its wall_time_s is not a number")
    for key, kind in (("status", str), ("config", dict), ("scenario_config", dict), ("task_classes", list)):
        if key in document and not isinstance(document[key], kind):
            refuse(f"its {key} is not a {kind.__name__}")
    if not isinstance(document.get("config", {}).get("extra", {}), dict):
        refuse("its config's extra is not a dict")
    classes = document.get("task_classes", matrix)
    if len(classes) != len(matrix) or not all(isinstance(c, list) for c in classes):
        refuse("its task_classes are not one list of classes per task")


BAND = "line: mean over seeds; band: min..max over seeds"


def _styles_by_label(groups) -> dict[str, dict]:
    """One style per method label, the same in every panel (lwf in the class panel and the task panel alike)."""
    labels = list(dict.fromkeys(label for _, label in groups))
    return dict(zip(labels, line_styles(len(labels))))


def _plain(name) -> str:
    """A name from the results (a scenario named after a folder, a method, a setting) drawn as written: matplotlib
    reads text between two $ as math, and a folder named $\\undefinedcmd{x}$ stopped the whole report; an escaped
    $ is drawn as a plain $."""
    return str(name).replace("$", r"\$")


def _legend_label(label: str, runs: list[dict]) -> str:
    return _plain(f"{label} (n={len(runs)})" if len(runs) > 1 else label)


def _x_axis(run: dict) -> tuple[list[int], str]:
    """Class-incremental runs against the number of classes seen (the iCaRL/BiC figures), others against tasks."""
    if run["setting"] == "class" and run.get("task_classes"):
        sizes = [len(c) for c in run["task_classes"]]
        return [sum(sizes[:k + 1]) for k in range(len(sizes))], "classes seen"
    return list(range(1, len(run["accuracy_matrix"]) + 1)), "tasks learned"


def _band(ax, x, curves: list[list[float]], style: dict, label: str) -> None:
    """The mean of `curves` as a line, and their min..max as a shaded band when there are several; a curve of a
    run still running is cut to the tasks that every run has done."""
    import numpy as np

    length = min(len(c) for c in curves)
    values = np.array([c[:length] for c in curves], dtype=float)
    x = x[:length]
    ax.plot(x, np.nanmean(values, axis=0), label=label, markersize=4, linewidth=1.5, **style)
    if len(curves) > 1:
        ax.fill_between(x, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=style["color"], alpha=0.15,
                        linewidth=0)


def _legend(fig, axes) -> None:
    """One legend for the panels, outside them on the right (it never covers a curve)."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center", fontsize=8,
                   ncols=1 + len(handles) // 16, frameon=False)


def _panels(fig, results: list[dict]):
    """The runs grouped by (setting, method), a line style per group, and one panel per setting: (groups, styles,
    [(axes, setting), ...])."""
    groups = _by_method(results)
    settings = list(dict.fromkeys(setting for setting, _ in groups))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    return groups, _styles_by_label(groups), list(zip(axes, settings))


def draw_curves(fig, results: list[dict]) -> None:
    """Average accuracy after each task, one panel per setting, one line per method (mean and band over seeds)."""
    groups, styles, panels = _panels(fig, results)
    for ax, setting in panels:
        for (s, label), runs in groups.items():
            if s == setting:
                x, xlabel = _x_axis(runs[0])
                _band(ax, x, [[100 * a for a in headline(r)] for r in runs], styles[label],
                      _legend_label(label, runs))
        ax.set(title=_plain(f"{setting}-incremental"), xlabel=xlabel, ylabel=f"{headline_name(results)} (%)",
               ylim=(0, 101), xticks=x)
        ax.grid(alpha=0.3)
    _legend(fig, [ax for ax, _ in panels])
    seeds = " (" + BAND + ")" if any(len(runs) > 1 for runs in groups.values()) else ""
    title = "Accuracy on all classes seen" if headline_name(results) != "average accuracy" else \
        "Average accuracy on the tasks seen"
    fig.suptitle(f"{title}{seeds}", fontsize=10)


def task_forgetting(matrix: list[list]) -> list[float]:
    """Forgetting of each task but the last after the last task done (Chaudhry et al. 2018): its best accuracy
    before that task minus its accuracy then, in [0, 1]; their mean is `final_forgetting`."""
    rows = [row for row in matrix if row[0] is not None and row[0] == row[0]]  # the tasks done (null or NaN: not)
    last = len(rows) - 1
    return [max(rows[i][j] for i in range(j, last)) - rows[last][j] for j in range(last)]


def draw_forgetting(fig, results: list[dict]) -> None:
    """Forgetting of each task after the last, one panel per setting, one line per method."""
    groups, styles, panels = _panels(fig, results)
    for ax, setting in panels:
        for (s, label), runs in groups.items():
            curves = [[100 * f for f in task_forgetting(r["accuracy_matrix"])] for r in runs]
            if s == setting and min(map(len, curves)) > 0:
                _band(ax, list(range(1, len(curves[0]) + 1)), curves, styles[label], _legend_label(label, runs))
        ax.set(title=_plain(f"{setting}-incremental"), xlabel="task", ylabel="forgetting (points)", ylim=(-5, 101),
               xticks=range(1, len(results[0]["accuracy_matrix"])))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.grid(alpha=0.3)
    _legend(fig, [ax for ax, _ in panels])
    fig.suptitle("Forgetting of each task after the last: its best earlier accuracy minus its final accuracy",
                 fontsize=10)


def draw_matrices(fig, results: list[dict]) -> None:
    """The accuracy matrix `R[i][j]` of each method as a heat map (the mean over seeds), tasks numbered from 1 as
    in the curves, one colour bar for all."""
    import numpy as np

    groups = _by_method(results)
    n_cols = min(len(groups), 5)
    axes = fig.subplots(math.ceil(len(groups) / n_cols), n_cols, squeeze=False).flatten()
    for ax, ((setting, label), runs) in zip(axes, groups.items()):
        R = np.mean([[[np.nan if v is None else 100 * v for v in row] for row in r["accuracy_matrix"]]
                        for r in runs], axis=0)
        image = ax.imshow(R, vmin=0, vmax=100, cmap="viridis")  # a cell not every seed reached stays blank
        if len(R) <= 10:  # beyond, the numbers would not fit their cells
            for (i, j), v in np.ndenumerate(R):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 60 else "black")
        ticks = range(len(R))
        ax.set(title=_plain(f"{label} ({setting}" + (f", mean of {len(runs)} seeds)" if len(runs) > 1 else ")")),
               xlabel="test task j", ylabel="after task i", xticks=ticks, yticks=ticks,
               xticklabels=[j + 1 for j in ticks], yticklabels=[i + 1 for i in ticks])
        ax.title.set_fontsize(8)
    for ax in axes[len(groups):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes[:len(groups)].tolist(), label="accuracy (%)", shrink=min(0.8, 2.5 / len(axes) * n_cols))
    fig.suptitle("Accuracy matrices: R[i][j] = accuracy (%) on task j after learning task i", fontsize=10)


def _figure(draw, results: list[dict]):
    """A figure laid out by matplotlib's constrained layout (titles, labels and the legend never overlap),
    drawn by `draw`, its size from what it holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _by_method(results)
    if draw is draw_matrices:
        n_cols = min(len(groups), 5)
        size = (1.5 + 2.3 * n_cols, 0.6 + 2.4 * math.ceil(len(groups) / n_cols))
    else:  # a panel per setting, and the legend beside them
        size = (min(13.0, 2.5 + 4.5 * len({setting for setting, _ in groups})), 3.8)
    fig = plt.figure(figsize=size, layout="constrained")
    draw(fig, results)
    return fig


def report_figure(results: list[dict]):
    """The curves, the forgetting and the heat maps of one scenario in one figure (report.png), each part a
    sub-figure with its own title, so that no title meets a panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [3.6, 3.6, 0.6 + 2.4 * math.ceil(len(_by_method(results)) / 5)]
    fig = plt.figure(figsize=(13, sum(heights)), layout="constrained")
    for sub, draw in zip(fig.subfigures(3, 1, height_ratios=heights), (draw_curves, draw_forgetting, draw_matrices)):
        draw(sub, results)
    fig.suptitle(_plain(results[0]["scenario"]), fontsize=12, fontweight="bold")
    return fig


def plot(results: list[dict], path) -> None:
    """report.png of one scenario."""
    import matplotlib.pyplot as plt

    fig = report_figure(results)
    save_png(fig, path, dpi=100)
    plt.close(fig)


def file_names(names) -> dict:
    """A file name for each name read from a document (a scenario's, in `report-NAME.png`): letters, digits, '.',
    '_' and '-' kept, any run of other characters one '-', no leading dot, at most 80 characters: a name, never a
    path (`/../../x` is `x`). Two names made alike are told apart (`-2`)."""
    chosen = {}
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).lstrip(".-")[:80] or "scenario"
        candidate, k = stem, 2
        while candidate in chosen.values():
            candidate, k = f"{stem}-{k}", k + 1
        chosen[name] = candidate
    return chosen


def _png(fig) -> str:
    """A figure as a data: URL (a base64 PNG): the page carries its images and needs no network."""
    import base64
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _flat_config(run: dict) -> dict:
    """A run's training configuration, one level deep (backbone, hidden, method options beside epochs, lr...)."""
    config = {k: v for k, v in run.get("config", {}).items() if k not in ("extra", "progress", "seed")}
    for key, value in run.get("config", {}).get("extra", {}).items():
        config[key] = (", ".join(f"{k}={v}" for k, v in value.items()) or "none") if isinstance(value, dict) else value
    return {"status": run.get("status", "complete"), **config}


def config_table(results: list[dict]) -> str:
    """The configuration of every run as an HTML table; what is the same in every run is said once above it."""
    from html import escape

    configs = [_flat_config(r) for r in results]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    same = [k for k in keys if all(c.get(k) == configs[0].get(k) for c in configs)]
    differing = [k for k in keys if k not in same]
    lines = ["<p>The same in every run: " + "; ".join(f"<code>{escape(k)}</code> {escape(str(configs[0].get(k)))}"
                                                        for k in same) + ".</p>"]
    head = ["scenario", "setting", "method", "seed", *differing]
    lines.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for run, config in zip(results, configs):
        cells = [run["scenario"], run["setting"], run["method"], run["seed"], *(config.get(k, "-") for k in differing)]
        lines.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(lines + ["</table>"])


def markdown_to_html(text: str) -> str:
    """The few markdown forms of a reproduction's table file (headings, tables, paragraphs, `code`) as HTML."""
    from html import escape

    def inline(line):
        line = re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(line.strip()))
        return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", line)

    html = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if lines[0].startswith("#"):
            level = min(len(lines[0]) - len(lines[0].lstrip("#")) + 2, 6)  # below the page's own headings
            html.append(f"<h{level}>{inline(lines[0].lstrip('#'))}</h{level}>")
            lines = lines[1:]
        if lines and all(line.startswith("|") for line in lines):
            table = [[inline(c) for c in line.strip().strip("|").split("|")] for line in lines
                     if not re.fullmatch(r"\|[-|: ]+\|", line.strip())]  # the |---| line
            html.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in table[0]) + "</tr>" +
                        "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in table[1:]) +
                        "</table>")
        elif lines:
            html.append("<p>" + " ".join(inline(line) for line in lines) + "</p>")
    return "\n".join(html)


def reproduction_files(folder) -> list[Path]:
    """The paper-against-ours tables that `lifelong reproduce` wrote into `folder` (its --out): their markdown, the
    paper's numbers beside ours, as the reproduction made them."""
    from .reproduce import NAME
    from .reproduce_steps import PROTOCOLS, stem

    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [folder / f"{name}.md" for name in (NAME, *map(stem, PROTOCOLS)) if (folder / f"{name}.md").is_file()]


STYLE = """body { font-family: sans-serif; max-width: 1300px; margin: 1em auto; padding: 0 1em; color: #222 }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; display: block; overflow-x: auto }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; white-space: nowrap }
th { background: #f0f0f0 } pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.85em }
code { font-size: 0.95em }"""


def write_html(path, results: list[dict], reproductions: list[Path] = ()) -> None:
    """report.html: one page, self-contained (images embedded as base64 PNG, no script, nothing fetched), with per
    scenario the comparison table, the curves, the forgetting, the heat maps and every run's configuration; then
    the paper-against-ours tables of the reproductions in `reproductions` (their markdown files)."""
    from html import escape

    body = ["<h1>lifelong report</h1>"]
    if results:
        body.append(f"<p>{len(results)} run(s). Accuracy is task-aware in the task setting and over all outputs seen "
                    f"otherwise. Where a method ran with several seeds: {BAND}.</p>")
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        runs = [r for r in results if r["scenario"] == scenario]
        body.append(f"<h2>{escape(scenario)}</h2><pre>{escape(comparison_table(runs))}</pre>")
        for title, draw in (("Average accuracy", draw_curves), ("Forgetting per task", draw_forgetting),
                            ("Accuracy matrices", draw_matrices)):
            body.append(f'<h3>{title}</h3><img alt="{escape(title)}, {escape(scenario)}" '
                        f'src="{_png(_figure(draw, runs))}">')
        body.append(f"<h3>Configuration of every run</h3>{config_table(runs)}")
    for table in reproductions:
        body.append(f"<h2>Paper against ours: <code>{escape(str(table))}</code></h2>")
        body.append(markdown_to_html(table.read_text()))
        figure = table.with_suffix(".png")  # the BiC reproductions draw theirs
        if figure.is_file():
            import base64

            data = base64.b64encode(figure.read_bytes()).decode("ascii")
            body.append(f'<img alt="{escape(figure.name)}" src="data:image/png;base64,{data}">')
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>lifelong report</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    write_text(path, page)


def report(*paths, out=None) -> str:
    """The comparison of the runs at `paths` (run folders or results.json files; several invocations together,
    each scenario apart, and the folders of `lifelong reproduce` for their paper-against-ours tables): writes
    report.html (self-contained) and a report.png per scenario into `out` (default: beside the first path);
    returns the table and where the files are."""
    reproductions = [table for path in paths for table in reproduction_files(path)]
    # a reproduction's folder has its tables and no results.json: only runs' folders are searched for results
    results = [r for path in paths if _has_results(path) or not reproduction_files(path) for r in load_results(path)]
    folder = Path(out) if out is not None else Path(paths[0]) if Path(paths[0]).is_dir() else Path(paths[0]).parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file: give a folder for report.html and report.png (it is created "
                          "if needed)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write to --out {folder} ({error.strerror or error}): choose another folder") \
            from None
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    names = file_names(scenarios)  # a scenario's name comes from a file read: made a safe name, never a path
    figures = []
    for scenario in scenarios:
        figure = folder / ("report.png" if len(scenarios) == 1 else f"report-{names[scenario]}.png")
        plot([r for r in results if r["scenario"] == scenario], figure)
        figures.append(str(figure))
    write_html(folder / "report.html", results, reproductions)
    text = [comparison_table(results)] if results else []
    text += [table.read_text() for table in reproductions]
    where = f"report: {folder / 'report.html'}" + (f" (plots: {', '.join(figures)})" if figures else "")
    return "\n\n".join(text + [where])


def write_report(folder, results: list[dict]) -> None:
    """The end of `lifelong run`: report.html (the plots embedded) in the run's folder."""
    write_html(Path(folder) / "report.html", results)


def _has_results(path) -> bool:
    path = Path(path)
    return path.is_file() or any(path.glob("**/results.json"))


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
    save_png(fig, path, dpi=110)
    plt.close(fig)
