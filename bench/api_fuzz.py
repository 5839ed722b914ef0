"""The API fuzz suite (``tests/api_fuzz/test_schemathesis.py``) with many more examples per
operation: schemathesis with every check against every service's OpenAPI document and
Alertmanager's v2 specification, with and without a token, over real infrastructure.

``python -m bench.api_fuzz [EXAMPLES]`` (default 300 per operation and token variant).
Prints the tests run, the failures (each a distinct schemathesis failure with the curl
that reproduces it) and the time taken. Exits non-zero on any failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "300"
    env = {**os.environ, "OPSMESH_FUZZ_EXAMPLES": examples}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/api_fuzz/test_schemathesis.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--timeout=3600",
        ],
        env=env,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(f"api fuzz: {examples} examples per operation and token variant, {elapsed:.0f} s")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
