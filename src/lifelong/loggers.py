"""Loggers: what happens after each task, beyond results.json. A logger is any callable taking the results document
(the same dict as results.json, after `k` tasks: `len(results["train_time_s"])`); `run_experiment(...,
loggers=[...])` and `engine.run` call each one after every task. Plug your own (Weights & Biases, MLflow...) in
a few lines: see the README.
"""

import csv
import io
import math
import sys
from pathlib import Path

from .storage import write_text


def tasks_done(results: dict) -> int:
    return len(results["train_time_s"])


def progress_line(stream=None, prefix: str = ""):
    """One line per finished task: its number, the average accuracy on the tasks seen, the accuracy on the newest
    task, and the time, for a terminal and a log file alike (to `stream`, default the standard error of the moment)."""

    def log(results: dict) -> None:
        k = tasks_done(results)
        n = len(results["accuracy_matrix"])
        newest = results["accuracy_matrix"][k - 1][k - 1]
        print(f"{prefix}task {k}/{n}: average accuracy {100 * results['average_accuracy'][-1]:.1f}% "
              f"(newest task {100 * newest:.1f}%), {results['train_time_s'][-1]:.1f} s training, "
              f"{results['eval_time_s'][-1]:.1f} s evaluation", file=stream or sys.stderr, flush=True)

    return log


def csv_file(path):
    """metrics.csv: a row per finished task with every per-task metric and the accuracy on each task seen; the
    file is rewritten after each task (a resumed run rewrites the rows it already had)."""
    path = Path(path)

    def log(results: dict) -> None:
        k = tasks_done(results)
        n = len(results["accuracy_matrix"])
        header = ["task", "average_accuracy", "accuracy_seen_classes", "forgetting", "train_time_s", "eval_time_s",
                  *(f"accuracy_task_{j + 1}" for j in range(n))]
        rows = []
        for i in range(k):
            forgetting = results["forgetting"][i - 1] if i >= 1 and len(results["forgetting"]) >= i else ""
            accuracy = [results["accuracy_matrix"][i][j] for j in range(n)]
            rows.append([i + 1, results["average_accuracy"][i], results["accuracy_seen_classes"][i], forgetting,
                         results["train_time_s"][i], results["eval_time_s"][i],
                         *("" if a is None or (isinstance(a, float) and math.isnan(a)) else a for a in accuracy)])
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(header)
        writer.writerows(rows)
        write_text(path, table.getvalue())  # atomically: never half a file, never through a link planted there

    return log


TENSORBOARD_MISSING = "--tensorboard needs the tensorboard package: pip install 'lifelong[tensorboard]'"


def check_tensorboard() -> None:
    """Raise one clear ConfigError when the optional tensorboard package is absent (found before any training)."""
    from .errors import ConfigError

    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard writes through it)
    except ImportError:
        raise ConfigError(TENSORBOARD_MISSING) from None


def tensorboard(log_dir):
    """TensorBoard scalars in `log_dir` (`tensorboard --logdir` its parent to compare runs): the mean training loss
    of each epoch (`loss/train`, step: epochs so far), and after each task (step: tasks done) the average
    accuracy, the accuracy on the classes seen, the forgetting and the accuracy on each task seen
    (`accuracy/task_j`). Needs the optional package: pip install 'lifelong[tensorboard]'."""
    check_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    written = 0  # tasks already written (a resumed run writes the tasks it had again, once)

    def log(results: dict) -> None:
        nonlocal written
        k = tasks_done(results)
        losses = results.get("epoch_loss", [])
        for i in range(written, k):
            epoch = sum(len(task) for task in losses[:i])
            for loss in losses[i] if i < len(losses) else []:
                epoch += 1
                writer.add_scalar("loss/train", loss, epoch)
            writer.add_scalar("accuracy/average", results["average_accuracy"][i], i + 1)
            writer.add_scalar("accuracy/seen_classes", results["accuracy_seen_classes"][i], i + 1)
            if i >= 1:
                writer.add_scalar("forgetting", results["forgetting"][i - 1], i + 1)
            for j in range(i + 1):
                writer.add_scalar(f"accuracy/task_{j + 1}", results["accuracy_matrix"][i][j], i + 1)
        written = k
        writer.flush()
        if k == len(results["accuracy_matrix"]):  # the last task: nothing more will come
            writer.close()

    return log
