"""``atoma-dev``: developer tooling CLI. A thin dispatcher over ``atoma_dev.commands``.

Each command group lives in its own module exposing ``register(subparsers)`` and sets a
``handler(args) -> int`` default; adding a group (``localnet``, ``demo``) is one import
and one ``register`` call here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from atoma_dev.commands import control_plane, demo

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atoma-dev", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    control_plane.register(groups)
    demo.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
