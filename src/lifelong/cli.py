"""The `lifelong` command: run, list, report, distill, reproduce.

Errors the user can fix (unknown names, bad values, missing data) print one line and exit with code 2.
"""

import argparse
import os
import sys
import time
from contextlib import nullcontext, redirect_stderr, redirect_stdout
from pathlib import Path

from . import __version__
from .errors import LifelongError
from .limits import MAX_INT, MAX_RUNS, MAX_SEED, MAX_SIZE, MAX_THREADS

EXAMPLES = """examples:
  lifelong run                                     # every method, class- and task-incremental, on split-digits
  lifelong run --method finetune,joint --scenario split-mnist --setting class --data-dir DATA
  lifelong run --method finetune-fc --param lower_blocks=1 --setting task --epochs 2
  lifelong run --method replay,icarl,bic --memory 2000 --scenario split-mnist --setting class --data-dir DATA
  lifelong run --method finetune --scenario split-cifar100 --n-tasks 10 --data-dir DATA --out runs/cifar
  lifelong run ... --out runs/cifar --resume       # continue an interrupted run (or comparison) where it stopped
  torchrun --nproc_per_node 4 -m lifelong run ...  # one run on 4 processes (data-parallel; --device cuda: 4 GPUs)
"""


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _param(text: str):
    """KEY=VALUE with VALUE read as a Python number, bool or None when it looks like one."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    for convert in (int, float):
        try:
            return key, convert(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False, "none": None}.get(value.lower(), value)


def _bounded(text: str, low: int, high: int, expected: str) -> int:
    """An integer from `low` to `high` (`expected` says so), checked as the command line is read: a number past
    what torch or the machine can hold is refused before any work, not as an overflow deep inside torch."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:30]}")
    return value


def _int(text: str) -> int:
    return _bounded(text, -MAX_INT - 1, MAX_INT, "a whole number between -2**63 and 2**63 - 1 (torch's integers)")


def _seed(text: str) -> int:
    return _bounded(text, 0, MAX_SEED, "a seed from 0 to 2**63 - 1")


def _numpy_seed(text: str) -> int:  # numpy's RandomState draws the class order
    return _bounded(text, 0, 2**32 - 1, "a seed from 0 to 2**32 - 1 (numpy's)")


def _size(text: str) -> int:
    return _bounded(text, 1, MAX_SIZE, f"a side in pixels from 1 to {MAX_SIZE}")


def _threads(text: str) -> int:  # torch takes a C int, and each is a thread or a process (the lower bound: later)
    return _bounded(text, -MAX_THREADS, MAX_THREADS, f"a number of threads or processes up to {MAX_THREADS}")


