"""The loop over a scenario: a learner learns each task in turn, is evaluated on every task seen, and the run is saved.

For each task: the learner learns it (the method's `before_task` hook, epochs of mini-batches, `after_task`; see
`lifelong.learner`), then it is evaluated on the test set of every task seen so far; after each task the results
file and a checkpoint are written, so an interrupted run loses at most the task it was in and `resume=True`
continues from the last finished task with the same numbers as an uninterrupted run. On several processes
(`lifelong.distributed`) every process runs this loop, resumes from the same checkpoint and holds the same
model; only the main one writes.
"""

import math
import pickle
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import distributed, metrics
from .errors import ConfigError, DataError, LifelongError, TrainingError
from .learner import Learner
from .methods import Method
from .results import machine, versions, write_json
from .scenarios import Scenario
from .storage import load_checkpoint, lock_folder, remove_leftovers, save_checkpoint
from .training import TrainConfig, evaluate

RUN_FILES = ("checkpoint.pt", "results.json", "metrics.csv")  # written only by the holder of the run folder's lock


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's: each differing option with both values
    inside a group of options (the training settings), otherwise the name of the differing entry."""
    found = []
    for key, value in now.items():
        if saved.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            found.append(", ".join(f"{k} {saved[key].get(k)!r} then, {v!r} now" for k, v in value.items()
                                   if saved[key].get(k) != v))
        else:
            found.append(key)
    return found


CHECKPOINT = ("completed_tasks", "method", "optimizer", "rng", "history", "fingerprint")  # what `run` writes
HISTORY = ("correct_aware", "correct_agnostic", "counts", "val_aware", "val_agnostic", "val_counts", "train_time_s",
           "eval_time_s")  # a checkpoint's history (and epoch_loss, which older ones lack)


def check_checkpoint(checkpoint, path, n_tasks: int) -> None:
    """A loaded checkpoint.pt, checked before a run resumes from it: a file that loads safely may still be no
    checkpoint (a learner.pt copied there, `{}`, a number)."""
    from .learner import FORMAT

    if isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
        raise DataError(f"{path} is a saved learner (`lifelong learn` and `predict` take it), not a run's checkpoint: "
                        "only a checkpoint that `lifelong run` wrote can be resumed")
    missing = [key for key in CHECKPOINT if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise DataError(f"{path} is not a checkpoint of lifelong run (no {', '.join(missing)}): delete it and run "
                        "again into a new --out")
    done, fingerprint, history = checkpoint["completed_tasks"], checkpoint["fingerprint"], checkpoint["history"]
    if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= n_tasks \
            or not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("train"), dict) \
            or not isinstance(history, dict) or not isinstance(checkpoint["rng"], dict) \
            or not all(isinstance(history.get(key), list) for key in HISTORY):
        raise DataError(f"{path} was altered: its finished tasks, fingerprint or history are not what lifelong run "
                        "writes; delete it and run again into a new --out")


def _fingerprint(scenario: Scenario, method: Method, config: TrainConfig) -> dict:
    """What must be equal for a checkpoint to be resumed."""
    train = {k: v for k, v in asdict(config).items() if k not in ("progress", "eval_batch_size")}
    return {"scenario": scenario.name, "scenario_config": scenario.config, "method": method.name,
            "setting": method.setting, "train": train}


def _nan_matrix(n: int) -> list[list[float]]:
    return [[math.nan] * n for _ in range(n)]


def run(learner: Learner | Method, scenario: Scenario, config: TrainConfig | None = None, out_dir=None,
        resume: bool = False, loggers=()) -> dict:
    """Learn the tasks of `scenario` in order with `learner` (a `Learner`, or a built `Method` with its `config`);
    return (and write, when `out_dir` is given) the results.

    The results hold the accuracy matrix `R[i][j]` (fractions, NaN/null for tasks not yet seen) of the setting
    (task-aware accuracy in the task setting, task-agnostic otherwise) and both matrices, plus the metrics
    derived from it (see `lifelong.metrics`) and the wall time of each task.

    `loggers`: callables given the results document after each task (once it is saved): a progress line, a CSV
    file, TensorBoard, Weights & Biases... (`lifelong.loggers`).
    """
    if isinstance(learner, Method):
        learner = Learner(learner, config=config)
    elif config is not None and config != learner.config:
        raise ConfigError("a Learner brings its own training configuration: pass config=None with it")
    config = learner.config
    empty = [task.id + 1 for task in scenario.tasks if len(task.y_train) == 0]
    if empty:  # found before any training, not hours into a sequence
        raise ConfigError(f"task(s) {', '.join(map(str, empty))} of {scenario.name} have no training samples: "
                          "nothing to learn (a validation_fraction that takes them all?)")
    mixed_for = scenario.config.get("batch_size") if scenario.config.get("ordered") else None
    if config.stream and mixed_for and config.batch_size != mixed_for:  # Mammoth's batches, or none at all
        raise ConfigError(f"{scenario.name}'s stream is mixed batch by batch for batches of {mixed_for}, and the "
                          f"training batch is {config.batch_size}: train with --batch-size {mixed_for}, or build "
                          f"the scenario for yours (make_scenario(..., stream_batch_size={config.batch_size}); "
                          "the command line does)")
    learner.build(scenario.tasks[0].x_train)
    method = learner.method
    method.check(scenario)
    out_dir = Path(out_dir) if out_dir is not None else None
    # one writer per run folder: a second run into it is refused, naming the first one's pid
    with lock_folder(out_dir) if out_dir is not None and distributed.is_main() else nullcontext():
        return _run_tasks(learner, scenario, method, config, out_dir, resume, loggers)


def _run_tasks(learner: Learner, scenario: Scenario, method: Method, config: TrainConfig, out_dir: Path | None,
               resume: bool, loggers) -> dict:
    """`run`'s loop over the tasks, the run folder locked."""
    n_tasks = len(scenario)
    fingerprint = _fingerprint(scenario, method, config)
    history = {"correct_aware": [], "correct_agnostic": [], "counts": [], "val_aware": [], "val_agnostic": [],
               "val_counts": [], "train_time_s": [], "eval_time_s": [], "epoch_loss": []}
    start_task = 0
    checkpoint_path = out_dir / "checkpoint.pt" if out_dir else None

    if not resume and out_dir is not None and any((out_dir / f).exists() for f in ("checkpoint.pt", "results.json")):
        raise ConfigError(f"{out_dir} already holds a run: add --resume (resume=True) to continue it, or choose "
                          "another --out (or delete that directory) to start a new one")
    if resume:
        if checkpoint_path is None or not checkpoint_path.exists():
            raise ConfigError(f"nothing to resume: no checkpoint.pt in {out_dir}; run without --resume to start")
        if distributed.is_main():  # what a killed run was writing (a kill -9 mid-checkpoint leaves it)
            remove_leftovers(out_dir, owned=RUN_FILES)
        try:
            checkpoint = load_checkpoint(checkpoint_path)
        except DataError:  # its digest does not match: damaged, said in one line
            raise
        except pickle.UnpicklingError as error:  # weights_only refused a global: a crafted or foreign file
            raise DataError(f"{checkpoint_path} holds more than tensors and plain data, and loading it could run "
                            f"code, so it was not loaded ({str(error).splitlines()[0]}). Only resume runs that "
                            "lifelong wrote; delete the checkpoint and run again into a new --out") from None
        except (EOFError, OSError, RuntimeError) as error:
            raise DataError(f"{checkpoint_path} cannot be read ({type(error).__name__}: {error}): it is damaged. "
                            "The results.json beside it keeps the finished tasks' numbers; delete the checkpoint "
                            "and run again into a new --out") from None
        check_checkpoint(checkpoint, checkpoint_path, n_tasks)
        saved = checkpoint["fingerprint"]
        # a checkpoint from before a TrainConfig field existed ran with that field's default
        saved["train"] = {**{k: v for k, v in asdict(TrainConfig()).items() if k in fingerprint["train"]},
                          **saved["train"]}
        if saved != fingerprint:
            raise ConfigError(f"the run in {out_dir} was started with other options "
                              f"({'; '.join(_differences(saved, fingerprint))}): "
                              "resume with the same options, or choose another --out")
        start_task = checkpoint["completed_tasks"]
        try:
            learner.load_state_dict(checkpoint, scenario.tasks[:start_task])
        except LifelongError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise DataError(f"{checkpoint_path} was altered: its state does not fit the run it names "
                            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); delete "
                            "it and run again into a new --out") from None
        history = checkpoint["history"]
        history.setdefault("epoch_loss", [[] for _ in range(start_task)])  # a checkpoint from before it was kept
    results = None
    for task in scenario.tasks[start_task:]:
        started = time.perf_counter()
        try:
            learner.learn_task(task, scenario)
        except TrainingError as error:  # the loss became NaN
            raise TrainingError(f"{error} and run again into a new --out (a resume continues only with the same "
                                "options); the tasks finished before this one stay saved in --out") from None
        distributed.check_same(method.model, task.id)
        trained = time.perf_counter()
        seen = scenario.tasks[: task.id + 1]
        test = evaluate(method, seen, config, "test")
        history["correct_aware"].append(test["aware"])
        history["correct_agnostic"].append(test["agnostic"])
        history["counts"] = test["counts"]
        if task.y_val is not None:
            val = evaluate(method, seen, config, "val")
            history["val_aware"].append(val["aware"])
            history["val_agnostic"].append(val["agnostic"])
            history["val_counts"] = val["counts"]
        history["train_time_s"].append(trained - started)
        history["epoch_loss"].append(learner.epoch_losses)
        history["eval_time_s"].append(time.perf_counter() - trained)

        results = build_results(history, scenario, method, config, complete=task.id + 1 == n_tasks)
        if not distributed.is_main():
            continue  # the processes hold the same results: the main one writes them
        if out_dir is not None:  # the checkpoint first: a results.json always has a checkpoint to resume from
            save_checkpoint(checkpoint_path, {"completed_tasks": task.id + 1, **learner.state_dict(),
                                              "history": history, "fingerprint": fingerprint})
            write_json(out_dir / "results.json", results)
        for log in loggers:
            log(results)
    if results is None:  # resumed a run that had already finished
        results = build_results(history, scenario, method, config, complete=True)
    return results


