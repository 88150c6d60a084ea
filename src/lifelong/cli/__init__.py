"""The `lifelong` command: run, list, learn, predict, distill, reproduce, report.

One module per command family, each with its options beside its code: `run` (and `run_checks`, its command line
checked before any training), `reproduce`, `learn` (learn and predict), `distill`, `report`, `listing` (list);
`arguments` holds what they share. Each command imports torch and the library inside its function: `lifelong
--help`, `lifelong list` and a misspelt name answer without torch.

Errors the user can fix (unknown names, bad values, missing data) print one line and exit with code 2.
"""

import argparse
import os
import sys

from .._version import __version__
from ..errors import LifelongError
from . import distill, learn, listing, report, reproduce, run
from .arguments import OneLineErrors, comma_list, set_threads
from .run_checks import check_data_options, methods_named

COMMANDS = {  # name -> what it does; in the order of `lifelong --help`
    "run": run.command_run_in_processes, "list": listing.command_list, "learn": learn.command_learn,
    "predict": learn.command_predict, "distill": distill.command_distill, "reproduce": reproduce.command_reproduce,
    "report": report.command_report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="lifelong", description="Continual (lifelong) learning on PyTorch.",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=run.EXAMPLES)
    parser.add_argument("--version", action="version", version=f"lifelong {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in (run.add_parser, listing.add_parser, learn.add_learn_parser, learn.add_predict_parser,
                       distill.add_parser, reproduce.add_parser, report.add_parser):
        add_parser(subparsers)
    return parser


def check_names(args) -> None:
    """Every method, scenario, setting and reproduction the command line names, checked against the catalogue
    before torch is imported (3 s) or data read: a misspelt name answers at once."""
    from .. import catalog
    from ..errors import ConfigError

    if args.command == "run":
        names = [("method", name, catalog.METHODS) for name in methods_named(args)]
        names += [("setting", setting, catalog.SETTINGS) for setting in comma_list(args.setting or "")]
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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        check_names(args)
        if hasattr(args, "threads"):  # the commands that compute
            set_threads(args.threads)
        return COMMANDS[args.command](args)
    except LifelongError as error:
        print(f"lifelong: error: {' '.join(str(error).splitlines())}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except BrokenPipeError:  # piped into `head`, which has read what it wanted: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