class OneLineErrors(argparse.ArgumentParser):
    """argparse's errors in the one-line form of every other error: `lifelong: error: ...`, exit code 2."""

    def error(self, message):
        print(f"lifelong: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="lifelong", description="Continual (lifelong) learning on PyTorch.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"lifelong {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="train methods on a scenario and print the comparison",
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                              description="Train one or more methods on a sequence of tasks and measure forgetting. "
                                          "With no arguments: every method, class- and task-incremental, on "
                                          "split-digits (embedded data, well under a minute).")
    run.add_argument("--method", default="all", help="method name(s), comma-separated, or 'all' (default)")
    run.add_argument("--scenario", help="benchmark name (default split-digits)")
    run.add_argument("--data", metavar="FOLDER",
                     help="your own image folder (one sub-folder per class) instead of a benchmark: its classes in "
                          "sorted order (or --class-order-seed), cut into --n-tasks tasks (default 5)")
    run.add_argument("--test-data", metavar="FOLDER",
                     help="with --data: the test images, an image folder whose classes are named as --data's "
                          "(default: --test-fraction of each class, drawn once with seed 0)")
    run.add_argument("--test-fraction", type=float, help="with --data: the share of each class kept for testing "
                                                         "when there is no --test-data (default 0.2)")
    run.add_argument("--size", type=_size, help="with --data: resize the images to SIZE x SIZE")
    run.add_argument("--on-disk", action="store_true",
                     help="with --data: leave the images in their files and read them batch by batch (data that do "
                          "not fit in memory); the same numbers as in memory, slower")
    run.add_argument("--data-workers", type=_threads,
                     help="with --on-disk: the DataLoader processes that read the images (default 2)")
    run.add_argument("--setting",
                     help="task, domain and/or class, comma-separated (default class,task: each method in those of "
                          "the two it runs in)")
    run.add_argument("--n-tasks", type=_int,
                     help="number of tasks (default: the benchmark's; fscil-omniglot: sessions)")
    run.add_argument("--ways", type=_int, help="fscil-omniglot: new classes per session (default 5)")
    run.add_argument("--shots", type=_int, help="fscil-omniglot: training images per new class (default 5)")
    run.add_argument("--base-classes", type=_int, help="fscil-omniglot: classes of the base session (default 60)")
    run.add_argument("--class-order-seed", type=_numpy_seed,
                     help="shuffle the class order with this numpy seed (default: the benchmark's order)")
    run.add_argument("--validation-fraction", type=float, default=0.0,
                     help="hold out this fraction of each task's training data for validation (default 0)")
    run.add_argument("--epochs", type=_int, help="epochs per task (default: the benchmark's)")
    run.add_argument("--lr", type=float, help="learning rate")
    run.add_argument("--incremental-epochs", type=_int,
                     help="epochs of every task after the first (FSCIL's few-shot sessions; default: --epochs)")
    run.add_argument("--incremental-lr", type=float, help="learning rate of every task after the first (default: --lr)")
    run.add_argument("--batch-size", type=_int, help="mini-batch size")
    run.add_argument("--optimizer", choices=("sgd", "adam"),
                     help="optimizer (a new one per task, unless --one-optimizer)")
    run.add_argument("--momentum", type=float, help="SGD momentum")
    run.add_argument("--weight-decay", type=float, help="weight decay")
    run.add_argument("--preallocate-head", action="store_true",
                     help="class setting: a head with every class's output from the start, unseen classes left out "
                          "of the loss and the prediction (Hsu et al.'s code); default: it grows task by task")
    run.add_argument("--warmup-epochs", type=_int,
                     help="first train the new head alone on frozen features for this many epochs (Li & Hoiem)")
    run.add_argument("--warmup-lr", type=float, help="warm-up learning rate (default: --lr)")
    run.add_argument("--schedule", choices=("none", "step", "cosine"), help="learning-rate schedule within a task")
    run.add_argument("--one-optimizer", action="store_true",
                     help="one optimizer for the whole sequence, its moments carried across tasks (Hsu et al.'s "
                          "code); default: a new one per task")
    run.add_argument("--backbone", choices=("mlp", "resnet20", "resnet32"), help="default: the benchmark's")
    run.add_argument("--hidden", default="400,400", help="MLP hidden layer sizes (default 400,400)")
    run.add_argument("--memory", type=_int, metavar="N",
                     help="methods that keep exemplars (replay, icarl, bic): a total budget of N stored samples, "
                          "shared evenly by the classes seen (iCaRL's rule)")
    run.add_argument("--memory-per-class", type=_int, metavar="M",
                     help="methods that keep exemplars: M stored samples per class instead of a total budget")
    run.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                     help="a method option, e.g. --param lower_blocks=1 (repeatable)")
    run.add_argument("--seed", type=_seed, help="random seed (default 0): same seed, same numbers")
    run.add_argument("--seeds", help="several seeds: a list (0,1,2) or a count (3: seeds 0, 1, 2); each run is kept "
                                     "and the table gives mean +- std over them")
    run.add_argument("--data-dir", help="data directory (default: $LIFELONG_DATA, else ~/.cache/lifelong)")
    run.add_argument("--no-download", action="store_true", help="never download missing data files")
    run.add_argument("--device", default="cpu", help="torch device (default cpu)")
    run.add_argument("--out", help="output directory (default: a new folder under runs/)")
    run.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--tensorboard", metavar="DIR",
                     help="also write TensorBoard scalars (loss per epoch, accuracy per task) to DIR/<run>; needs "
                          "pip install 'lifelong[tensorboard]'")
    run.add_argument("--threads", type=_threads, help="torch threads (default: $OMP_NUM_THREADS, else 1: small models "
                        "run fastest on one, and a busy machine slows many threads far more)")

    listing = commands.add_parser("list", help="list the methods and scenarios; --method NAME: its options")
    listing.add_argument("--method", help="show this method's own options (--param KEY=VALUE): defaults, meaning")

    learn = commands.add_parser(
        "learn", help="teach a saved learner a new task (or start one): new classes, no old data needed",
        description="Learn the next task from DATA (an image folder, one sub-folder per class, or an .npz file with "
                    "arrays x and y) and save the learner. LEARNER is a file written by `lifelong run` "
                    "(RUN/learner.pt), by `lifelong learn` or by Learner.save; if it does not exist, a new learner "
                    "is started with --method and the options.")
    learn.add_argument("learner", help="the saved learner (read, then written back unless --out)")
    learn.add_argument("--data", required=True, help="an image folder (one sub-folder per class) or an .npz (x, y)")
    learn.add_argument("--size", type=_size, help="resize an image folder's images to SIZE x SIZE")
    learn.add_argument("--out", help="write the learner here instead of over LEARNER")
    learn.add_argument("--method", help="a new learner's method (default finetune)")
    learn.add_argument("--setting", help="a new learner's setting (default class)")
    learn.add_argument("--backbone", choices=("mlp", "resnet20", "resnet32"), help="a new learner's model (mlp)")
    learn.add_argument("--hidden", help="a new learner's MLP hidden sizes (default 400,400)")
    learn.add_argument("--memory", type=_int, metavar="N", help="a new learner's exemplar budget")
    learn.add_argument("--memory-per-class", type=_int, metavar="M", help="a new learner's exemplars per class")
    learn.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                       help="a new learner's method option (repeatable)")
    learn.add_argument("--epochs", type=_int, help="a new learner's epochs per task (default 4)")
    learn.add_argument("--lr", type=float, help="a new learner's learning rate (default 0.001, Adam)")
    learn.add_argument("--seed", type=_seed, help="a new learner's seed (default 0)")
    learn.add_argument("--quiet", action="store_true", help="no progress bars")
    learn.add_argument("--threads", type=_threads,
                       help="torch threads (default: $OMP_NUM_THREADS, else 1: small models "
                            "run fastest on one, and a busy machine slows many threads far more)")

    predict = commands.add_parser("predict", help="labels of new inputs from a saved learner (and accuracy)",
                                  description="Predict the label of every input in DATA (an image folder or an .npz "
                                              "with x, and y if known) with a saved learner; with labels, also the "
                                              "accuracy. --out writes index,prediction[,label] as CSV.")
    predict.add_argument("learner", help="a saved learner")
    predict.add_argument("--data", required=True,
                         help="a folder of images (or of one sub-folder per class: the accuracy too), or an .npz (x, "
                              "and optionally y)")
    predict.add_argument("--size", type=_size, help="resize an image folder's images to SIZE x SIZE")
    predict.add_argument("--task", type=_int, help="the task id (task setting only)")
    predict.add_argument("--out", help="a CSV file for the predictions")
    predict.add_argument("--threads", type=_threads,
                         help="torch threads (default: $OMP_NUM_THREADS, else 1: small models "
                              "run fastest on one, and a busy machine slows many threads far more)")

    distill = commands.add_parser(
        "distill", help="knowledge distillation: teacher-to-student compression on MNIST (Hinton et al. 2015)",
        description="Hinton, Vinyals & Dean 2015, section 3: a 1200-1200 teacher (dropout, 2-pixel jitter), an "
                    "800-800 student on hard targets, the same student distilled at T = 20, and a distilled student "
                    "that never sees digit 3, before and after raising the bias of class 3. Paper: 67, 146, 74 "
                    "test errors; 206 (133 on 3s), 109 (14 on 3s) with the bias + 3.5. 10 to 20 minutes on 2 CPU cores.")
    distill.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                         help="mnist (default) or scikit-learn's 8x8 digits (embedded; seconds)")
    distill.add_argument("--epochs", type=_int, help="teacher epochs (default 16; the paper trains far longer)")
    distill.add_argument("--student-epochs", type=_int, help="epochs of each student (default 8)")
    distill.add_argument("--temperature", type=float, default=20.0, help="distillation temperature T (default 20)")
    distill.add_argument("--soft-weight", type=float, default=1.0, help="weight of T^2 * soft term (default 1)")
    distill.add_argument("--hard-weight", type=float, default=1.0, help="weight of the hard term (default 1)")
    distill.add_argument("--omit-class", default="3", help="class left out of the transfer set, or 'none' (default 3)")
    distill.add_argument("--bias-shift", type=float, default=3.5, help="raise of that class's bias (default 3.5)")
    distill.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    distill.add_argument("--data-dir", help="data directory (default: $LIFELONG_DATA, else ~/.cache/lifelong)")
    distill.add_argument("--no-download", action="store_true", help="never download missing data files")
    distill.add_argument("--out", help="output directory (default: a new folder under runs/)")
    distill.add_argument("--plot-temperature", metavar="LOGITS",
                         help="only plot class probabilities against T for these comma-separated logits "
                              "(e.g. 3,10) into OUT/temperature.png; no training")
    distill.add_argument("--quiet", action="store_true", help="no progress lines")
    distill.add_argument("--threads", type=_threads,
                         help="torch threads (default: $OMP_NUM_THREADS, else 1: small models "
                              "run fastest on one, and a busy machine slows many threads far more)")

    reproduce = commands.add_parser(
        "reproduce", help="rerun a paper's table: the paper's mean +- std and ours side by side",
        description="hsu2018-split-mnist: Hsu et al. 2018, Table 2 (split-MNIST, MLP 400-400, 4 epochs per task, "
                    "Adam 0.001; task-, domain- and class-IL), with the paper's coefficients. Writes "
                    "OUT/hsu2018_split_mnist.md and .json; each run is saved as it finishes and the same command "
                    "continues an interrupted reproduction. About 10-70 s per run on 2 CPU cores. "
                    "wu2019-bic-cifar100: Wu et al. 2019, Table 6 (CIFAR-100, 5 steps of 20 classes, ResNet-32, "
                    "2,000 exemplars, 250 epochs per step: a GPU, or --epochs to scale down), writes "
                    "OUT/wu2019_bic_cifar100.md, .json and .png.")
    reproduce.add_argument("name", help="the table: hsu2018-split-mnist, wu2019-bic-cifar100 (or wu2019-bic-split-mnist, "
                                        "-split-fashion, -split-omniglot: BiC's ablation on the data here), "
                                        "tao2020-fscil-cifar100, fscil-omniglot (see `lifelong list`)")
    reproduce.add_argument("--methods", help="rows, comma-separated (default: the paper's; Hsu: finetune,lwf,joint,l2,"
                                             "ewc,online-ewc,si,mas; BiC: baseline-1,baseline-2,bic,upper-bound; "
                                             "FSCIL: ft-cnn,joint-cnn,icarl,ncm,prototype,topic)")
    reproduce.add_argument("--setting", help="Hsu et al.'s settings (default task,domain,class)")
    reproduce.add_argument("--seeds", type=_int, default=5, help="number of seeds (default 5: 0 .. 4)")
    reproduce.add_argument("--first-seed", type=_seed, default=0, help="first seed (default 0)")
    reproduce.add_argument("--epochs", type=_int, help="epochs per task (default: the protocol's; FSCIL: the base "
                                                       "session's and every session's), to scale a run down")
    reproduce.add_argument("--data-dir", help="data directory (default: $LIFELONG_DATA, else ~/.cache/lifelong)")
    reproduce.add_argument("--no-download", action="store_true", help="never download missing data files")
    reproduce.add_argument("--device", default="cpu", help="torch device (default cpu)")
    reproduce.add_argument("--out", help="output directory (default runs/NAME)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress lines")
    reproduce.add_argument("--threads", type=_threads,
                           help="torch threads (default: $OMP_NUM_THREADS, else 1: small models "
                                "run fastest on one, and a busy machine slows many threads far more; with --workers N: "
                                "each worker's, default cores // N)")
    reproduce.add_argument("--workers", type=_threads, default=1,
                           help="runs at once on this machine, each in its own process with its share of the cores "
                                "(and its own GPU where there are several); the same files and table (default 1)")
    reproduce.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                           help="each run a Ray task: alone, a single-node Ray instance here; with ADDRESS "
                                "(auto, ray://host:10001) a running cluster (pip install 'lifelong[ray]')")

    report = commands.add_parser("report", help="summarise finished runs: a table, report.html and report.png",
                                 description="The comparison table, and report.html (one self-contained page: "
                                             "curves, forgetting, heat maps, every run's configuration, and the "
                                             "paper-against-ours tables of `lifelong reproduce` folders) with "
                                             "report.png, written to --out (default: the first folder).")
    report.add_argument("path", nargs="+", help="runs' output directories (or results.json files): several invocations "
                                                "compare together, each scenario in its own table")
    report.add_argument("--out", help="write report.html and report.png here (default: the first path's folder)")
    return parser


