"""`lifelong distill`: Hinton et al.'s knowledge distillation, a teacher compressed into a student, on MNIST or the
embedded digits (`lifelong.compression`)."""

import sys
import time
from pathlib import Path

from .arguments import add_data_dir, add_threads, comma_list, seed, whole


def add_parser(subparsers) -> None:
    distill = subparsers.add_parser(
        "distill", help="knowledge distillation: teacher-to-student compression on MNIST (Hinton et al. 2015)",
        description="Hinton, Vinyals & Dean 2015, section 3: a 1200-1200 teacher (dropout, 2-pixel jitter), an "
                    "800-800 student on hard targets, the same student distilled at T = 20, and a distilled student "
                    "that never sees digit 3, before and after raising the bias of class 3. Paper: 67, 146, 74 "
                    "test errors; 206 (133 on 3s), 109 (14 on 3s) with the bias + 3.5. 10 to 20 minutes on 2 CPU cores.")
    distill.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                         help="mnist (default) or scikit-learn's 8x8 digits (embedded; seconds)")
    distill.add_argument("--epochs", type=whole, help="teacher epochs (default 16; the paper trains far longer)")
    distill.add_argument("--student-epochs", type=whole, help="epochs of each student (default 8)")
    distill.add_argument("--temperature", type=float, default=20.0, help="distillation temperature T (default 20)")
    distill.add_argument("--soft-weight", type=float, default=1.0, help="weight of T^2 * soft term (default 1)")
    distill.add_argument("--hard-weight", type=float, default=1.0, help="weight of the hard term (default 1)")
    distill.add_argument("--omit-class", default="3", help="class left out of the transfer set, or 'none' (default 3)")
    distill.add_argument("--bias-shift", type=float, default=3.5, help="raise of that class's bias (default 3.5)")
    distill.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    add_data_dir(distill)
    distill.add_argument("--out", help="output directory (default: a new folder under runs/)")
    distill.add_argument("--plot-temperature", metavar="LOGITS",
                         help="only plot class probabilities against T for these comma-separated logits "
                              "(e.g. 3,10) into OUT/temperature.png; no training")
    distill.add_argument("--quiet", action="store_true", help="no progress lines")
    add_threads(distill)


def command_distill(args) -> int:
    from ..compression import CompressionConfig, run_compression, summary
    from ..data import load_digits, load_mnist
    from ..distillation import check_temperature
    from ..errors import ConfigError
    from ..report import plot_temperature
    from ..results import write_json

    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-distill"
    if args.plot_temperature is not None:
        check_temperature(args.temperature)  # the plot marks it
        try:
            logits = [float(v) for v in comma_list(args.plot_temperature)]
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
