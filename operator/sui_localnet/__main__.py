"""`atoma-localnet` / `python -m sui_localnet`: run the local Sui stand-in.

Prints (and writes to --info-file as JSON) what a client needs: the gRPC endpoint, the
Atoma package and AtomaDb ids, and a funded throwaway dev key with a node badge and
ready-made stacks for the quick start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from .devkey import dev_key
from .ledger import DEFAULT_REFERENCE_GAS_PRICE
from .node import DEFAULT_SAMPLING_PROBABILITY, LocalSui
from .objects import SUI_COIN_TYPE


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="atoma-localnet", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="gRPC port (0 = any free port)")
    p.add_argument(
        "--admin-port",
        type=int,
        default=9001,
        help="admin HTTP port (0 = any free port, -1 = disabled)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds ids, the dev key and sampling")
    p.add_argument("--state", type=Path, default=None, help="snapshot file (restored on start)")
    p.add_argument("--sampling-probability", type=float, default=DEFAULT_SAMPLING_PROBABILITY)
    p.add_argument("--reference-gas-price", type=int, default=DEFAULT_REFERENCE_GAS_PRICE)
    p.add_argument("--info-file", type=Path, default=None, help="write the startup info as JSON")
    p.add_argument("--coins", type=int, default=4, help="gas coins for the dev key")
    p.add_argument("--coin-balance", type=int, default=100 * 10**9, help="MIST per gas coin")
    p.add_argument(
        "--badges", type=_positive, default=1, help="node badges for the dev key (at least 1)"
    )
    p.add_argument("--stacks", type=int, default=3, help="stacks pre-created for each dev badge")
    p.add_argument(
        "--shared-latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="consensus latency of every transaction with a shared object, e.g. 0.4 "
        "(0 = off, the default); admin: POST /latency {mean, jitter, seed}",
    )
    p.add_argument(
        "--shared-latency-jitter",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="the latency is drawn uniformly from mean +- this",
    )
    p.add_argument(
        "--latency-seed", type=int, default=None, help="seeds the latency draws (default: --seed)"
    )
    p.add_argument(
        "--security-level",
        type=int,
        default=0,
        help="security level of the pre-created stacks (2 = sampling consensus)",
    )
    p.add_argument(
        "--upgraded-package",
        action="store_true",
        help="publish a second (upgraded) package id for calls; types and events keep the "
        "original id, as after a Sui package upgrade",
    )
    p.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help="serve gRPC over TLS with a throwaway CA written here (ca.crt, server.crt, "
        "server.key); clients trust ca.crt",
    )
    p.add_argument(
        "--strict-locks",
        action="store_true",
        help="the older lock rule: an object raced for stays refused until the epoch ends "
        "(default: current Sui, only the loser of the race is refused)",
    )
    return p.parse_args(argv)


def provision(node: LocalSui, args: argparse.Namespace) -> dict[str, Any]:
    """Give the dev key coins, a badge and stacks, unless a restored state already did."""
    key = dev_key(node.seed)
    badges = node.model.badges_owned_by(key.address)
    if not node.ledger.owned_by(key.address, SUI_COIN_TYPE):
        node.fund(key.address, args.coin_balance, args.coins)
    for _ in range(len(badges), args.badges):
        badge = node.create_badge(key.address)
        for _ in range(args.stacks):
            node.create_stack(
                selected_node_id=badge.node_small_id,
                security_level=args.security_level,
                owner=key.address,
            )
        badges = node.model.badges_owned_by(key.address)
    coins = node.ledger.owned_by(key.address, SUI_COIN_TYPE)
    stacks = sorted(
        sid
        for sid in range(1, node.model._s.next_stack)
        if (s := node.model.stack(sid)) is not None
        and s.selected_node_id in {b.node_small_id for b in badges}
    )
    return {
        **node.info(),
        "dev_key": {
            "address": key.address,
            "private_key": key.bech32(),
            "scheme": "ED25519",
            "gas_coins": [
                {
                    "object_id": c.object_id,
                    "version": c.version,
                    "digest": c.digest,
                    "balance": c.balance,
                }
                for c in coins
            ],
            "badges": [
                {"object_id": b.object_id, "node_small_id": b.node_small_id} for b in badges
            ],
            "stacks": stacks,
        },
    }


def _print_info(info: dict[str, Any]) -> None:
    dev = info["dev_key"]
    lines = [
        "Local Sui stand-in (sui.rpc.v2 subset) is running",
        f"  gRPC endpoint : {info['grpc_url']}",
        f"  admin API     : {info['admin_url'] or 'disabled'}",
        f"  chain id      : {info['chain_id']}  epoch {info['epoch']}  "
        f"RGP {info['reference_gas_price']}",
        f"  Atoma package : {info['package_id']} (call target)",
        f"  type origin   : {info['original_package_id']}",
        f"  AtomaDb       : {info['atoma_db_id']} "
        f"(shared, initial version {info['atoma_db_initial_shared_version']})",
        f"  dev address   : {dev['address']}",
        f"  dev key       : {dev['private_key']}  (throwaway localnet key)",
    ]
    lines += [f"  gas coin      : {c['object_id']} ({c['balance']} MIST)" for c in dev["gas_coins"]]
    lines += [
        f"  node badge    : {b['object_id']} (node small id {b['node_small_id']})"
        for b in dev["badges"]
    ]
    lines.append(f"  stacks        : {', '.join(map(str, dev['stacks'])) or 'none'}")
    print("\n".join(lines), flush=True)


async def run(args: argparse.Namespace) -> None:
    node = LocalSui(
        seed=args.seed,
        reference_gas_price=args.reference_gas_price,
        sampling_probability=args.sampling_probability,
        state_file=args.state,
        upgraded_package=args.upgraded_package,
        strict_locks=args.strict_locks,
        shared_latency=args.shared_latency,
        shared_latency_jitter=args.shared_latency_jitter,
        latency_seed=args.latency_seed,
    )
    tls = None
    if args.tls_dir is not None:
        from atoma_dev.pki import generate_server_pki

        pki = generate_server_pki(args.tls_dir, common_name="sui-localnet")
        tls = (pki.cert, pki.key)
    admin_port = None if args.admin_port < 0 else args.admin_port
    await node.start(args.host, args.port, admin_port, tls=tls)
    info = provision(node, args)
    if args.tls_dir is not None:
        info["ca_file"] = str(args.tls_dir / "ca.crt")
    _print_info(info)
    if args.info_file is not None:
        args.info_file.parent.mkdir(parents=True, exist_ok=True)
        args.info_file.write_text(json.dumps(info, indent=2))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await node.stop()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
