"""A Jinja2 sandbox for user-written templates, bounded in what one render may build.

Jinja's sandbox blocks access to Python internals but not work: ``"x"|center(10**9)``
builds a gigabyte in one C call, and two nested loops over ``range(100000)`` run for
hours. Checking the output's length afterwards is too late, and a render running in a
worker thread cannot be interrupted. So every operation that can make a value larger
than its inputs, or repeat work, is checked *before* it runs, against a per-render
:class:`Budget`:

- **size**: no output, buffer (``{% set %}`` blocks, macros) or single value built by an
  operator, filter or string method may exceed ``max_size`` characters or items; the
  operation is refused before it allocates. Values about to be turned into text (printed,
  joined, ``~``-concatenated, formatted) are measured first, so a list holding the same
  large string a thousand times cannot be printed either.
- **work**: what all operations of one render build together is bounded too
  (``max_work``), so a loop cannot assemble gigabytes a bounded piece at a time.
- **steps**: every loop iteration (including recursive ``loop()`` calls and items drawn
  from lazy filters such as ``map``), every call (macros included) and every filter
  application counts; past ``max_steps`` the render stops.
- **time**: each step checks the clock; past ``max_seconds`` the render stops. This is
  what ends a render doing a few very slow steps; it cannot interrupt one C call, which
  is why sizes are checked before each call.

A render past its budget raises :class:`BudgetExceeded` (a ``SecurityError``, so a
``TemplateError``), whose message starts with ``template budget exceeded``.
``render_off_loop`` runs a render in a small dedicated thread pool, so the event loop
stays responsive while it runs and a slow template cannot take the default executor's
threads (which also resolve DNS).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from jinja2 import nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace, generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup

MAX_EXPONENT = 64
MAX_INT_BITS = 16_384  # about 4,900 decimal digits; Python refuses to print more than 4,300
BUDGET_MESSAGE = "template budget exceeded"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Budget:
    """What one render may do. Defaults suit notification text; rule label templates use
    a tighter one (alert-engine)."""

    max_size: int = 100_000  # characters or items: the output, and any one value built
    max_steps: int = 1_000_000  # loop iterations, calls and filter applications
    max_seconds: float = 2.0  # wall clock, checked at every step

    @property
    def max_work(self) -> int:
        """Characters or items all operations of one render may build together."""
        return 10 * self.max_size


DEFAULT_BUDGET = Budget()


class BudgetExceeded(SecurityError):
    """A render went past its budget; the template, not its data, is at fault."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{BUDGET_MESSAGE}: {what}")


class _Meter:
    """One render's spending. Kept in a context variable, so renders in different
    threads (or nested in none) each have their own."""

    __slots__ = ("budget", "clock", "deadline", "steps", "work")

    def __init__(self, budget: Budget, clock: Callable[[], float]) -> None:
        self.budget = budget
        self.clock = clock
        self.deadline = clock() + budget.max_seconds
        self.steps = 0
        self.work = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.budget.max_steps:
            raise BudgetExceeded(
                f"more than {self.budget.max_steps} steps (loop iterations, calls, filters)"
            )
        if self.clock() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {self.budget.max_seconds} s")

    def fits(self, size: int, what: str) -> None:
        """Refuse a value of ``size`` characters or items."""
        limit = self.budget.max_size
        if size > limit:
            raise BudgetExceeded(f"{what} would be {size} characters or items, above {limit}")

    def build(self, size: int, what: str) -> None:
        """Allow an operation about to build ``size`` characters or items."""
        self.fits(size, what)
        self.work += max(size, 0)
        if self.work > self.budget.max_work:
            raise BudgetExceeded(
                f"the render built more than {self.budget.max_work} characters or items"
            )
        if self.clock() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {self.budget.max_seconds} s")

    def text_of(self, value: Any, what: str) -> int:
        """Allow turning ``value`` into text; returns its measured size."""
        size = weight(value, self.budget.max_size)
        self.build(size, what)
        return size


_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar(
    "opsmesh_template_meter", default=None
)


def _meter() -> _Meter:
    found = _METER.get()
    # Outside a render (constant folding at compile time): the per-operation bounds
    # still hold; nothing accumulates.
    return found if found is not None else _Meter(DEFAULT_BUDGET, time.monotonic)


