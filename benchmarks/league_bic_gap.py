"""BiC's title claim, "large scale": does the gap between bias-corrected and uncorrected rehearsal grow with the number
of classes? Read from the class-IL league's runs (`lifelong reproduce class-il-league-*`), no training here.

    .venv/bin/python benchmarks/league_bic_gap.py [--results benchmarks/results]

For each league protocol with runs of both rows, on the seeds both have: the accuracy on all classes seen after the
last step of BiC (and of WA's and LUCIR's rows, the corrections that came after it) minus replay's (the same memory,
no correction), against the number of classes (split-MNIST 10, split-Omniglot 200, the whole background set 964), and
within the 964-character run the same gap after each step against the classes seen so far. Writes
benchmarks/results/league_bic_gap.md, .json and .png.
"""

import argparse
import statistics
from pathlib import Path

from _common import RESULTS, save

from lifelong.reproduce_steps import LEAGUE_ROWS, load_runs
from lifelong.reproduce_steps import PROTOCOLS as ALL_PROTOCOLS

PROTOCOLS = tuple(name for name, protocol in ALL_PROTOCOLS.items() if protocol.get("league"))
PLOTTED = ("class-il-league-split-mnist-2000", "class-il-league-split-omniglot", "class-il-league-omniglot-964")
ROWS = ("bic", "wa-code", "lucir")  # each against replay
LEAGUE = tuple(LEAGUE_ROWS)
SUCCESSORS = ("wa", "wa-code", "lucir", "podnet")  # BiC's, compared with it


def gaps(runs: dict, row: str) -> list[tuple[int, list[float], list[int]]]:
    """(seed, the row's accuracy minus replay's after each step in points, classes seen) on the seeds both ran."""
    return [(seed, [100 * (a - b) for a, b in zip(run["accuracy_seen_classes"],
                                                 runs[("replay", seed)]["accuracy_seen_classes"])],
             run["classes_seen"]) for (r, seed), run in sorted(runs.items()) if r == row and ("replay", seed) in runs]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    table = ["| protocol | classes | " + " | ".join(f"{row} minus replay (last step)" for row in ROWS) + " |",
             "|---|---|" + "---|" * len(ROWS)]
    document = {"protocols": {}}
    curves = {}
    for protocol in PROTOCOLS:
        runs = load_runs(args.results, protocol)
        cells, entry = [], {}
        classes = None
        for row in ROWS:
            found = gaps(runs, row)
            last = [g[-1] for _, g, _ in found]
            if found:
                classes = found[0][2][-1]
                std = statistics.stdev(last) if len(last) > 1 else 0.0
                per_seed = ", ".join(f"{v:+.1f}" for v in last)
                cells.append(f"{statistics.mean(last):+.2f} +- {std:.2f} (n={len(last)}: {per_seed})")
                if protocol in PLOTTED:
                    curves[(protocol, row)] = (found[0][2], [statistics.mean(s) for s in zip(*(g for _, g, _ in found))])
            else:
                cells.append("not run")
            entry[row] = {"last_step_gaps": last}
        table.append(f"| {protocol} | {classes or '-'} | " + " | ".join(cells) + " |")
        document["protocols"][protocol] = entry
    lines = ["# BiC's claim at scale: the gap to uncorrected rehearsal against the number of classes", "",
             __doc__.split("\n\n")[2].replace("\n", " "), "", *table]
    if ("class-il-league-omniglot-964", "bic") in curves:
        seen, gap = curves[("class-il-league-omniglot-964", "bic")]
        lines += ["", "Within the 964-character run, BiC minus replay after each step (mean over its seeds):", "",
                  "| classes seen | " + " | ".join(map(str, seen)) + " |", "|---|" + "---|" * len(seen),
                  "| BiC minus replay | " + " | ".join(f"{g:+.1f}" for g in gap) + " |"]
    lines += ["", *last_steps(args.results)]
    save("league_bic_gap", document, "\n".join(lines))
    plot(curves, RESULTS / "league_bic_gap.png")
    print("\n".join(lines))


def last_steps(results: Path) -> list[str]:
    """Every row's accuracy on all classes after the last step, per protocol (mean +- std over its seeds), the best
    row without all the data in bold, and the successors of BiC whose mean is below its."""
    lines = ["## Where each wins: every row after the last step", "",
             "Accuracy (%) on all classes after the last step, mean +- std (n); bold: the best row that does not keep "
             "all the data (joint excluded).", "",
             "| row | " + " | ".join(p.removeprefix("class-il-league-") for p in PROTOCOLS) + " |",
             "|---|" + "---|" * len(PROTOCOLS)]
    means = {}
    for protocol in PROTOCOLS:
        for (row, _), run in load_runs(results, protocol).items():
            means.setdefault((protocol, row), []).append(100 * run["accuracy_seen_classes"][-1])
    best = {p: max((statistics.mean(v), r) for (q, r), v in means.items() if q == p and r != "joint")[1]
            for p in PROTOCOLS if any(q == p for q, _ in means)}
    for row in LEAGUE:
        cells = []
        for protocol in PROTOCOLS:
            values = means.get((protocol, row))
            if not values:
                cells.append("-")
                continue
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cell = f"{statistics.mean(values):.2f} +- {std:.2f} ({len(values)})"
            cells.append(f"**{cell}**" if best.get(protocol) == row else cell)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "Below BiC's mean after the last step (a successor that does not beat it here):", ""]
    for protocol in PROTOCOLS:
        if (protocol, "bic") not in means:
            continue
        bic = statistics.mean(means[(protocol, "bic")])
        below = [f"{row} ({statistics.mean(means[(protocol, row)]) - bic:+.2f})" for row in SUCCESSORS
                 if (protocol, row) in means and statistics.mean(means[(protocol, row)]) < bic]
        lines.append(f"- {protocol.removeprefix('class-il-league-')}: {', '.join(below) or 'none'}")
    return lines


def plot(curves: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelong.plotting import save_png

    fig, ax = plt.subplots(figsize=(7, 4))
    for (protocol, row), (seen, gap) in sorted(curves.items()):
        ax.plot(seen, gap, marker="o", markersize=3, label=f"{row} - replay, {protocol.removeprefix('class-il-league-')}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("number of classes seen (log)")
    ax.set_ylabel("accuracy minus replay's (points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
