"""`lifelong reproduce NAME`: rerun a paper's table (`lifelong.reproduce`, `lifelong.reproduce_steps`), the paper's
numbers and ours side by side."""

import sys
from pathlib import Path

from ..limits import MAX_RUNS, MAX_SEED
from .arguments import add_data_dir, add_threads, comma_list, seed, threads, whole


def add_parser(subparsers) -> None:
    reproduce = subparsers.add_parser(
        "reproduce", help="rerun a paper's table: the paper's mean +- std and ours side by side",
        description="hsu2018-split-mnist: Hsu et al. 2018, Table 2 (split-MNIST, MLP 400-400, 4 epochs per task, "
                    "Adam 0.001; task-, domain- and class-IL), with the paper's coefficients. Writes "
                    "OUT/hsu2018_split_mnist.md and .json; each run is saved as it finishes and the same command "
                    "continues an interrupted reproduction. About 10-70 s per run on 2 CPU cores. "
                    "wu2019-bic-cifar100: Wu et al. 2019, Table 6 (CIFAR-100, 5 steps of 20 classes, ResNet-32, "
                    "2,000 exemplars, 250 epochs per step: a GPU, or --epochs to scale down), writes "
                    "OUT/wu2019_bic_cifar100.md, .json and .png. "
                    "hou2019-lucir-cifar100-5 and -10, zhao2020-wa-cifar100, douillard2020-podnet-cifar100-25 and "
                    "-50: LUCIR, WA and PODNet on CIFAR-100 (ResNet-32, 50 classes then 5 to 50 steps; WA 5 x 20), "
                    "the papers' recipes, their average incremental accuracy beside ours (a GPU, or --epochs). "
                    "buzzega2020-der: Buzzega et al. 2020 (DER), Tables 2 and 3 on MNIST (P-MNIST, R-MNIST, S-MNIST "
                    "class- and task-IL, MNIST-360; buffers 200 / 500 / 5120, MNIST-360 1000), one epoch, Mammoth's "
                    "best_args; --rows, --benchmarks; writes OUT/buzzega2020_der.md and .json.")
    reproduce.add_argument("name", help="the table: hsu2018-split-mnist, wu2019-bic-cifar100 (or wu2019-bic-split-mnist, "
                                        "-split-fashion, -split-omniglot: BiC's ablation on the data here), "
                                        "tao2020-fscil-cifar100, fscil-omniglot, fscil-mini-imagenet, fscil-cub200, "
                                        "hou2019-lucir-cifar100-5, zhao2020-wa-cifar100, "
                                        "douillard2020-podnet-cifar100-25, buzzega2020-der, ... (see `lifelong list`)")
    reproduce.add_argument("--methods", help="rows, comma-separated (default: the paper's; Hsu: finetune,lwf,joint,l2,"
                                             "ewc,online-ewc,si,mas; BiC: baseline-1,baseline-2,bic,upper-bound; "
                                             "FSCIL: every row: ft-cnn,joint-cnn,icarl,ncm,prototype,topic and its ablation, "
                                             "cec, fact; fscil-mini-imagenet, fscil-cub200: prototype,fact; WA: wa,wa-code)")
    reproduce.add_argument("--rows", help="buzzega2020-der's rows, comma-separated (default all: sgd,online-ewc,si,"
                                          "lwf,er,a-gem,icarl,der,der++,er-ace,gdumb,task-free-mas,joint)")
    reproduce.add_argument("--benchmarks", help="buzzega2020-der's benchmarks (default all: p-mnist,r-mnist,"
                                                "s-mnist-class,s-mnist-task,mnist-360)")
    reproduce.add_argument("--buffers", help="buzzega2020-der's buffer sizes to run, comma-separated (default all: "
                                             "200,500,5120; MNIST-360 200,500,1000)")
    reproduce.add_argument("--setting", help="Hsu et al.'s settings (default task,domain,class)")
    reproduce.add_argument("--seeds", type=whole, help="number of seeds (default 5: 0 .. 4; PODNet's protocols 3: "
                                                       "seed s runs its class order s mod 3)")
    reproduce.add_argument("--first-seed", type=seed, default=0, help="first seed (default 0)")
    reproduce.add_argument("--epochs", type=whole, help="epochs per task (default: the protocol's; FSCIL: the base "
                                                       "session's and every session's), to scale a run down")
    add_data_dir(reproduce)
    reproduce.add_argument("--device", default="cpu", help="torch device (default cpu)")
    reproduce.add_argument("--out", help="output directory (default runs/NAME)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress lines")
    add_threads(reproduce, "; with --workers N: each worker's, default cores // N")
    reproduce.add_argument("--workers", type=threads, default=1,
                           help="runs at once on this machine, each in its own process with its share of the cores "
                                "(and its own GPU where there are several); the same files and table (default 1)")
    reproduce.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                           help="each run a Ray task: alone, a single-node Ray instance here; with ADDRESS "
                                "(auto, ray://host:10001) a running cluster (pip install 'lifelong[ray]')")


def command_reproduce(args) -> int:
    from ..errors import ConfigError
    from ..grid import require_ray
    from ..reproduce import NAME, PAPER_ROWS, reproduce

    from ..reproduce_steps import PROTOCOLS, reproduce_steps, stem

    if args.seeds is None:  # a protocol may fix its own (PODNet's: its three class orders)
        args.seeds = PROTOCOLS[args.name].get("seeds", 5) if args.name in PROTOCOLS else 5
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
    if args.name == "buzzega2020-der":
        from ..reproduce_der import DEFAULT_BENCHMARKS, NAME as DER_NAME, reproduce as reproduce_der

        if args.setting is not None or args.epochs is not None or args.methods is not None:
            raise ConfigError("buzzega2020-der: choose rows with --rows and benchmarks with --benchmarks (its "
                              "settings and one epoch are the paper's)")
        from ..reproduce_der import ROWS
        from ..methods import METHODS

        rows = comma_list(args.rows) if args.rows else [r for r in ROWS if ROWS[r][1] in METHODS]
        table = out / f"{DER_NAME}.md"
        run_all = lambda: reproduce_der(rows, comma_list(args.benchmarks) if args.benchmarks  # noqa: E731
                                        else list(DEFAULT_BENCHMARKS), list(seeds), out, args.data_dir,
                                        buffers=[int(b) for b in comma_list(args.buffers)] if args.buffers else None,
                                        download=not args.no_download, device=args.device, log=log, **spread)
    elif args.rows is not None or args.benchmarks is not None or args.buffers is not None:
        raise ConfigError("--rows, --benchmarks and --buffers are buzzega2020-der's; the other tables take --methods")
    elif args.name in PROTOCOLS:  # BiC's ablation, FSCIL
        if args.setting is not None:
            raise ConfigError(f"{args.name} is class-incremental only: leave --setting out")
        table = out / f"{stem(args.name)}.md"
        rows = comma_list(args.methods) if args.methods else None
        run_all = lambda: reproduce_steps(args.name, rows, list(seeds), out,  # noqa: E731
                                          args.data_dir, download=not args.no_download, epochs=args.epochs,
                                          device=args.device, log=log, **spread)
    else:
        table = out / f"{NAME}.md"
        run_all = lambda: reproduce(args.name, comma_list(args.methods or PAPER_ROWS),  # noqa: E731
                                    comma_list(args.setting or "task,domain,class"), seeds, out, args.data_dir,
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
