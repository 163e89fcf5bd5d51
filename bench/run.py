"""`python -m bench`: the operator's figures against baselines, on this machine, in one run.

Prints a table and writes the same figures as JSON to bench/results/<timestamp>.json.
It never asserts a time: a missed target is a figure too. `--quick` is a smoke run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import report
from bench.env import cluster, scratch_dir
from bench.limit import limit_rows, write_rows
from bench.scale import scale_phase
from bench.throughput import Shape, bare_phase, operator_phase, writes_and_reads

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("throughput", "latency", "scale", "limit")
DEFAULT_SECTIONS = ("throughput", "latency", "scale")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--n", type=int, default=1000, help="settlements per throughput phase")
    p.add_argument(
        "--badges",
        type=_ints,
        default=[1, 4],
        help="badge counts to run throughput with (comma list); one badge serialises",
    )
    p.add_argument("--coins", type=int, default=4, help="gas coins of the operator's key")
    p.add_argument("--concurrency", type=int, default=0, help="ATOMA_CONCURRENCY (0: = coins)")
    p.add_argument("--rate", type=float, default=5.0, help="latency: arrivals per second")
    p.add_argument("--latency-n", type=int, default=300, help="latency: resources")
    p.add_argument(
        "--scale-counts", type=_ints, default=[100, 10_000], help="scale: resource counts"
    )
    p.add_argument("--idle-seconds", type=float, default=30, help="scale: idle window")
    p.add_argument(
        "--limit-badges",
        type=_ints,
        default=[1, 4, 16],
        help="limit: badge counts to run under the stand-in's consensus latency",
    )
    p.add_argument("--limit-n", type=int, default=160, help="limit: settlements per phase")
    p.add_argument("--latency-mean", type=float, default=0.4, help="limit: consensus latency (s)")
    p.add_argument("--latency-jitter", type=float, default=0.05, help="limit: +- seconds")
    p.add_argument(
        "--no-limit-daemon",
        dest="limit_daemon",
        action="store_false",
        help="limit: skip the daemon pattern (sequential: n x latency seconds at any count)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="throughput, limit: sample the operator with py-spy (top cumulative costs)",
    )
    p.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"which sections to run, of {','.join(SECTIONS)}",
    )
    p.add_argument("--quick", action="store_true", help="smoke: small numbers everywhere")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.latency_n, args.rate = 50, 30, 5.0
        args.scale_counts, args.idle_seconds = [20, 200], 10.0
        args.limit_n, args.limit_badges = 32, [1, 4]
    args.concurrency = args.concurrency or args.coins
    if args.latency_mean <= 0 or not 0 <= args.latency_jitter <= args.latency_mean:
        p.error("--latency-mean must be > 0 and --latency-jitter within [0, mean]")
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


def _bars() -> Callable[[str, int], Callable[[int], None]]:
    def make(desc: str, total: int) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=desc, unit="stl", leave=False, file=sys.stderr)

        def advance(k: int) -> None:
            bar.update(k)
            if bar.n >= total:
                bar.close()

        return advance

    return make


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    progress = _bars()
    work = scratch_dir()
    results: dict[str, Any] = {"machine": report.machine(), "args": _jsonable(vars(args))}
    rows: list[tuple[str, str, Any, str]] = []
    with cluster() as kube:
        if "throughput" in args.sections:
            results["throughput"] = {}
            for badges in args.badges:
                shape = Shape(badges, args.coins, args.concurrency)
                key = f"{badges}_badges"
                phase_dir = work / key
                profile = phase_dir / "operator" / "py-spy.txt" if args.profile else None
                op = operator_phase(
                    kube, phase_dir / "operator", shape, args.n, progress, profile=profile
                )
                par = bare_phase(phase_dir / "bare", shape, args.n, progress, sequential=False)
                seq = bare_phase(phase_dir / "daemon", shape, args.n, progress, sequential=True)
                results["throughput"][key] = {"operator": op, "bare": par, "daemon": seq}
                rows += _throughput_rows(key, args.n, op, par, seq)
        if "limit" in args.sections:
            results["limit"] = {}
            for badges in args.limit_badges:
                coins = max(args.coins, badges)  # a gas coin per lane: badges are the limit
                shape = Shape(badges, coins, coins, args.latency_mean, args.latency_jitter)
                key = f"{badges}_badges"
                phase_dir = work / "limit" / key
                n = args.limit_n
                profile = phase_dir / "operator" / "py-spy.txt" if args.profile else None
                op = operator_phase(
                    kube, phase_dir / "operator", shape, n, progress, profile=profile
                )
                par = bare_phase(phase_dir / "bare", shape, n, progress, sequential=False)
                lim_seq = (
                    bare_phase(phase_dir / "daemon", shape, n, progress, sequential=True)
                    if args.limit_daemon
                    else None
                )
                results["limit"][key] = {"operator": op, "bare": par, "daemon": lim_seq}
                rows += limit_rows(key, shape, n, op, par, lim_seq)
        if "latency" in args.sections:
            shape = Shape(max(args.badges), args.coins, args.concurrency)
            lat = operator_phase(
                kube, work / "latency", shape, args.latency_n, progress, rate=args.rate
            )
            results["latency"] = lat
            rows += _latency_rows(lat, args.rate)
        if "scale" in args.sections:
            scale = scale_phase(
                kube, work / "scale", args.scale_counts, progress, idle_seconds=args.idle_seconds
            )
            results["scale"] = scale
            rows += _scale_rows(scale)
    print()
    print(report.table(rows))
    for section in ("throughput", "limit"):
        for key, phases in results.get(section, {}).items():
            if phases["operator"].get("profile"):
                print(f"\noperator profile, {section} {key} (py-spy, share of non-idle samples):")
                print(report.profile_table(phases["operator"]["profile"], 10))
    path = report.write_json(results, args.out)
    print(f"\nmachine: {results['machine']}\nJSON: {path}\nwork dir (logs): {work}")
    return 0


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def _throughput_rows(
    key: str, n: int, op: dict[str, Any], par: dict[str, Any], seq: dict[str, Any]
) -> list[tuple[str, str, Any, str]]:
    sec = f"throughput {key}"
    ratio = op["seconds"] / par["seconds"] if par["seconds"] else None
    writes, reads, watches = writes_and_reads(op["apiserver_requests"])
    own_posts = op["apiserver_requests"].get("POST/stacksettlements/", 0)
    op_calls = sum(op["chain_rpc_calls"].values())
    return [
        (sec, "operator: apply -> all Ready (s)", op["seconds"], f"n={n}, {op['ready']} Ready"),
        (sec, "bare pysui, parallel (s)", par["seconds"], "same coins, per-badge lock"),
        (sec, "daemon pattern, sequential (s)", seq["seconds"], "one tx at a time"),
        (sec, "operator / bare", ratio, "target <= 1.25"),
        (sec, "daemon / bare", seq["seconds"] / par["seconds"] if par["seconds"] else None, ""),
        (sec, "operator tx/s", n / op["seconds"], ""),
        (sec, "bare tx/s", n / par["seconds"], ""),
        (
            sec,
            "operator CPU per stack (ms)",
            1000 * op["operator_cpu_s"] / n,
            f"stand-in {1000 * op['standin_cpu_s'] / n:.1f} ms (bare: "
            f"{1000 * par['standin_cpu_s'] / n:.1f} ms)",
        ),
        (
            sec,
            "bare loop CPU per stack (ms)",
            1000 * par["client_cpu_s"] / n,
            "bench process: build, sign, execute",
        ),
        (
            sec,
            "operator CPU / bare CPU",
            op["operator_cpu_s"] / par["client_cpu_s"] if par["client_cpu_s"] else None,
            "target <= 1.5",
        ),
        (sec, "executions per digest (max)", op["max_executions_per_digest"], "must be 1"),
        (sec, "equivocation refusals", op["equivocation_refusals"], "operator metric"),
        (
            "cost " + key,
            "apiserver writes per stack",
            (writes - own_posts) / n,
            "target <= 3 (bench's own POSTs excluded)",
        ),
        *write_rows("cost " + key, op["apiserver_requests"], n),
        ("cost " + key, "apiserver reads per stack", reads / n, f"+{watches} watch requests"),
        ("cost " + key, "chain RPCs per stack (operator)", op_calls / n, "incl. follower polls"),
        (
            "cost " + key,
            "chain RPCs per stack (bare)",
            sum(par["chain_rpc_calls"].values()) / n,
            "",
        ),
    ]


def _latency_rows(lat: dict[str, Any], rate: float) -> list[tuple[str, str, Any, str]]:
    rows: list[tuple[str, str, Any, str]] = []
    for label, key in (
        ("apply->digest", "apply_to_digest_s"),
        ("apply->Ready", "apply_to_ready_s"),
    ):
        for pct in ("p50", "p95", "p99"):
            rows.append(("latency", f"{label} {pct} (s)", lat[key][pct], f"{rate}/s, n={lat['n']}"))
    return rows


def _scale_rows(scale: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    rows: list[tuple[str, str, Any, str]] = []
    for count, fig in scale.items():
        sec = f"scale {count}"
        rows += [
            (sec, "operator RSS after restart (MiB)", fig["rss_mib"], "target <= 250 at 10k"),
            (sec, "operator peak RSS (MiB)", fig["peak_rss_mib"], ""),
            (sec, "restart -> idle (s)", fig["restart_to_idle_s"], "resume pass over all"),
            (sec, "start-up CPU (s)", fig["startup_cpu_s"], ""),
            (sec, "idle CPU (%)", fig["idle_cpu_percent"], ""),
            (sec, "follower chain RPCs / min", fig["chain_rpc_per_minute"], "must not grow"),
        ]
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
