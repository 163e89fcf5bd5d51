"""`atoma-operator` entry point: a thin dispatcher over subcommands.

Each subcommand registers its parser in `_build_parser` and runs a `_cmd_*`
function; the work itself lives in the modules those functions call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from atoma_operator.resources import crd


def _cmd_crds(args: argparse.Namespace) -> int:
    out_dirs: list[Path] = args.out or []
    if args.check:
        problems = crd.check_crds(out_dirs or [Path("crds")])
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("CRDs are out of date: run `make crds`", file=sys.stderr)
            return 1
        return 0
    if not out_dirs:
        sys.stdout.write("---\n".join(crd.rendered_files().values()))
        return 0
    for path in crd.write_crds(out_dirs):
        print(path)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the operator (kopf) until interrupted; settings come from env and files."""
    import kopf

    from atoma_operator.preflight import StartupRefused, checked_settings

    try:
        settings = checked_settings()
    except StartupRefused as exc:
        print(f"atoma-operator: cannot start: {exc}", file=sys.stderr)
        return 2
    from atoma_operator import handlers  # noqa: F401  (registers the handlers)

    namespaces = args.namespace or settings.namespaces
    if args.namespace:  # the start-up reads settings again: they must agree with kopf's
        os.environ["ATOMA_NAMESPACES"] = json.dumps(args.namespace)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    """Serve the daemon's HTTP endpoints, backed by the resources."""
    from atoma_operator.api.main import serve

    serve(host=args.host, port=args.port, namespace=args.namespace, wait_seconds=args.wait)
    return 0


def package_version() -> str:
    """The installed distribution's version (package metadata), or "unknown"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("atoma-operator")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atoma-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = commands.add_parser(
        "crds",
        help="print or write the CustomResourceDefinitions",
        description="Generate the CRDs from the resource models. Without --out, print "
        "them as one YAML stream (e.g. for `kubectl apply -f -`).",
    )
    crds.add_argument(
        "--out",
        type=Path,
        action="append",
        metavar="DIR",
        help="write one file per kind into DIR (repeatable)",
    )
    crds.add_argument(
        "--check",
        action="store_true",
        help="compare the files in each --out DIR (default: crds) with fresh output; "
        "exit 1 on any difference",
    )
    crds.set_defaults(func=_cmd_crds)

    run = commands.add_parser(
        "run",
        help="run the operator",
        description="Reconcile StackSettlement and Attestation resources. Settings come "
        "from ATOMA_* environment variables and the file named by ATOMA_CONFIG_FILE.",
    )
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable); default: ATOMA_NAMESPACES, else all",
    )
    run.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    run.set_defaults(func=_cmd_run)

    api = commands.add_parser(
        "api",
        help="serve the daemon's HTTP API (try_settle_stack_ids, claimed_stacks, ...)",
        description="Each POST creates a StackSettlement or Attestation and answers its "
        "digests; callers authenticate with a Kubernetes bearer token.",
    )
    api.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=3001, help="listen port (the daemon's 3001)")
    api.add_argument(
        "--namespace",
        "-n",
        default=None,
        help="where POSTs create resources; default: the operator's namespace",
    )
    api.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a POST waits for digests before answering 202",
    )
    api.set_defaults(func=_cmd_api)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
