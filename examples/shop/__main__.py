"""``python -m examples.shop serve|migrate|load``: run the shop, create its tables, or
request its pages until stopped (``SHOP_DSN`` and ``OPSMESH_*`` from the environment)."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from examples.shop import load, server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.shop")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, then serve over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    commands.add_parser("migrate", help="create and fill the shop's tables")
    traffic = commands.add_parser("load", help="request the shop's pages until stopped")
    traffic.add_argument("--url", default="http://127.0.0.1:8090")
    traffic.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    if args.command == "serve":
        server.serve(args.host, args.port)
    elif args.command == "migrate":
        server.migrate()
    else:
        stop = load.Stop()

        def request_stop(signum: int, _: Any) -> None:
            stop.requested = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        tally = load.run(args.url, stop, interval_s=args.interval)
        print(f"load stopped: {tally}", flush=True)


if __name__ == "__main__":
    main()
