"""``make bench``: run every benchmark against freshly started infrastructure."""

from __future__ import annotations

import asyncio
import sys

from bench import kafka_kit
from opsmesh.devinfra import LocalStack


def main() -> int:
    with LocalStack() as endpoints:
        asyncio.run(
            kafka_kit.run(
                endpoints.kafka_bootstrap, events=int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
