"""What a span records of an exception that leaves it: whether it is a failure, and its status
message and ``exception`` event, cut to a size limit.

The user's exception is only read, never changed. Its message may be huge (a 50 MB payload in
a ``ValueError``): what is stored is cut to ``MAX_EXCEPTION_CHARS`` (the limit of a captured
input or output) with a marker saying how long it was, and the stack trace keeps its head
(where the chain starts) and its end (the innermost frames and the exception's type), with
the cut marked between them; in it each message and line is cut shorter still (8 KiB).
"""

from __future__ import annotations

import traceback
from typing import Any

from opentelemetry.trace import Status, StatusCode

from ._constants import MAX_CAPTURE_CHARS

__all__ = ["MAX_EXCEPTION_CHARS", "is_failure", "record_error"]

# One exception message, status message or stack trace as stored: as one input or output.
MAX_EXCEPTION_CHARS = MAX_CAPTURE_CHARS
# Of a cut stack trace, this much of the start is kept; the rest of the room goes to its end.
_TRACE_HEAD_CHARS = 4 * 1024
# Each message and line within a stack trace: the whole message is the event's own attribute,
# and so the end of a trace (innermost frames, the exception's type) fits beside it.
_TRACE_LINE_CHARS = 8 * 1024


def is_failure(exc: BaseException) -> bool:
    """Whether ``exc`` leaving a span makes it ERROR.

    Not a failure: ``GeneratorExit`` (the consumer closed a generator early: it stopped
    asking, nothing went wrong) and ``SystemExit`` with code 0 or None (``sys.exit()``, a
    successful exit). Everything else is: an exception, ``SystemExit`` with another code (the
    process reports failure: any code but None or an int exits 1, ``sys.exit(0.0)`` too),
    ``KeyboardInterrupt`` (the work did not finish). The code is read as the interpreter reads
    it, calling none of its methods (a comparison that raises would replace the exit)."""
    if isinstance(exc, GeneratorExit):
        return False
    if isinstance(exc, SystemExit):
        code = exc.code
        return not (code is None or (isinstance(code, int) and int.__eq__(code, 0) is True))
    return True


def cut(text: str, limit: int = MAX_EXCEPTION_CHARS, prefix: str = "") -> str:
    """``prefix + text``, or its start with a marker of its full length when longer than
    ``limit`` (a huge ``text`` is not copied whole to join them)."""
    size = len(prefix) + len(text)
    if size <= limit:
        return prefix + text
    return prefix + text[: limit - 40 - len(prefix)] + f"... [truncated {size} chars]"


def record_error(span: Any, exc: BaseException) -> None:
    """ERROR status plus an exception event (type, message, traceback) on ``span``, each
    within ``MAX_EXCEPTION_CHARS``."""
    name = type(exc).__name__
    try:
        text: str | None = str(exc)
    except Exception:  # an exception whose __str__ fails is still an error
        text = None
    message = name if text is None else cut(text, prefix=f"{name}: ")
    span.set_status(Status(StatusCode.ERROR, message))
    try:
        attributes = {
            "exception.type": _type_name(exc),
            "exception.message": "" if text is None else cut(text),
            "exception.stacktrace": stack_trace(exc),
            "exception.escaped": "False",
        }
    except Exception:
        attributes = {"exception.type": type(exc).__qualname__}
    span.add_event("exception", attributes)


def _type_name(exc: BaseException) -> str:
    """The OpenTelemetry SDK's form: ``module.Qualname``, builtins bare."""
    kind = type(exc)
    module = kind.__module__
    return f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__


def stack_trace(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` (its chain included), as Python prints it, with each
    exception's message and each line cut to the limit, and the whole cut in the middle."""
    te = traceback.TracebackException.from_exception(exc)
    _cut_messages(te)
    lines = [cut(line, _TRACE_LINE_CHARS) for line in te.format()]
    text = "".join(lines)
    if len(text) <= MAX_EXCEPTION_CHARS:
        return text
    marker = f"\n... [truncated {len(text)} chars] ...\n"
    tail = MAX_EXCEPTION_CHARS - _TRACE_HEAD_CHARS - len(marker)
    return text[:_TRACE_HEAD_CHARS] + marker + text[-tail:]


def _cut_messages(te: traceback.TracebackException) -> None:
    """Cut the message each exception of the chain will print (the formatter would copy a huge
    one whole); ``_str`` is the stdlib's field for it, left alone where it is not."""
    seen: set[int] = set()
    todo = [te]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        message = getattr(item, "_str", None)
        if isinstance(message, str) and len(message) > _TRACE_LINE_CHARS:
            item._str = cut(message, _TRACE_LINE_CHARS - 100)
        group = getattr(item, "exceptions", None) or ()  # an ExceptionGroup's members
        for nested in (item.__cause__, item.__context__, *group):
            if nested is not None:
                todo.append(nested)
