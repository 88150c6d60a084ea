"""`lifelong learn` and `lifelong predict`: a saved learner (a run's learner.pt, or Learner.save's file) learns the
next task from an image folder or an .npz, or predicts the labels of new inputs."""

import os
import sys
from contextlib import nullcontext
from pathlib import Path

from .arguments import add_threads, key_value, layer_sizes, seed, side, whole


def add_learn_parser(subparsers) -> None:
    learn = subparsers.add_parser(
        "learn", help="teach a saved learner a new task (or start one): new classes, no old data needed",
        description="Learn the next task from DATA (an image folder, one sub-folder per class, or an .npz file with "
                    "arrays x and y) and save the learner. LEARNER is a file written by `lifelong run` "
                    "(RUN/learner.pt), by `lifelong learn` or by Learner.save; if it does not exist, a new learner "
                    "is started with --method and the options.")
    learn.add_argument("learner", help="the saved learner (read, then written back unless --out)")
    learn.add_argument("--data", required=True, help="an image folder (one sub-folder per class) or an .npz (x, y)")
    learn.add_argument("--size", type=side, help="resize an image folder's images to SIZE x SIZE")
    learn.add_argument("--out", help="write the learner here instead of over LEARNER")
    learn.add_argument("--method", help="a new learner's method (default finetune)")
    learn.add_argument("--setting", help="a new learner's setting (default class)")
    learn.add_argument("--backbone", choices=("mlp", "resnet20", "resnet32"), help="a new learner's model (mlp)")
    learn.add_argument("--hidden", help="a new learner's MLP hidden sizes (default 400,400)")
    learn.add_argument("--memory", type=whole, metavar="N", help="a new learner's exemplar budget")
    learn.add_argument("--memory-per-class", type=whole, metavar="M", help="a new learner's exemplars per class")
    learn.add_argument("--param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                       help="a new learner's method option (repeatable)")
    learn.add_argument("--epochs", type=whole, help="a new learner's epochs per task (default 4)")
    learn.add_argument("--lr", type=float, help="a new learner's learning rate (default 0.001, Adam)")
    learn.add_argument("--seed", type=seed, help="a new learner's seed (default 0)")
    learn.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(learn)


def add_predict_parser(subparsers) -> None:
    predict = subparsers.add_parser(
        "predict", help="labels of new inputs from a saved learner (and accuracy)",
        description="Predict the label of every input in DATA (an image folder or an .npz with x, and y if known) with "
                    "a saved learner; with labels, also the accuracy. --out writes index,prediction[,label] as CSV.")
    predict.add_argument("learner", help="a saved learner")
    predict.add_argument("--data", required=True,
                         help="a folder of images (or of one sub-folder per class: the accuracy too), or an .npz (x, "
                              "and optionally y)")
    predict.add_argument("--size", type=side, help="resize an image folder's images to SIZE x SIZE")
    predict.add_argument("--task", type=whole, help="the task id (task setting only)")
    predict.add_argument("--out", help="a CSV file for the predictions")
    add_threads(predict)


def read_cli_data(path: str, size: int | None, need_labels: bool = True):
    """(inputs, labels or None) of an image folder or an .npz file with arrays x (and y)."""
    from ..data.user import read_npz, read_user_data
    from ..errors import ConfigError

    source = Path(path)
    if source.is_dir():
        return read_user_data(source, size=size)
    if source.suffix != ".npz" or not source.is_file():
        raise ConfigError(f"--data {path}: give an image folder (one sub-folder per class) or an .npz file")
    return read_npz(source, need_labels)


def command_learn(args) -> int:
    """`lifelong learn`, the learner's file locked from reading it to saving it: a second `lifelong learn` of the
    same file is refused at once, rather than both saving and the classes one of them learned being lost."""
    from ..storage import lock_beside

    target = Path(args.out or args.learner)
    with nullcontext() if target.is_dir() else lock_beside(target):  # a folder: refused in learn_and_save
        return learn_and_save(args)


def learn_and_save(args) -> int:
    from ..data.user import read_images
    from ..errors import ConfigError
    from ..learner import Learner

    new = {k: v for k, v in (("method", args.method), ("setting", args.setting), ("backbone", args.backbone),
                             ("hidden", args.hidden), ("memory", args.memory),
                             ("memory_per_class", args.memory_per_class), ("epochs", args.epochs), ("lr", args.lr),
                             ("seed", args.seed)) if v is not None}
    if args.param:
        new["param"] = args.param
    target = Path(args.out or args.learner)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder: give the learner's file path")
    if Path(args.learner).exists():
        if new:
            raise ConfigError(f"{args.learner} already has its method and options; leave out "
                              f"{', '.join('--' + k.replace('_', '-') for k in new)}")
        learner = Learner.load(args.learner)
    else:
        options = {**dict(args.param), **{k: v for k, v in new.items() if k in ("memory", "memory_per_class",
                                                                                   "epochs", "lr")}}
        learner = Learner(args.method or "finetune", args.backbone, args.setting or "class",
                          hidden=layer_sizes(args.hidden or "400,400"), seed=args.seed or 0, **options)
    size = image_size(args, learner)
    if Path(args.data).is_dir() and "input_shape" in learner.spec:  # a learner that has learned: its grey or colour
        files, y = list_prediction_images(args.data, size)
        if y is None:
            raise ConfigError(f"{args.data} has no class sub-folders: learning needs one sub-folder of images per "
                              "class")
        x = read_images(files, image_mode(learner), size)
    else:
        x, y = read_cli_data(args.data, size)
    learner.config.progress = not args.quiet
    learner.learn(x, y)
    learner.save(target)
    task = learner.tasks[-1]
    print(f"learned task {task.id + 1} ({len(task.classes)} classes: {', '.join(map(str, task.classes[:10]))}"
          f"{' ...' if len(task.classes) > 10 else ''}); the learner knows {len(learner.classes_)} classes; "
          f"accuracy on this task's training data {100 * learner.evaluate(x, y):.1f}%; saved to {target}")
    return 0


def command_predict(args) -> int:
    import csv
    import io

    import numpy as np

    from ..data.user import as_labels, read_images
    from ..learner import Learner, same_labels
    from ..storage import write_text

    if args.out:
        check_predict_out(args)
    learner = Learner.load(args.learner)
    size = image_size(args, learner)
    files = None
    if Path(args.data).is_dir():  # read and predicted a chunk at a time: a folder need not fit in memory
        files, y = list_prediction_images(args.data, size)
        mode = image_mode(learner)
        predictions = np.concatenate([learner.predict(read_images(files[i:i + PREDICT_CHUNK], mode, size), args.task)
                                      for i in range(0, len(files), PREDICT_CHUNK)])
    else:
        x, y = read_cli_data(args.data, size, need_labels=False)
        predictions = learner.predict(x, args.task)
    if args.out:  # written whole, then renamed over --out: never half a file, never through a link there
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(["index"] + (["file"] if files else []) + ["prediction"] + (["label"] if y is not None else []))
        for i, p in enumerate(predictions):
            writer.writerow([i] + ([files[i]] if files else []) + [p] + ([y[i]] if y is not None else []))
        write_text(args.out, table.getvalue())
    else:
        print("\n".join(str(p) for p in predictions))
    if y is not None:  # from the predictions made above, not a second pass
        accuracy = same_labels(predictions, as_labels(y, len(predictions))).mean()
        print(f"accuracy: {100 * accuracy:.2f}% on {len(predictions)} inputs", file=sys.stderr)
    return 0


def check_predict_out(args) -> None:
    """--out is a new CSV file, checked before anything is read: not one of the command's own inputs (the learner,
    --data), not a folder, in a folder that exists."""
    from ..errors import ConfigError

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: give a CSV file's path")
    if not out.resolve().parent.is_dir():
        raise ConfigError(f"--out {out}: its folder {out.parent} does not exist")
    for option, given in (("LEARNER", args.learner), ("--data", args.data)):
        if out.resolve() == Path(given).resolve() or (out.exists() and Path(given).exists()
                                                      and os.path.samefile(out, given)):
            raise ConfigError(f"--out {out} is {option}, an input of this command: give another file for the "
                              "predictions")


PREDICT_CHUNK = 1024  # images read at once by `lifelong predict` on a folder


def list_prediction_images(path, size: int | None):
    """(image files, their labels or None) of a folder to predict: one sub-folder of images per class (labelled:
    the accuracy is reported too) or the images themselves."""
    import numpy as np

    from ..data.user import list_image_folder, list_unlabelled_images

    if any(p.is_dir() and not p.name.startswith(".") for p in Path(path).iterdir()):
        files, labels, classes, _ = list_image_folder(path, size)
        return files, np.asarray(classes)[labels]
    return list_unlabelled_images(path, size)[0], None


def image_size(args, learner) -> int | None:
    """The size to read a folder's images at: --size, else the size a run read its images at (kept in its learner)."""
    return args.size or learner.spec.get("inputs", {}).get("size")


def image_mode(learner) -> str:
    """How a learner saw its images: grey ("L", one channel) or colour ("RGB"); other images are converted."""
    return "L" if learner.spec["input_shape"][0] == 1 else "RGB"
