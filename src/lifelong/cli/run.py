"""`lifelong run`: its options, and the command that trains methods on a scenario and prints the comparison
(the checks of its command line before any training: `run_checks`)."""

import argparse
import os
import sys
import time
from contextlib import nullcontext, redirect_stderr, redirect_stdout
from pathlib import Path

from ..catalog import FEW_SHOT_METHODS
from ..limits import MAX_RUNS
from .arguments import (add_data_dir, add_threads, comma_list, key_value, layer_sizes, numpy_seed, seed, side, threads,
                        whole)
from .run_checks import check_writable, methods_named, options_by_method, parse_seeds

EXAMPLES = """examples:
  lifelong run                                     # every method, class- and task-incremental, on split-digits
  lifelong run --method finetune,joint --scenario split-mnist --setting class --data-dir DATA
  lifelong run --method finetune-fc --param lower_blocks=1 --setting task --epochs 2
  lifelong run --method replay,icarl,bic --memory 2000 --scenario split-mnist --setting class --data-dir DATA
  lifelong run --method finetune --scenario split-cifar100 --n-tasks 10 --data-dir DATA --out runs/cifar
  lifelong run ... --out runs/cifar --resume       # continue an interrupted run (or comparison) where it stopped
  torchrun --nproc_per_node 4 -m lifelong run ...  # one run on 4 processes (data-parallel; --device cuda: 4 GPUs)
"""


def add_parser(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="train methods on a scenario and print the comparison",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Train one or more methods on a sequence of tasks and measure forgetting. With no arguments: "
                    "every method, class- and task-incremental, on split-digits (embedded data, well under a minute).")
    run.add_argument("--method", default="all",
                     help="method name(s), comma-separated, or 'all' (default): every method, the few-shot ones "
                          f"({', '.join(FEW_SHOT_METHODS)}) on the few-shot scenarios (fscil-*) only")
    run.add_argument("--scenario", help="benchmark name (default split-digits)")
    run.add_argument("--data", metavar="FOLDER",
                     help="your own image folder (one sub-folder per class) instead of a benchmark: its classes in "
                          "sorted order (or --class-order-seed), cut into --n-tasks tasks (default 5)")
    run.add_argument("--test-data", metavar="FOLDER",
                     help="with --data: the test images, an image folder whose classes are named as --data's "
                          "(default: --test-fraction of each class, drawn once with seed 0)")
    run.add_argument("--test-fraction", type=float, help="with --data: the share of each class kept for testing "
                                                         "when there is no --test-data (default 0.2)")
    run.add_argument("--size", type=side, help="with --data: resize the images to SIZE x SIZE")
    run.add_argument("--on-disk", action="store_true",
                     help="with --data: leave the images in their files and read them batch by batch (data that do "
                          "not fit in memory); the same numbers as in memory, slower")
    run.add_argument("--data-workers", type=threads,
                     help="with --on-disk: the DataLoader processes that read the images (default 2)")
    run.add_argument("--setting",
                     help="task, domain and/or class, comma-separated (default class,task: each method in those of "
                          "the two it runs in)")
    run.add_argument("--n-tasks", type=whole,
                     help="number of tasks (default: the benchmark's; fscil-omniglot: sessions)")
    run.add_argument("--ways", type=whole, help="fscil-omniglot: new classes per session (default 5)")
    run.add_argument("--shots", type=whole, help="fscil-omniglot: training images per new class (default 5)")
    run.add_argument("--base-classes", type=whole,
                     help="the first task's classes: on a split by classes the other --n-tasks - 1 tasks share the "
                          "rest equally (split-cifar100 --base-classes 50 --n-tasks 6: 50, then 5 steps of 10); "
                          "fscil-omniglot: the base session's (default 60)")
    run.add_argument("--class-order-seed", type=numpy_seed,
                     help="shuffle the class order with this numpy seed (default: the benchmark's order)")
    run.add_argument("--validation-fraction", type=float, default=0.0,
                     help="hold out this fraction of each task's training data for validation (default 0)")
    run.add_argument("--epochs", type=whole, help="epochs per task (default: the benchmark's)")
    run.add_argument("--lr", type=float, help="learning rate")
    run.add_argument("--incremental-epochs", type=whole,
                     help="epochs of every task after the first (FSCIL's few-shot sessions; default: --epochs)")
    run.add_argument("--incremental-lr", type=float, help="learning rate of every task after the first (default: --lr)")
    run.add_argument("--batch-size", type=whole, help="mini-batch size")
    run.add_argument("--optimizer", choices=("sgd", "adam"),
                     help="optimizer (a new one per task, unless --one-optimizer)")
    run.add_argument("--momentum", type=float, help="SGD momentum")
    run.add_argument("--weight-decay", type=float, help="weight decay")
    run.add_argument("--preallocate-head", nargs="?", const="seen", choices=("seen", "all"), default=False,
                     help="class setting: a head with every class's output from the start; 'seen' (alone: the flag "
                          "without a value), unseen classes left out of the loss and the prediction (Hsu et al.'s "
                          "code); 'all', every output in both from the first task (Mammoth's); default: it grows "
                          "task by task")
    run.add_argument("--stream", action="store_true",
                     help="learn each task as a stream: one pass in mini-batches (--batch-size 10 is usual), the "
                          "method never told where a task ends (methods that need it are refused); evaluated after "
                          "each task as usual")
    run.add_argument("--blurry", type=float, metavar="SHARE",
                     help="with --stream: move this share (0 to <1) of each next task's training samples into the "
                          "current task's stream (blurry boundaries; default 0)")
    run.add_argument("--warmup-epochs", type=whole,
                     help="first train the new head alone on frozen features for this many epochs (Li & Hoiem)")
    run.add_argument("--warmup-lr", type=float, help="warm-up learning rate (default: --lr)")
    run.add_argument("--schedule", choices=("none", "step", "cosine"), help="learning-rate schedule within a task")
    run.add_argument("--one-optimizer", action="store_true",
                     help="one optimizer for the whole sequence, its moments carried across tasks (Hsu et al.'s "
                          "code); default: a new one per task")
    run.add_argument("--backbone", choices=("mlp", "resnet20", "resnet32"), help="default: the benchmark's")
    run.add_argument("--hidden", default="400,400", help="MLP hidden layer sizes (default 400,400)")
    run.add_argument("--memory", type=whole, metavar="N",
                     help="methods that keep exemplars (replay, icarl, bic): a total budget of N stored samples, "
                          "shared evenly by the classes seen (iCaRL's rule)")
    run.add_argument("--memory-per-class", type=whole, metavar="M",
                     help="methods that keep exemplars: M stored samples per class instead of a total budget")
    run.add_argument("--param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                     help="a method option, e.g. --param lower_blocks=1 (repeatable)")
    run.add_argument("--seed", type=seed, help="random seed (default 0): same seed, same numbers")
    run.add_argument("--seeds", help="several seeds: a list (0,1,2) or a count (3: seeds 0, 1, 2); each run is kept "
                                     "and the table gives mean +- std over them")
    add_data_dir(run)
    run.add_argument("--device", default="cpu", help="torch device (default cpu)")
    run.add_argument("--out", help="output directory (default: a new folder under runs/)")
    run.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--tensorboard", metavar="DIR",
                     help="also write TensorBoard scalars (loss per epoch, accuracy per task) to DIR/<run>; needs "
                          "pip install 'lifelong[tensorboard]'")
    add_threads(run)