def _positive_int_list(text: str) -> tuple[int, ...]:
    from .errors import ConfigError
    from .limits import check_mlp
    try:
        sizes = tuple(int(v) for v in _csv(text))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--hidden takes positive layer sizes like 400,400, got {text[:50]!r}")
    check_mlp(1, sizes)  # on inputs of a single value: sizes no machine holds are refused before the data are read
    return sizes


def command_run(args) -> int:
    from dataclasses import replace

    from . import distributed
    from .loggers import check_tensorboard, csv_file, progress_line, tensorboard
    from .experiment import build_method, build_model, run_experiment, train_config
    from .training import check_warmup_used
    from .methods import METHODS, get_method
    from .report import comparison_table, write_report, write_summary
    from .benchmarks import make_scenario
    from .scenarios import SETTINGS, from_data
    from .errors import ConfigError
    from .storage import lock_folder

    if args.tensorboard:
        check_tensorboard()  # an optional package: missing, one line before any data are read
    methods = list(METHODS) if args.method == "all" else _csv(args.method)
    for name in methods:
        get_method(name)
    settings = _csv(args.setting or "class,task")
    for setting in settings:
        if setting not in SETTINGS:
            raise ConfigError(f"unknown setting {setting!r}; choose from: {', '.join(SETTINGS)}")
    memory = {k: v for k, v in (("memory", args.memory), ("memory_per_class", args.memory_per_class)) if v is not None}
    if args.method == "all" and not memory:  # every method that can run without a memory size
        skipped = [name for name in methods if METHODS[name].keeps_exemplars]
        methods = [name for name in methods if name not in skipped]
    if memory and not any(METHODS[name].keeps_exemplars for name in methods):
        raise ConfigError(f"--memory and --memory-per-class are for methods that keep exemplars ("
                          f"{', '.join(n for n, c in METHODS.items() if c.keeps_exemplars)}); "
                          f"{', '.join(methods)} keep none: leave the option out")
    runs = [(setting, name) for setting in settings for name in methods if setting in METHODS[name].settings]
    if args.setting is not None and args.method != "all":
        for setting in settings:
            for name in methods:
                if setting not in METHODS[name].settings:
                    raise ConfigError(f"{name} runs in the {' and '.join(METHODS[name].settings)} setting only, "
                                      f"not {setting}: change --setting")
    if args.resume and not args.out:
        raise ConfigError("--resume needs the --out directory of the run to continue")
    if args.resume and not Path(args.out).is_dir():
        raise ConfigError(f"nothing to resume: {args.out} does not exist; run without --resume to start")
    hidden = _positive_int_list(args.hidden)
    method_options = options_by_method(methods, dict(args.param))
    for name in methods:
        if METHODS[name].keeps_exemplars:
            method_options[name].update(memory)
    benchmark = args.scenario or "split-digits"
    config = train_config("my-data" if args.data else benchmark, epochs=args.epochs, lr=args.lr,
                          batch_size=args.batch_size, optimizer=args.optimizer, momentum=args.momentum,
                          weight_decay=args.weight_decay,
                          schedule=args.schedule, warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr,
                          incremental_epochs=args.incremental_epochs, incremental_lr=args.incremental_lr,
                          device=args.device, progress=not args.quiet,
                          reset_optimizer=not args.one_optimizer)
    seeds = parse_seeds(args.seeds, args.seed)
    if len(runs) * len(seeds) > MAX_RUNS:
        raise ConfigError(f"{len(runs)} method-setting pair(s) times {len(seeds)} seeds make "
                          f"{len(runs) * len(seeds):,} runs, more than the {MAX_RUNS:,} one command runs: split them")

    def scenario_for(seed):
        if args.data is not None:  # your own folder: one split into training and test images, whatever the seed
            return from_data(args.data, n_tasks=5 if args.n_tasks is None else args.n_tasks, x_test=args.test_data,
                             test_fraction=0.2 if args.test_fraction is None else args.test_fraction,
                             class_order_seed=args.class_order_seed, validation_fraction=args.validation_fraction,
                             size=args.size, name=Path(args.data).resolve().name, on_disk=args.on_disk,
                             workers=2 if args.data_workers is None else args.data_workers)
        return make_scenario(benchmark, data_dir=args.data_dir, n_tasks=args.n_tasks, seed=seed,
                             validation_fraction=args.validation_fraction, class_order_seed=args.class_order_seed,
                             download=not args.no_download,
                             few_shot=dict(ways=args.ways, shots=args.shots, base_classes=args.base_classes))

    scenario = scenario_for(seeds[0])
    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}"
    unfit = []
    for setting, name in list(runs):  # every method's options, and its fit to the scenario, before any training
        try:
            method = build_method(name, build_model(scenario, args.backbone, hidden), setting, method_options[name])
            method.check(scenario)
        except ConfigError as error:
            if args.method != "all":
                raise
            runs.remove((setting, name))  # `all`: every method that can run this model (l-mas: Linear layers only)
            unfit.append(f"{name} ({error})")
            continue
        check_warmup_used(method, config, "--warmup-lr", "--warmup-epochs")
    check_writable(out)
    # one writer per --out: a second `lifelong run` into it (with --resume or --seeds too) is refused, naming our pid
    with lock_folder(out) if distributed.is_main() else nullcontext():
        single = len(runs) == 1 and len(seeds) == 1
        for note in dict.fromkeys(unfit):
            print(f"skipped: {note}", file=sys.stderr)
        if args.method == "all" and not memory:
            print(f"{', '.join(skipped)} skipped: they keep exemplars; add --memory N to run them too", file=sys.stderr)
        print(f"{scenario.name}: {len(scenario)} tasks, {sum(len(t.y_train) for t in scenario)} training samples; "
              f"{len(runs) * len(seeds)} run(s); results in {out}", file=sys.stderr)
        all_results = []
        for seed in seeds:
            if seed != seeds[0]:
                scenario = scenario_for(seed)  # the seed also draws validation splits and permutations
            for setting, name in runs:
                run_dir = out if single else out / f"{setting}-{name}"
                run_dir = run_dir / f"seed-{seed}" if len(seeds) > 1 else run_dir
                # an interrupted comparison: the runs it never reached start now
                resume = args.resume and (single or (run_dir / "checkpoint.pt").exists())
                if not args.quiet:
                    print(f"{name} ({setting}-incremental{f', seed {seed}' if len(seeds) > 1 else ''})"
                          f"{' resumed' if resume else ''}", file=sys.stderr)
                try:
                    loggers = [csv_file(run_dir / "metrics.csv")] + ([] if args.quiet else [progress_line(prefix="  ")])
                    if args.tensorboard and distributed.is_main():  # (a writer makes its file when made)
                        loggers.append(tensorboard(Path(args.tensorboard) / (f"{setting}-{name}" if single
                                                                             else run_dir.relative_to(out))))
                    results, learner = run_experiment(name, scenario, setting, out_dir=run_dir, resume=resume,
                                                      backbone=args.backbone, hidden=hidden,
                                                      config=replace(config, seed=seed),
                                                      method_options=method_options[name],
                                                      preallocate_head=args.preallocate_head, return_learner=True,
                                                      loggers=loggers)
                except KeyboardInterrupt:
                    saved = (f"the tasks already finished are saved in {run_dir}"
                             if (run_dir / "checkpoint.pt").exists() else f"no task of {name} had finished")
                    print(f"interrupted: {saved}; add --resume --out {out} to the same command to continue",
                          file=sys.stderr)
                    return 130
                if distributed.is_main():
                    learner.save(run_dir / "learner.pt")  # lifelong learn/predict go on from it
                all_results.append(results)
        print(comparison_table(all_results))
        where = f"{out}/learner.pt" if single else f"{out}/<run>/learner.pt"
        print(f"learners saved as {where}: continue with `lifelong learn {where} --data NEW_DATA`, predict with "
              "`lifelong predict`", file=sys.stderr)
        if not distributed.is_main():
            return 0  # the main process writes the summary and the report
        if not single:
            write_summary(out, all_results)
        write_report(out, all_results)
        print(f"results, metrics.csv and learner.pt in {out}; report: {out / 'report.html'}", file=sys.stderr)
        return 0


