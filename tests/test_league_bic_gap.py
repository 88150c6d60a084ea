"""benchmarks/league_bic_gap.py reads the league's runs (no training): a hand-made runs folder gives known gaps, the
best row in bold and the successors below BiC."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import league_bic_gap  # noqa: E402


def write_runs(results: Path, protocol: str, last: dict) -> None:
    folder = results / f"{protocol.replace('-', '_')}_runs"
    folder.mkdir(parents=True)
    for (row, seed), accuracy in last.items():
        run = {"row": row, "seed": seed, "accuracy_seen_classes": [0.9, accuracy], "classes_seen": [2, 4]}
        (folder / f"{row}_{seed}.json").write_text(json.dumps(run))


def test_gaps_the_best_row_and_the_successors_below_bic(tmp_path):
    protocol = "class-il-league-split-mnist-2000"
    write_runs(tmp_path, protocol, {("replay", 0): 0.50, ("replay", 1): 0.60, ("bic", 0): 0.70, ("bic", 1): 0.80,
                                    ("lucir", 0): 0.76, ("wa", 0): 0.40, ("joint", 0): 0.99})
    runs = league_bic_gap.load_runs(tmp_path, protocol)
    gaps = league_bic_gap.gaps(runs, "bic")  # BiC minus replay per seed, in points, after each step
    assert [seed for seed, _, _ in gaps] == [0, 1]
    assert [round(g[-1], 6) for _, g, _ in gaps] == [20.0, 20.0]
    lines = league_bic_gap.last_steps(tmp_path)
    bic = next(line for line in lines if line.startswith("| bic |"))
    lucir = next(line for line in lines if line.startswith("| lucir |"))
    assert "| 75.00 +- 7.07 (2) | - |" in bic  # the other protocols: no runs
    assert "| **76.00 +- 0.00 (1)** |" in lucir  # the best row without all the data (joint's 99 excluded)
    assert "- split-mnist-2000: wa (-35.00)" in lines  # LUCIR's 76.00 beats BiC's mean 75.00: not listed
