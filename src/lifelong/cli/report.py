"""`lifelong report`: finished runs summarised in a table, report.html and report.png (`lifelong.report`)."""


def add_parser(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="summarise finished runs: a table, report.html and report.png",
        description="The comparison table, and report.html (one self-contained page: curves, forgetting, heat maps, "
                    "every run's configuration, and the paper-against-ours tables of `lifelong reproduce` folders) "
                    "with report.png, written to --out (default: the first folder).")
    report.add_argument("path", nargs="+", help="runs' output directories (or results.json files): several invocations "
                                                "compare together, each scenario in its own table")
    report.add_argument("--out", help="write report.html and report.png here (default: the first path's folder)")


def command_report(args) -> int:
    from ..report import report

    print(report(*args.path, out=args.out))
    return 0