def command_run_in_processes(args) -> int:
    """`lifelong run`, on the processes torchrun started when it did (`lifelong.distributed`): every process
    trains, only the main one prints and writes."""
    from . import distributed

    distributed.init(args.device)
    try:
        if distributed.is_main():
            return command_run(args)
        with open(os.devnull, "w") as silent, redirect_stdout(silent), redirect_stderr(silent):
            return command_run(args)
    finally:
        distributed.close()


def parse_seeds(seeds: str | None, seed: int | None) -> list[int]:
    """--seeds as a list (0,1,2) or a count (3: 0, 1, 2); else [--seed] (default 0)."""
    from .errors import ConfigError

    if seeds is None:
        return [0 if seed is None else seed]
    if seed is not None:
        raise ConfigError("give --seed (one run) or --seeds (several), not both")
    try:
        values = [int(v) for v in _csv(seeds)]
    except ValueError:
        raise ConfigError(f"--seeds takes a list like 0,1,2 or a count like 3, got {seeds[:50]!r}") from None
    if len(values) == 1:
        if not 1 <= values[0] <= MAX_RUNS:  # checked before the list is made: --seeds 10**9 would fill the memory
            raise ConfigError(f"--seeds {values[0]}: a count of seeds must be from 1 to {MAX_RUNS:,}")
        values = list(range(values[0]))
    if len(set(values)) != len(values) or min(values) < 0 or max(values) > MAX_SEED:
        raise ConfigError(f"--seeds must be distinct seeds from 0 to 2**63 - 1, got {seeds[:50]!r}")
    return values


