"""JSON responses that never fail on the values traces hold (datetimes, NaN, bytes...)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from starlette.responses import Response

from .._json import _finite, utf8


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_ENCODER = json.JSONEncoder(default=_default, allow_nan=False, ensure_ascii=False)


def dumps(payload: Any) -> bytes:
    try:
        text = _ENCODER.encode(payload)
    except ValueError:  # NaN or infinity: browsers reject the whole document; show them as text
        text = json.dumps(_finite(payload), default=_default, ensure_ascii=False)
    return utf8(text).encode("utf-8")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The one shape of every API error: ``{"error": {"message": ..., ...}}``."""
    return JSONResponse({"error": {"message": message, **extra}}, status_code=status)
