"""Run the sandbox as a process.

    python -m airflow_provider_ledgerlink.sandbox --port 8765 --seed 42 \\
        --afas-rows Profit_Transactions=1000000 \\
        --fault '{"kind": "status", "vendor": "afas", "status": 503, "nth": [3]}'

Prints ``LedgerLink sandbox listening on http://127.0.0.1:PORT`` once it accepts connections and
serves until SIGTERM or SIGINT. ``--ready-file`` also writes the URL to a file, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.faults import FaultRule


def _row_count(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CONNECTOR=ROWS, got {text!r}") from None


def _fault_rules(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--fault is not JSON: {error}") from None
    rules = data if isinstance(data, list) else [data]
    try:
        for rule in rules:
            FaultRule.from_dict(rule)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(f"invalid fault rule: {error}") from None
    return rules


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_ledgerlink.sandbox",
        description="Serve the LedgerLink vendor emulators on localhost.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data and tokens")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every vendor request")
    parser.add_argument(
        "--fault",
        type=_fault_rules,
        action="append",
        default=[],
        metavar="JSON",
        help="a fault rule (or a JSON list of rules); repeatable",
    )
    parser.add_argument(
        "--afas-rows",
        type=_row_count,
        action="append",
        default=[],
        metavar="CONNECTOR=N",
        help="number of generated rows of an AFAS GetConnector; repeatable",
    )
    parser.add_argument(
        "--alasco-rows",
        type=_row_count,
        action="append",
        default=[],
        metavar="DATASET=N",
        help="number of generated objects of an Alasco dataset (invoices, contracts …); repeatable",
    )
    parser.add_argument("--ready-file", help="write the URL to this file once the server listens")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rules = [rule for group in args.fault for rule in group]
    try:
        sandbox = Sandbox(
            seed=args.seed,
            port=args.port,
            host=args.host,
            scale={**dict(args.afas_rows), **{f"alasco:{name}": rows for name, rows in args.alasco_rows}},
            latency_ms=args.latency_ms,
            faults=rules,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        sandbox.start()
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    if args.ready_file:
        temporary = f"{args.ready_file}.tmp"
        with open(temporary, "w") as handle:
            handle.write(sandbox.url + "\n")
        os.replace(temporary, args.ready_file)
    print(f"LedgerLink sandbox listening on {sandbox.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