def set_threads(threads: int | None) -> int:
    """torch's intra-op threads: --threads, else $OMP_NUM_THREADS, else 1 (on a shared 2-core machine a
    split-MNIST run took 12.5 s on one thread and 99 s on two beside another busy process)."""
    from .errors import ConfigError

    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    cores = os.cpu_count() or 1
    if threads > cores:
        print(f"lifelong: warning: {threads} threads on {cores} cores: they will take turns, which is slower than "
              f"--threads {cores}", file=sys.stderr)
    import torch

    torch.set_num_threads(threads)
    return threads


def check_writable(out: Path) -> None:
    """--out must be a folder this process can write, found before any training."""
    from .errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder (it is created if needed)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write to --out {out} ({error.strerror or error}): choose another folder") from None


def options_by_method(methods: list[str], options: dict) -> dict[str, dict]:
    """--param options go to each of the methods run that accepts them (one command compares several methods);
    an option that none of them accepts is an error (a typo, or an option of another method)."""
    from .errors import ConfigError
    from .methods import METHODS, method_options

    accepted = {name: method_options(METHODS[name]) for name in methods}
    known = set().union(*accepted.values())
    unknown = sorted(set(options) - known)
    if unknown:
        ran = ", ".join(methods)
        raise ConfigError(f"{', '.join(unknown)}: not an option of {ran}; their options: "
                          f"{', '.join(sorted(known)) or 'none'} (`lifelong list --method NAME` explains each method's)")
    return {name: {k: v for k, v in options.items() if k in accepted[name]} for name in methods}


