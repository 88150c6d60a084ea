"""`lifelong list`: the methods, scenarios and reproductions of the torch-free catalogue (`lifelong.catalog`), and
a method's own options. Without --method it imports no torch, and answers at once."""


def add_parser(subparsers) -> None:
    listing = subparsers.add_parser("list", help="list the methods and scenarios; --method NAME: its options")
    listing.add_argument("--method", help="show this method's own options (--param KEY=VALUE): defaults, meaning")


def command_list(args) -> int:
    from .. import catalog

    if args.method:
        from ..methods import describe_options, get_method

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