def command_run(args) -> int:
    from dataclasses import replace

    from .. import distributed
    from ..loggers import check_tensorboard, csv_file, progress_line, tensorboard
    from ..experiment import build_method, build_model, run_experiment, train_config
    from ..training import check_stream, check_warmup_used
    from ..methods import METHODS, get_method
    from ..report import comparison_table, write_report, write_summary
    from ..benchmarks import make_scenario
    from ..scenarios import SETTINGS, from_data
    from ..errors import ConfigError
    from ..storage import lock_folder

    if args.tensorboard:
        check_tensorboard()  # an optional package: missing, one line before any data are read
    methods = methods_named(args)
    for name in methods:
        get_method(name)
    settings = comma_list(args.setting or "class,task")
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
    hidden = layer_sizes(args.hidden)
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
                          reset_optimizer=not args.one_optimizer, stream=args.stream or None, blurry=args.blurry)
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
                             few_shot=dict(ways=args.ways, shots=args.shots), base_classes=args.base_classes,
                             stream_batch_size=args.batch_size)

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
        try:
            check_stream(method, config)
        except ConfigError as error:
            if args.method != "all":
                raise
            runs.remove((setting, name))  # `all --stream`: the methods that learn from a stream
            unfit.append(f"{name} ({str(error).split(':')[0]})")
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
    from .. import distributed

    distributed.init(args.device)
    try:
        if distributed.is_main():
            code = command_run(args)
        else:
            with open(os.devnull, "w") as silent, redirect_stdout(silent), redirect_stderr(silent):
                code = command_run(args)
        distributed.finish()  # all end together (not on an error: torchrun stops the others then)
        return code
    finally:
        distributed.close()