def command_list(args) -> int:
    from . import catalog

    if args.method:
        from .methods import describe_options, get_method

        cls = get_method(args.method)
        print(f"{cls.name}: {catalog.METHODS[cls.name][0]}")
        print(f"settings: {', '.join(cls.settings)}")
        print(describe_options(cls))
        return 0
    print("methods:")
    for name, (description, *_) in catalog.METHODS.items():
        print(f"  {name:<20} {description}")
    print("scenarios:")
    for name, description in catalog.SCENARIOS.items():
        print(f"  {name:<20} {description}")
    print(f"settings: {', '.join(catalog.SETTINGS)} (task-, domain-, class-incremental)")
    print("reproductions (lifelong reproduce NAME):")
    for name, description in catalog.REPRODUCTIONS.items():
        print(f"  {name:<26} {description}")
    return 0


def check_names(args) -> None:
    """Every method, scenario, setting and reproduction the command line names, checked against the catalogue
    before torch is imported (3 s) or data read: a misspelt name answers at once."""
    from . import catalog
    from .errors import ConfigError

    if args.command == "run":
        methods = list(catalog.METHODS) if args.method == "all" else _csv(args.method)
        names = [("method", name, catalog.METHODS) for name in methods]
        names += [("setting", setting, catalog.SETTINGS) for setting in _csv(args.setting or "")]
        if args.data is None:
            names.append(("scenario", args.scenario or "split-digits", catalog.SCENARIOS))
        check_data_options(args)
    elif args.command in ("learn", "list") and getattr(args, "method", None):
        names = [("method", args.method, catalog.METHODS)]
    elif args.command == "reproduce":
        names = [("reproduction", args.name, catalog.REPRODUCTIONS)]
    else:
        names = []
    for kind, name, known in names:
        if name not in known:
            raise ConfigError(catalog.unknown(kind, name, known))


