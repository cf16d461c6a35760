"""JSON responses that never fail on the values traces hold (datetimes, NaN, bytes...)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from starlette.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: browsers reject the whole document. Show them as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(payload: Any) -> bytes:
    try:
        text = json.dumps(payload, default=_default, allow_nan=False, ensure_ascii=False)
    except ValueError:
        text = json.dumps(_finite(payload), default=_default, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The one shape of every API error: ``{"error": {"message": ..., ...}}``."""
    return JSONResponse({"error": {"message": message, **extra}}, status_code=status)