def _accuracy_matrix(correct: list[list[int]], counts: list[int], n_tasks: int) -> list[list[float]]:
    R = _nan_matrix(n_tasks)
    for i, row in enumerate(correct):
        for j, c in enumerate(row):
            R[i][j] = c / counts[j] if counts[j] else math.nan
    return R


def build_results(history: dict, scenario: Scenario, method: Method, config: TrainConfig, complete: bool) -> dict:
    """The results document (see the README for its schema)."""
    n_tasks = len(scenario)
    done = len(history["correct_aware"])
    aware = _accuracy_matrix(history["correct_aware"], history["counts"], n_tasks)
    agnostic = _accuracy_matrix(history["correct_agnostic"], history["counts"], n_tasks)
    main = aware if method.setting == "task" else agnostic
    main_correct = history["correct_aware" if method.setting == "task" else "correct_agnostic"]
    seen_R = np.asarray(main)[:done, :done]
    results = {
        "status": "complete" if complete else f"running: {done} of {n_tasks} tasks done",
        "method": method.name,
        "setting": method.setting,
        "scenario": scenario.name,
        "scenario_config": scenario.config,
        "seed": config.seed,
        "stream": config.stream,  # one pass, task boundaries hidden from the method (evaluated at each)
        "blurry": config.blurry,
        "class_order": scenario.class_order,
        "task_classes": [task.classes for task in scenario.tasks],
        "config": asdict(config),
        "versions": versions(),
        "threads": torch.get_num_threads(),  # results differ (in the last digits) with the thread count
        "machine": machine(),  # and with the CPU and its kernels
        "world_size": distributed.world_size(),  # processes of the run (torchrun), each a share of every batch
        "accuracy_matrix": main,
        "task_aware_accuracy_matrix": aware,
        "task_agnostic_accuracy_matrix": agnostic,
        **metrics.summarize(seen_R),
        "accuracy_seen_classes": metrics.seen_classes_accuracy(
            [row + [0] * (done - len(row)) for row in main_correct], history["counts"][:done]),
        "method_details": method.describe(),
        "test_counts": history["counts"],
        "train_time_s": history["train_time_s"],
        "eval_time_s": history["eval_time_s"],
        "wall_time_s": sum(history["train_time_s"]) + sum(history["eval_time_s"]),
        "epoch_loss": history["epoch_loss"],
    }
    if history["val_aware"]:
        val = history["val_aware" if method.setting == "task" else "val_agnostic"]
        results["validation_accuracy_matrix"] = _accuracy_matrix(val, history["val_counts"], n_tasks)
    return results