def check_data_options(args) -> None:
    """`lifelong run --data FOLDER` and its options: each one only where it has an effect, the folders there."""
    from .errors import ConfigError

    given = lambda *names: [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, False)]  # noqa: E731
    if args.data is None:
        folder_options = given("test_data", "test_fraction", "size", "on_disk", "data_workers")
        if folder_options:
            raise ConfigError(f"{', '.join(folder_options)} go with --data FOLDER (your own images); a benchmark "
                              "(--scenario) has its own")
        return
    benchmark_options = given("scenario", "ways", "shots", "base_classes", "data_dir", "no_download")
    if benchmark_options:
        raise ConfigError(f"--data FOLDER is your own data set: leave out {', '.join(benchmark_options)} "
                          "(a benchmark's options)")
    if args.test_data is not None and args.test_fraction is not None:
        raise ConfigError("--test-data is the test set: --test-fraction (a share of --data held out) has no effect "
                          "with it; give one of the two")
    if args.data_workers is not None and args.data_workers < 0:
        raise ConfigError(f"--data-workers must be 0 (read in the training process) or more, got {args.data_workers}")
    if args.data_workers is not None and not args.on_disk:
        raise ConfigError("--data-workers sets the processes that read --on-disk images: add --on-disk, or leave "
                          "it out (in memory, nothing is read while training)")
    cores = os.cpu_count() or 1
    if args.data_workers is not None and args.data_workers > cores:  # as --threads: allowed, but said
        print(f"lifelong: warning: {args.data_workers} data workers on {cores} cores: they will take turns, which is "
              f"slower than --data-workers {cores}", file=sys.stderr)
    for option, folder in (("--data", args.data), ("--test-data", args.test_data)):
        if folder is not None and not Path(folder).is_dir():
            raise ConfigError(f"{option} {folder}: not a folder; give an image folder with one sub-folder per class")


def read_cli_data(path: str, size: int | None, need_labels: bool = True):
    """(inputs, labels or None) of an image folder or an .npz file with arrays x (and y)."""
    from .data.user import read_npz, read_user_data
    from .errors import ConfigError

    source = Path(path)
    if source.is_dir():
        return read_user_data(source, size=size)
    if source.suffix != ".npz" or not source.is_file():
        raise ConfigError(f"--data {path}: give an image folder (one sub-folder per class) or an .npz file")
    return read_npz(source, need_labels)


def command_learn(args) -> int:
    """`lifelong learn`, the learner's file locked from reading it to saving it: a second `lifelong learn` of the
    same file is refused at once, rather than both saving and the classes one of them learned being lost."""
    from .storage import lock_beside

    target = Path(args.out or args.learner)
    with nullcontext() if target.is_dir() else lock_beside(target):  # a folder: refused in learn_and_save
        return learn_and_save(args)


def learn_and_save(args) -> int:
    from .data.user import read_images
    from .errors import ConfigError
    from .learner import Learner

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
                          hidden=_positive_int_list(args.hidden or "400,400"), seed=args.seed or 0, **options)
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

    from .data.user import as_labels, read_images
    from .learner import Learner, same_labels
    from .storage import write_text

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
    from .errors import ConfigError

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

    from .data.user import list_image_folder, list_unlabelled_images

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


