"""A Jinja2 sandbox for user-written templates, bounded in what one render may build.

Jinja's sandbox blocks access to Python internals but not work: ``{{ "x" * 10**9 }}``
would build a gigabyte before any output limit applies. This environment intercepts the
operators that multiply size and refuses results past a bound.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SEQUENCE = 100_000  # characters or items one operation may produce
MAX_EXPONENT = 64


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is above the limit of {MAX_EXPONENT}")
            return super().call_binop(context, operator, left, right)
        for sized, times in ((left, right), (right, left)):
            if (
                isinstance(sized, str | list | tuple)
                and isinstance(times, int)
                and len(sized) * times > MAX_SEQUENCE
            ):
                raise SecurityError(f"result longer than {MAX_SEQUENCE}")
        return super().call_binop(context, operator, left, right)
