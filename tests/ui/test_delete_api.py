"""``POST /api/delete``: the bulk delete of a filter and the delete of one trace, recorded with
source ``ui``; bad input and cross-site requests delete nothing. (A store of this module's own:
the other modules count on theirs.)"""

from __future__ import annotations

import httpx
from uitest_data import N_PING, N_TOTAL

from traceduck import TraceStore
from traceduck.ui import ServerThread


def _total(client: httpx.Client) -> int:
    return client.get("/api/count").json()["count"]


def _deletions(store_path: str) -> list[dict]:
    return TraceStore(store_path).sql("SELECT * FROM deletions ORDER BY deletion_id").to_pylist()


def test_bulk_delete_of_a_filter_capped_at_the_count_shown(
    client: httpx.Client, store_path: str
) -> None:
    before = _total(client)
    shown = client.get("/api/count", params={"filter": "name = 'ping'"}).json()["count"]
    assert shown == N_PING
    r = client.post("/api/delete", json={"filter": "name = 'ping'", "max_traces": shown})
    assert r.status_code == 200, r.text
    assert r.json() == {"count": N_PING}
    assert client.get("/api/search", params={"filter": "name = 'ping'"}).json()["traces"] == []
    assert _total(client) == before - N_PING
    record = _deletions(store_path)[-1]
    assert record["source"] == "ui" and record["filter"] == "name = 'ping'"
    assert record["trace_count"] == N_PING and record["max_traces"] == N_PING


def test_delete_one_trace_by_id(client: httpx.Client, store_path: str) -> None:
    tid = client.get("/api/search", params={"filter": "name = 'report'"}).json()["traces"][0]
    tid = tid["trace_id"]
    r = client.post("/api/delete", json={"trace_ids": [tid]})
    assert r.status_code == 200 and r.json() == {"count": 1}
    assert client.get(f"/api/traces/{tid}").status_code == 404
    assert _deletions(store_path)[-1]["source"] == "ui"


def test_bad_requests_delete_nothing(client: httpx.Client, server: ServerThread) -> None:
    before = _total(client)
    assert before <= N_TOTAL
    for body, status, text in [
        ({}, 400, "needs a selector"),
        ({"filter": ""}, 400, "needs a selector"),
        ({"filter": "  ", "max_traces": 3}, 400, "needs a selector"),
        ({"filter": 3}, 400, "'filter' must be a string"),
        ({"trace_ids": "abc"}, 400, "'trace_ids' must be a list"),
        ({"filter": "name = 'search'", "max_traces": "2"}, 400, "'max_traces' must be"),
        ({"filter": "name = 'search'", "max_traces": 0}, 400, "max_traces"),
        ({"filter": "name ="}, 400, "expected a value"),
        ({"trace_ids": ["fffffffffff"]}, 404, "no trace id starts with"),
        # 32 characters, not hex: not a trace id (it used to match nothing, silently)
        ({"trace_ids": ["z" * 32]}, 404, "is not a trace id"),
        ({"trace_ids": ["a" * 32, "tr-" + "g" * 32]}, 404, "is not a trace id"),
    ]:
        r = client.post("/api/delete", json=body)
        assert r.status_code == status, (body, r.text)
        assert text in r.json()["error"]["message"], (body, r.text)
    flt = {"filter": "name = 'search'"}
    assert (
        client.post("/api/delete", json=flt, headers={"Origin": "http://evil.example"}).status_code
        == 403
    )
    assert client.post("/api/delete", data=flt).status_code == 415
    assert _total(client) == before