def command_report(args) -> int:
    from .report import report

    print(report(*args.path, out=args.out))
    return 0


def command_distill(args) -> int:
    from .compression import CompressionConfig, run_compression, summary
    from .data import load_digits, load_mnist
    from .distillation import check_temperature
    from .errors import ConfigError
    from .report import plot_temperature
    from .results import write_json

    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-distill"
    if args.plot_temperature is not None:
        check_temperature(args.temperature)  # the plot marks it
        try:
            logits = [float(v) for v in _csv(args.plot_temperature)]
        except ValueError:
            raise ConfigError(f"--plot-temperature takes comma-separated logits like 3,10, "
                              f"got {args.plot_temperature!r}") from None
        plot_temperature(logits, out / "temperature.png", marked=(1.0, args.temperature))
        print(f"plot: {out / 'temperature.png'}")
        return 0
    omit = None if args.omit_class.lower() == "none" else args.omit_class
    if omit is not None and not omit.isdigit():
        raise ConfigError(f"--omit-class takes a class index or 'none', got {args.omit_class!r}")
    options = dict(temperature=args.temperature, soft_weight=args.soft_weight, hard_weight=args.hard_weight,
                   omit_class=None if omit is None else int(omit), bias_shift=args.bias_shift, seed=args.seed)
    options.update({k: v for k, v in (("teacher_epochs", args.epochs), ("student_epochs", args.student_epochs))
                    if v is not None})
    if args.dataset == "digits":  # 1,257 training images of 8x8: a smaller teacher, student and held-out set
        options.update(teacher_hidden=(256, 256), student_hidden=(64, 64), bias_validation=200, batch_size=32,
                       jitter=1)
    config = CompressionConfig(**options)  # checks every value before the data are read
    loader = load_mnist if args.dataset == "mnist" else load_digits
    data = loader(data_dir=args.data_dir, download=not args.no_download)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    results = run_compression(data, config, log=log)
    write_json(out / "results.json", results)
    print(summary(results))
    print(f"results: {out / 'results.json'}")
    return 0


def command_reproduce(args) -> int:
    from .errors import ConfigError
    from .grid import require_ray
    from .reproduce import NAME, PAPER_ROWS, reproduce

    from .reproduce_steps import PROTOCOLS, reproduce_steps, stem

    if not 1 <= args.seeds <= MAX_RUNS:
        raise ConfigError(f"--seeds must be from 1 to {MAX_RUNS:,}, got {args.seeds}")
    if args.first_seed + args.seeds - 1 > MAX_SEED:
        raise ConfigError(f"--first-seed {args.first_seed} with --seeds {args.seeds} goes past the last seed, "
                          "2**63 - 1")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.ray is not None:
        if args.workers != 1:
            raise ConfigError("--workers is for this machine; with --ray the cluster's free CPUs decide how many "
                              "runs go at once (each asks for --threads CPUs, default 1)")
        require_ray()  # before any work
    spread = dict(workers=args.workers, threads=args.threads if args.workers > 1 or args.ray else None,
                  ray_address=args.ray)
    out = Path(args.out or Path("runs") / args.name)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.name in PROTOCOLS:  # BiC's ablation, FSCIL
        if args.setting is not None:
            raise ConfigError(f"{args.name} is class-incremental only: leave --setting out")
        table = out / f"{stem(args.name)}.md"
        rows = _csv(args.methods) if args.methods else None
        run_all = lambda: reproduce_steps(args.name, rows, list(seeds), out,  # noqa: E731
                                          args.data_dir, download=not args.no_download, epochs=args.epochs,
                                          device=args.device, log=log, **spread)
    else:
        table = out / f"{NAME}.md"
        run_all = lambda: reproduce(args.name, _csv(args.methods or PAPER_ROWS),  # noqa: E731
                                    _csv(args.setting or "task,domain,class"), seeds, out, args.data_dir,
                                    download=not args.no_download, epochs=args.epochs, device=args.device, log=log,
                                    **spread)
    try:
        run_all()
    except KeyboardInterrupt:
        print(f"interrupted: the runs already finished are saved in {out}; the same command continues",
              file=sys.stderr)
        return 130
    print(table.read_text())
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"run": command_run_in_processes, "list": command_list, "report": command_report, "learn": command_learn,
               "predict": command_predict, "distill": command_distill, "reproduce": command_reproduce}[args.command]
    try:
        check_names(args)
        if hasattr(args, "threads"):  # the commands that compute
            set_threads(args.threads)
        return handler(args)
    except LifelongError as error:
        print(f"lifelong: error: {' '.join(str(error).splitlines())}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except BrokenPipeError:  # piped into `head`, which has read what it wanted: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
