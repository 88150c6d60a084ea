"""benchmarks/class_il_cost.py's bookkeeping (no timing is checked): the stage timer's exclusive nesting on a fake
clock, a method's stages adding up to its training time, the training-set sizes it counts, and the table's rows."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import class_il_cost  # noqa: E402

from lifelong.benchmarks import make_scenario  # noqa: E402


class FakeClock:
    """perf_counter and process_time that move only when `spend` is called."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def spend(self, seconds):
        self.now += seconds


def test_a_nested_stage_is_taken_out_of_the_stage_around_it(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(class_il_cost.time, "perf_counter", clock)
    monkeypatch.setattr(class_il_cost.time, "process_time", clock)

    class Hooks:
        def after_task(self):
            clock.spend(1.0)
            self.update_memory()
            clock.spend(0.5)
            self.update_memory()

        def update_memory(self):
            clock.spend(2.0)
            self.features()

        def features(self):
            clock.spend(0.25)

    hooks, timer = Hooks(), class_il_cost.StageTimer()
    timer.wrap(hooks, "update_memory", "memory")
    timer.wrap(hooks, "after_task", "after")
    hooks.after_task()
    # after: 1 + 0.5 of its own; memory: twice (2 + 0.25, features untimed: counted in the stage that calls it)
    assert timer.wall == pytest.approx({"after": 1.5, "memory": 4.5})
    assert timer.cpu == pytest.approx({"after": 1.5, "memory": 4.5})
    assert not timer.stack


@pytest.fixture(scope="module")
def digits():
    scenario = make_scenario("split-digits")
    return type(scenario)(**{**scenario.__dict__, "tasks": scenario.tasks[:2]})


def test_the_stages_add_up_to_the_training_time_and_the_training_sets_are_counted(digits):
    result = class_il_cost.one_run(digits, "wa", {}, "mlp", 1, 100, 0)
    stages = result["stages_s"]
    assert {"exemplar selection", "weight aligning", "recording the old model's outputs",
            "training (epochs of mini-batches)"} <= set(stages)
    assert sum(stages.values()) == pytest.approx(result["total_s"])
    assert all(seconds >= 0 for seconds in stages.values())
    first, second = (len(task.x_train) for task in digits.tasks)
    assert result["samples_per_task"] == [first, second + 100]  # the second task's data and the memory (100)
    assert result["sample_epochs"] == first + second + 100
    assert len(result["train_time_s"]) == 2 and len(result["cpu_per_task_s"]) == 2


def test_lucir_imprinting_and_fine_tuning_are_stages_of_their_own(digits):
    result = class_il_cost.one_run(digits, "lucir", {"finetune_epochs": 1}, "mlp", 1, 100, 0)
    assert {"imprinting (the new rows)", "balanced fine-tuning", "before the task (old model copied, head grown)",
            "recording the old model's outputs"} <= set(result["stages_s"])


def test_a_case_gives_each_row_its_fastest_repetition_and_the_ratio_to_replay(monkeypatch):
    monkeypatch.setattr(class_il_cost, "data_dir", lambda: None)
    case = dict(scenario="split-digits", tasks=2, backbone="mlp", epochs=1, memory=100,
                rows={"replay": ("replay", {}), "wa": ("wa", {}), "nothing": ("no-such-method", {})})
    result = class_il_cost.run_case("tiny", case, 2)
    assert result["missing"] == ["nothing"] and set(result["best"]) == {"replay", "wa"}
    for row, runs in result["runs"].items():
        assert len(runs) == 2
        assert result["best"][row]["total_s"] == min(run["total_s"] for run in runs)
    assert result["ratio_to_replay"]["replay"] == 1.0
    assert result["ratio_to_replay"]["wa"] == pytest.approx(result["best"]["wa"]["total_s"]
                                                            / result["best"]["replay"]["total_s"])
    result.update(command="python benchmarks/class_il_cost.py", repeats=2)
    lines = class_il_cost.table("tiny", result)
    wa = next(line for line in lines if line.startswith("| wa | wa"))
    assert "<= 1.5:" in wa and "met" in wa
    assert any(line.startswith("| wa | weight aligning |") for line in lines)
    assert lines[-1] == "Not run (method not in this checkout): nothing."


def test_podnet_head_products_count_three_per_training_step_and_two_per_fine_tuning_step(monkeypatch):
    widths = []
    monkeypatch.setattr(class_il_cost, "best_of", lambda product, repeats: widths.append(product().shape) or 1.0)
    shapes = {"batch": 128, "features": 400, "proxies": 10, "classes": [2, 2], "epochs": 4, "finetune_epochs": 20,
              "memory": 2000}
    # task 1: 4 epochs x ceil(300 / 128) = 12 steps x 3 products; task 2: 4 x 2 = 8 steps x 3, then the fine-tuning:
    # 20 epochs x ceil(2000 / 128) = 320 steps x 2 products
    assert class_il_cost.head_products_s(shapes, [300, 256]) == 12 * 3 + 8 * 3 + 320 * 2
    # the similarities (batch, proxies), the features' gradient (batch, features), the proxies' (proxies, features),
    # at the classes seen times K: 20 proxies, then 40
    assert widths == [(128, 20), (128, 400), (20, 400), (128, 40), (128, 400), (40, 400)]


def test_podnet_floor_is_replay_plus_the_stages_replay_has_not_plus_the_head_products(monkeypatch):
    monkeypatch.setattr(class_il_cost, "head_products_s", lambda shapes, samples: 0.75)
    replay = {"total_s": 10.0, "stages_s": {"exemplar selection": 0.5, "training (epochs of mini-batches)": 9.5}}
    podnet = {"total_s": 20.0, "floor_shapes": {}, "samples_per_task": [1, 2],
              "stages_s": {"exemplar selection": 2.5, "imprinting (k-means proxies)": 1.0,
                           "recording the old model's outputs": 0.25, "classifier fine-tuning": 3.0,
                           "training (epochs of mini-batches)": 13.25}}
    slower = {**podnet, "stages_s": {**podnet["stages_s"], "exemplar selection": 3.5,
                                     "imprinting (k-means proxies)": 0.5}}
    floor = class_il_cost.podnet_floor({"best": {"replay": replay, "podnet": podnet},
                                        "runs": {"replay": [replay], "podnet": [podnet, slower]}})
    # 10 + (2.5 - 0.5) + 0.5 + 0.25 + 0.75, each stage its fastest repetition's: the fine-tuning and the training's
    # own work are not in it
    assert floor["floor_s"] == pytest.approx(13.5) and floor["ratio"] == pytest.approx(1.35)
    assert "**1.35x** replay" in " ".join(class_il_cost.floor_lines(floor))
    assert class_il_cost.podnet_floor({"best": {"replay": replay}}) is None  # no PODNet row: no floor
