"""YAML errors that say what and where, never the offending text.

PyYAML's messages quote the line they stumbled on (``in "<unicode string>", line 2 ...``
followed by the line itself and a caret), and a configuration line may hold a webhook
URL, a routing key or a password. Every service that reads a YAML file with secrets in
it reports its errors through ``yaml_error_text``.
"""

from __future__ import annotations

import yaml


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """What went wrong and where (line and column), without the quoted source line."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        if mark is not None:
            return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
        return what or type(exc).__name__
    return type(exc).__name__
