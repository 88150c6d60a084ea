"""The class-IL league (`lifelong reproduce class-il-league-*`): every row with the same memory, the memory-free rows
without one, and the table written end to end."""

import json

from lifelong.cli import main
from lifelong.reproduce_steps import LEAGUE_ROWS, PROTOCOLS, row_options


def test_every_row_that_keeps_exemplars_gets_the_same_memory_and_bic_its_own_validation_share():
    protocol = PROTOCOLS["class-il-league-split-omniglot"]
    options = {row: row_options(protocol, row) for row in LEAGUE_ROWS}
    assert options["finetune"] == {} and options["joint"] == {}
    for row in ("replay", "icarl", "wa", "lucir"):
        assert options[row] == {"memory_per_class": 2}
    assert options["bic"] == {"memory_per_class": 2, "validation_share": 0.5}
    assert options["wa-code"]["memory_per_class"] == 2 and options["wa-code"]["norm"] == "l1"
    assert row_options(PROTOCOLS["class-il-league-split-mnist-200"], "icarl") == {"memory": 200}
    # PODNet: POD-flat alone on the MLP protocols, its spatial distillation on the convolutional one
    assert options["podnet"] == {"memory_per_class": 2, "lambda_spatial": 0.0}
    conv = PROTOCOLS["class-il-league-split-omniglot-conv"]
    assert conv["backbone"] == "resnet20" and row_options(conv, "podnet") == {"memory_per_class": 2}
    # the other tables keep their rule: the protocol's memory for every row
    assert row_options(PROTOCOLS["wu2019-bic-split-mnist"], "baseline-1")["memory"] == 200


def test_the_league_runs_end_to_end(tmp_path, monkeypatch, capsys):
    name = "class-il-league-split-mnist-200"
    monkeypatch.setitem(PROTOCOLS, name, {**PROTOCOLS[name], "scenario": "split-digits", "memory": 50,
                                          "train": dict(epochs=1, lr=0.001, optimizer="adam", batch_size=32)})
    out = tmp_path / "league"
    assert main(["reproduce", name, "--methods", "finetune,replay,wa-code", "--seeds", "1", "--out", str(out),
                 "--quiet"]) == 0
    table = capsys.readouterr().out
    for label in ("fine-tuning (no memory) (ours, n=1)", "WA (the official code's combination) (ours, n=1)"):
        assert label in table
    run = json.loads((out / "class_il_league_split_mnist_200_runs" / "wa-code_0.json").read_text())
    assert run["method_options"]["memory"] == 50 and run["classes_seen"] == [2, 4, 6, 8, 10]
    assert json.loads((out / "class_il_league_split_mnist_200_runs" / "finetune_0.json").read_text())[
        "method_options"] == {}
