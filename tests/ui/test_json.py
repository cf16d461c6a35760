"""The API's JSON: values a trace can hold that JSON cannot still give a document browsers read."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from traceduck.ui._json import dumps


def test_nan_dates_bytes_and_lone_surrogates_become_text() -> None:
    payload = {
        "nan": float("nan"),
        "inf": [float("inf"), float("-inf")],
        "when": datetime(2024, 1, 2, tzinfo=timezone.utc),
        "raw": b"ok\xff",
        "name": "a\ud800",
        "ids": ("x", "y"),
    }
    body = dumps(payload)
    body.decode("utf-8")  # strict: a browser rejects the whole document otherwise
    assert json.loads(body) == {
        "nan": "nan",
        "inf": ["inf", "-inf"],
        "when": "2024-01-02T00:00:00+00:00",
        "raw": "ok\ufffd",
        "name": "a\ufffd\ufffd\ufffd",
        "ids": ["x", "y"],
    }