def weight(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` has, counting shared references each
    time they appear; stops counting once past ``limit``. Iterative, so deep nesting
    cannot overflow the stack."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 4
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, dict | Mapping):
            total += 2 + 4 * len(item)
            for key, val in item.items():
                stack.append(key)
                stack.append(val)
                if len(stack) > limit:
                    return limit + 1
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total > limit:
                return total
            stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)  # what its repr shows
        else:
            total += 8  # numbers, undefined, macros, loop contexts: short reprs
        if total > limit:
            return total
    return total


# -- formatting --------------------------------------------------------------------

_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.?)",
    re.DOTALL,
)
_DIGITS = re.compile(r"\d+")


def _number(text: str) -> int:
    # More digits than any budget: huge, without converting an arbitrarily long run.
    return int(text) if len(text) <= 12 else 10**12


def _printf_size(fmt: str | bytes, args: Any, limit: int) -> int:
    """An upper bound of ``len(fmt % args)``."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    mapping = args if isinstance(args, Mapping) else None
    positional = list(args) if isinstance(args, tuple) else [args]
    index = 0

    def take() -> Any:
        nonlocal index
        value = positional[index] if index < len(positional) else None
        index += 1
        return value

    total = len(text)
    for match in _PRINTF.finditer(text):
        if match["conv"] == "%":
            continue
        width = match["width"]
        precision = match["prec"]
        wide = take() if width == "*" else _number(width or "0")
        precise = take() if precision == "*" else _number(precision or "0")
        if match["key"] is not None and mapping is not None:
            arg = mapping.get(match["key"])
        else:
            arg = take() if mapping is None else mapping
        wide = abs(wide) if isinstance(wide, int) else 0
        precise = abs(precise) if isinstance(precise, int) else 0
        total += max(wide, precise, weight(arg, limit))
        if total > limit:
            return total
    return total


def _spec_size(spec: str) -> int:
    """The largest width or precision a ``str.format`` spec asks for."""
    return max((_number(d) for d in _DIGITS.findall(spec)), default=0)


class _BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        meter = _meter()
        meter.build(
            max(_spec_size(format_spec), weight(value, meter.budget.max_size)),
            "a str.format field",
        )
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


# -- filters -----------------------------------------------------------------------

# Filters that do not turn their value into text: their value (often the whole alert
# list) is not measured, only what they return.
_STRUCTURAL = frozenset(
    {
        "abs", "attr", "batch", "bool", "count", "d", "default", "dictsort", "first",
        "float", "groupby", "int", "items", "last", "length", "list", "map", "max", "min",
        "random", "reject", "rejectattr", "reverse", "round", "select", "selectattr",
        "slice", "sort", "sum", "unique",
    }
)  # fmt: skip


class _Ticking:
    """An iterator that counts a step per item (lazy filters, loop iterables)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Iterable[Any]) -> None:
        self._inner = iter(inner)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        _meter().step()
        return next(self._inner)


def _size_of(value: Any) -> int:
    return weight(value, _meter().budget.max_size)


def _text(value: Any) -> str:
    """The text a filter will work on. Only called once the value has been measured
    (every non-structural filter's value is, before its check runs), so it is bounded."""
    return value if isinstance(value, str) else str(value)


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _check_center(m: _Meter, a: dict[str, Any]) -> None:
    width = a["width"]
    m.build(max(_size_of(a["value"]), width if isinstance(width, int) else 0), "center")


def _check_indent(m: _Meter, a: dict[str, Any]) -> None:
    width = a["width"]
    prefix = width if isinstance(width, int) else _size_of(width)
    text = _text(a["s"])
    m.build(len(text) + max(prefix, 0) * _lines(text), "indent")


def _check_format(m: _Meter, a: dict[str, Any]) -> None:
    fmt = _text(a["value"])
    m.build(_printf_size(fmt, a["kwargs"] or a["args"], m.budget.max_size), "format")


def _check_wordwrap(m: _Meter, a: dict[str, Any]) -> None:
    text = _text(a["s"])
    width = a["width"] if isinstance(a["width"], int) and a["width"] > 0 else 1
    wrap = a["wrapstring"]
    wrap_len = _size_of(wrap) if wrap is not None else 2
    # Each wrapped line holds at least half a line's worth, or one character.
    lines = min(len(text) + 1, 2 * len(text) // width + _lines(text) + 1)
    m.build(len(text) + lines * wrap_len, "wordwrap")


def _replace_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    try:
        hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    except TypeError:
        return len(text)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _check_replace(m: _Meter, a: dict[str, Any]) -> None:
    text = _text(a["s"])
    m.build(_replace_size(text, a["old"], a["new"], a["count"]), "replace")


def _check_tojson(m: _Meter, a: dict[str, Any]) -> None:
    indent = a["indent"] if isinstance(a["indent"], int) else 0
    m.build(_indented_size(a["value"], max(indent, 0), m.budget.max_size), "tojson")


def _check_pprint(m: _Meter, a: dict[str, Any]) -> None:
    m.build(_indented_size(a["value"], 1, m.budget.max_size), "pprint")


def _check_urlize(m: _Meter, a: dict[str, Any]) -> None:
    text = _text(a["value"])
    extra = sum(_size_of(a[k]) for k in ("target", "rel") if a[k] is not None) + 64
    m.build(3 * len(text) + len(text.split()) * extra, "urlize")


def _check_batch(m: _Meter, a: dict[str, Any]) -> None:
    if a["fill_with"] is not None and isinstance(a["linecount"], int):
        m.build(a["linecount"], "batch")


def _check_slice(m: _Meter, a: dict[str, Any]) -> None:
    if isinstance(a["slices"], int):
        m.build(a["slices"], "slice")


_CHECKS: dict[str, Callable[[_Meter, dict[str, Any]], None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "format": _check_format,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "tojson": _check_tojson,
    "pprint": _check_pprint,
    "urlize": _check_urlize,
    "batch": _check_batch,
    "slice": _check_slice,
}


def _indented_size(value: Any, indent: int, limit: int) -> int:
    """An upper bound of ``json.dumps(value, indent=indent)`` / ``pformat``: each item
    on its own line, indented by its depth."""
    total = weight(value, limit)
    if indent <= 0 or total > limit:
        return total
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple | set | frozenset):
            children = item
        else:
            continue
        for child in children:
            total += 1 + indent * (depth + 1)
            stack.append((child, depth + 1))
            if total > limit:
                return total
    return total


def _pass_arg_count(func: Callable[..., Any]) -> int:
    # pass_context / pass_eval_context / pass_environment put one argument first.
    return 1 if getattr(func, "jinja_pass_arg", None) is not None else 0


def _value_signature(func: Callable[..., Any]) -> inspect.Signature:
    """The filter's parameters from its value on (async variants wrap a function that
    may or may not take the context first)."""
    inner = inspect.unwrap(func)
    params = list(inspect.signature(inner).parameters.values())
    return inspect.Signature(params[_pass_arg_count(inner) :])


def _account(meter: _Meter, result: Any, name: str) -> Any:
    if isinstance(result, str | bytes | list | tuple | dict):
        meter.build(len(result), f"the result of {name}")
        return result
    if isinstance(result, Iterator):
        return _Ticking(result)
    return result


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = _pass_arg_count(func)
    check = _CHECKS.get(name)
    signature = _value_signature(func) if check is not None else None
    structural = name in _STRUCTURAL

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        meter = _meter()
        meter.step()
        if not structural and len(args) > skip:
            meter.text_of(args[skip], f"the value of filter {name}")
        if check is not None and signature is not None:
            try:
                bound = signature.bind(*args[skip:], **kwargs)
            except TypeError:
                pass  # the call itself raises the usual error
            else:
                bound.apply_defaults()
                check(meter, bound.arguments)
        return _account(meter, func(*args, **kwargs), name)

    return bounded


@pass_eval_context
def _bounded_join(
    eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    """``join``, measuring each item before the single C call that joins them."""
    meter = _meter()
    limit = meter.budget.max_size
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items: list[Any] = []
    total = 0
    separator = len(str(d)) if isinstance(d, str) else weight(d, limit)
    for item in value:
        meter.step()
        total += weight(item, limit) + (separator if items else 0)
        if total > limit:
            meter.build(total, "join")
        items.append(item)
    meter.build(total, "join")
    return sync_do_join(eval_ctx, items, d)


@pass_environment
def _bounded_sum(
    environment: BoundedSandbox,
    iterable: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    """``sum`` one checked addition at a time (the builtin concatenates lists in a
    single, quadratic C call)."""
    meter = _meter()
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    total = start
    for item in iterable:
        meter.step()
        _check_binop(meter, "+", total, item)
        total = total + item
    return total


# -- operators and methods -----------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _check_binop(meter: _Meter, operator: str, left: Any, right: Any) -> None:
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise BudgetExceeded(f"exponent {right} is above the limit of {MAX_EXPONENT}")
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise BudgetExceeded(f"a number above {MAX_INT_BITS} bits")
    elif operator == "*":
        for sized, times in ((left, right), (right, left)):
            if isinstance(sized, _SEQUENCES) and isinstance(times, int):
                meter.build(len(sized) * times, "a repeated sequence")
                return
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise BudgetExceeded(f"a number above {MAX_INT_BITS} bits")
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            meter.build(len(left) + len(right), "a concatenation")
    elif operator == "%" and isinstance(left, str | bytes):
        meter.build(_printf_size(left, right, meter.budget.max_size), "a %-format")


def _check_method(
    meter: _Meter, owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse a ``str``/``bytes`` method call whose result would be too large; returns
    the arguments to call with (``join``'s iterable, already drawn and measured)."""

    def arg(position: int, keyword: str, default: Any) -> Any:
        return args[position] if len(args) > position else kwargs.get(keyword, default)

    if name in ("center", "ljust", "rjust", "zfill"):
        width = arg(0, "width", 0)
        meter.build(max(len(owner), width if isinstance(width, int) else 0), name)
    elif name == "expandtabs":
        size = arg(0, "tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        meter.build(len(owner) + tabs * (size if isinstance(size, int) else 0), name)
    elif name == "replace":
        meter.build(
            _replace_size(owner, arg(0, "old", None), arg(1, "new", None), arg(2, "count", -1)),
            name,
        )
    elif name == "translate":
        table = arg(0, "table", None)
        longest = 1
        if isinstance(table, Mapping):
            longest = max(
                (len(v) if isinstance(v, str | bytes) else 1 for v in table.values()), default=1
            )
        meter.build(len(owner) * longest, name)
    elif name == "join" and args:
        items: list[Any] = []
        total = 0
        for item in args[0]:
            meter.step()
            total += (len(item) if isinstance(item, str | bytes) else 0) + len(owner)
            if total > meter.budget.max_size:
                meter.build(total, name)
            items.append(item)
        meter.build(total, name)
        return (items, *args[1:])
    return args


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    meter = _meter()
    try:
        size = len(numbers)
    except OverflowError:
        size = meter.budget.max_size + 1
    meter.fits(size, "range")  # lazy: its iterations count as steps, not as work
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    _meter().build(n * max * 12, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


class _BoundedCodeGenerator(CodeGenerator):
    """Routes loop iterables and ``~`` operands through the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(
            nodes.EnvironmentAttribute("budget_iter", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        super().visit_For(
            nodes.For(
                node.target,
                counted,
                node.body,
                node.else_,
                node.test,
                node.recursive,
                lineno=node.lineno,
            ),
            frame,
        )

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.budget_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


class BoundedTemplate(Template):
    """``render`` runs under the environment's budget (unless a render is running)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if _METER.get() is not None:
            return super().render(*args, **kwargs)
        environment = self.environment
        assert isinstance(environment, BoundedSandbox)
        token = _METER.set(_Meter(environment.budget, environment.clock))
        try:
            return super().render(*args, **kwargs)
        except RecursionError:
            # Macros calling themselves: Python's own depth limit ended it.
            raise BudgetExceeded("calls nested too deep (a macro calling itself?)") from None
        finally:
            _METER.reset(token)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox every user template renders in; see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator
    template_class = BoundedTemplate

    def __init__(
        self,
        *args: Any,
        budget: Budget = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("finalize", self._finalize)
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.clock = clock
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters["join"] = _bounded_filter("join", _bounded_join)
        self.filters["sum"] = _bounded_filter("sum", _bounded_sum)
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        self.concat = self._concat  # type: ignore[method-assign]

    # Every output buffer (the template's, a macro's, a ``{% set %}`` block's) is joined
    # here, piece by piece, so its size is checked before it is built.
    @staticmethod
    def _concat(pieces: Iterable[str]) -> str:
        meter = _meter()
        limit = meter.budget.max_size
        out: list[str] = []
        total = 0
        for piece in pieces:
            total += len(piece)
            if total > limit:
                raise BudgetExceeded(f"output above {limit} characters")
            out.append(piece)
        return "".join(out)

    @staticmethod
    def _finalize(value: Any) -> Any:
        meter = _meter()
        if isinstance(value, str):
            meter.build(len(value), "an output")
        else:
            meter.text_of(value, "an output")
        return value

    @staticmethod
    def budget_iter(iterable: Iterable[Any]) -> Iterator[Any]:
        return _Ticking(iterable)

    @staticmethod
    def budget_concat(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        meter = _meter()
        limit = meter.budget.max_size
        total = 0
        for part in parts:
            total += weight(part, limit)
            if total > limit:
                break
        meter.build(total, "a ~ concatenation")
        return parts

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(_meter(), operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(
        __self,  # jinja's convention: no clash with callers' keyword arguments
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        meter = _meter()
        meter.step()
        if isinstance(__obj, LoopContext) and args:
            # A recursive loop's ``loop(children)``: count its items like any loop's.
            args = (_Ticking(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and not isinstance(__obj, type):
            args = _check_method(meter, owner, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # jinja's own, with formatters that measure each field before formatting it.
        if not isinstance(
            value, types.MethodType | types.BuiltinMethodType
        ) or value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        str_type: type[str] = type(owner)
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)
        vformat = formatter.vformat

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            return str_type(vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


_pool: ThreadPoolExecutor | None = None


def _render_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one small pool per process, made on first use
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="opsmesh-render")
    return _pool


async def render_off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` (a render, or work made mostly of renders) in the render threads.

    The render's budget is what ends it: a thread cannot be interrupted, so cancelling
    the awaiting task leaves the render to finish (within its ``max_seconds``)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(
        _render_pool(), functools.partial(context.run, func, *args, **kwargs)
    )
