"""The UI's JSON API over a real store, served by uvicorn on 127.0.0.1:0: every endpoint with
good and bad input, the token and cross-site guards; on a DuckDB file and on chdb (the same
store, exported and imported), so ``traceduck ui --db chdb:///...`` serves the same API."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ui_support import TOKEN
from uitest_data import N_CHECKOUT, N_SEARCH, N_TOTAL, build_store

from _engines import ENGINES, new_store_name
from traceduck import TraceStore
from traceduck.ui import ServerThread


@pytest.fixture(scope="module", params=ENGINES)
def store_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The UI's store (written by real tracing) on each engine: a DuckDB path or a chdb URL.
    The tests of a module edit its tags, so each module has its own."""
    work = tmp_path_factory.mktemp("ui-api")
    path = str(work / "ui.duckdb")
    build_store(path)
    if request.param == "duckdb":
        return path
    name = new_store_name(request.param, work)
    TraceStore(path).export_traces(work / "ui.parquet")
    TraceStore(name).import_traces(work / "ui.parquet")
    return name


def _ids(client: httpx.Client, flt: str | None = None) -> list[str]:
    params = {"filter": flt, "max_results": 1000} if flt else {"max_results": 1000}
    r = client.get("/api/search", params=params)
    assert r.status_code == 200, r.text
    return [t["trace_id"] for t in r.json()["traces"]]


def _one(client: httpx.Client, flt: str) -> dict:
    r = client.get("/api/search", params={"filter": flt, "max_results": 1})
    return r.json()["traces"][0]


# -- search and count -------------------------------------------------------------------------


def test_search_default_is_newest_first_with_info_fields(client: httpx.Client) -> None:
    body = client.get("/api/search").json()
    traces = body["traces"]
    assert len(traces) == N_TOTAL and body["next_page_token"] is None
    stamps = [t["timestamp_ms"] for t in traces]
    assert stamps == sorted(stamps, reverse=True)
    assert {"trace_id", "name", "status", "execution_time_ms", "tags", "metadata"} <= set(traces[0])


def test_search_filter_matches_the_library(client: httpx.Client, store_path: str) -> None:
    flt = "tags.env = 'prod' AND status = 'OK'"
    expected = [t.info.trace_id for t in TraceStore(store_path).search_traces(flt)]
    assert _ids(client, flt) == expected
    assert len(expected) == N_CHECKOUT - 1


def test_search_orders_by_column_and_by_tag(client: httpx.Client) -> None:
    r = client.get("/api/search", params={"order_by": "execution_time_ms ASC"})
    times = [t["execution_time_ms"] for t in r.json()["traces"]]
    assert times == sorted(times)
    r = client.get(
        "/api/search", params={"filter": "tags.env = 'prod'", "order_by": "tags.cost DESC"}
    )
    costs = [t["tags"]["cost"] for t in r.json()["traces"]]
    assert costs == sorted(costs, reverse=True) and len(costs) == N_CHECKOUT


def test_keyset_pages_cover_every_trace_once(client: httpx.Client) -> None:
    seen: list[str] = []
    token = None
    for _ in range(20):
        params = {"max_results": 4, **({"page_token": token} if token else {})}
        body = client.get("/api/search", params=params).json()
        seen += [t["trace_id"] for t in body["traces"]]
        token = body["next_page_token"]
        if token is None:
            break
    assert len(seen) == N_TOTAL and len(set(seen)) == N_TOTAL


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"filter": "tags.env = 'prod' AND"}, "expected"),
        ({"filter": "tags.env === 1"}, ""),
        ({"order_by": "nosuchfield DESC"}, ""),
        ({"page_token": "not-a-token"}, "token"),
        ({"max_results": "ten"}, "max_results"),
        ({"max_results": "0"}, "max_results"),
        ({"max_results": "100000"}, "max_results"),
    ],
)
def test_search_bad_input_is_a_400_with_a_message(
    client: httpx.Client, params: dict, needle: str
) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code == 400
    error = r.json()["error"]
    assert needle.lower() in error["message"].lower() and "Traceback" not in r.text


_FILTER_BITS = st.sampled_from(
    ["tags.env", "tags.cost", "status", "name", "metadata.user", "span.name", "=", "!=", ">",
     "AND", "OR", "NOT", "IN", "(", ")", "'prod'", "3.2", "true", "null", "LIKE", "'%a'", ",",
     "`odd key`", "REGEXP", "'['", "execution_time_ms", "IS", "\\", "'", "\u00e9", "tags."]
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(_FILTER_BITS | st.text(max_size=6), max_size=8),
    order=st.sampled_from(["", "tags.cost DESC", "name", "bogus ASC", "tags.env DESC, name"]),
)
def test_any_filter_or_order_is_a_200_or_a_400_never_a_500(
    server: ServerThread, parts: list[str], order: str
) -> None:
    params = {"filter": " ".join(parts), "order_by": order, "max_results": 5}
    r = httpx.get(server.url + "/api/search", params=params, timeout=30)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["message"]


def test_filter_error_carries_its_position(client: httpx.Client) -> None:
    flt = "tags.env = 'prod' AND bogus_field > 3"
    error = client.get("/api/search", params={"filter": flt}).json()["error"]
    assert error["kind"] == "filter" and error["filter"] == flt
    assert error["position"] == flt.index("bogus_field")
    assert "^" in error["detail"]


def test_count(client: httpx.Client) -> None:
    assert client.get("/api/count", params={"filter": "tags.env = 'dev'"}).json() == {
        "count": N_SEARCH
    }
    assert client.get("/api/count").json()["count"] == N_TOTAL
    assert client.get("/api/count", params={"filter": "tags.env ="}).status_code == 400


def test_keys_lists_tag_and_metadata_keys(client: httpx.Client) -> None:
    keys = client.get("/api/keys").json()
    assert {"env", "cost", "weekly"} <= set(keys["tags"])
    assert "user" in keys["metadata"]


# -- one trace --------------------------------------------------------------------------------


def test_trace_by_prefix_has_spans_errors_and_history(client: httpx.Client) -> None:
    failed = _one(client, "status = 'ERROR'")
    body = client.get(f"/api/traces/{failed['trace_id'][:10]}").json()
    assert body["info"]["trace_id"] == failed["trace_id"]
    names = {s["name"] for s in body["spans"]}
    assert names == {"checkout", "lookup"}
    root = next(s for s in body["spans"] if s["name"] == "checkout")
    exc = [e for e in root["events"] if e["name"] == "exception"]
    assert exc and "card declined" in exc[0]["attributes"]["exception.message"]
    assert "Traceback" in exc[0]["attributes"]["exception.stacktrace"]
    assert root["inputs"] == {"order": 3}
    history = client.get(f"/api/traces/{failed['trace_id'][:10]}/history").json()
    assert history["trace_id"] == failed["trace_id"]
    assert sorted(e["key"] for e in history["tag_history"]) == ["cost", "env"]
    assert {e["source"] for e in history["tag_history"]} == {"live"}
    assert history["metadata_history"][0]["key"] == "user"


def test_trace_unknown_and_ambiguous_ids(client: httpx.Client) -> None:
    r = client.get("/api/traces/ffffffffffffffffffffffffffffffff")
    assert r.status_code == 404 and "ffff" in r.json()["error"]["message"]
    # 21 traces over 16 hex digits: some first digit is shared (pigeonhole).
    digit, n = Counter(i[0] for i in _ids(client)).most_common(1)[0]
    assert n >= 2
    r = client.get(f"/api/traces/{digit}")
    assert r.status_code == 409 and len(r.json()["error"]["candidates"]) >= 2


# -- tags and metadata ------------------------------------------------------------------------


def test_set_typed_tag_then_delete_all_in_history_as_ui(client: httpx.Client) -> None:
    tid = _one(client, "name = 'report'")["trace_id"]
    r = client.post("/api/tags", json={"trace_id": tid[:12], "key": "score", "value": 3.2})
    assert r.status_code == 200 and r.json()["tags"]["score"] == 3.2
    assert _ids(client, "tags.score > 3") == [tid]  # a number, so it compares as one
    r = client.post("/api/tags", json={"trace_id": tid, "key": "score", "value": "high"})
    assert r.json()["tags"]["score"] == "high"
    r = client.post("/api/tags/delete", json={"trace_id": tid, "key": "score"})
    assert r.status_code == 200 and "score" not in r.json()["tags"]
    history = [
        (e["operation"], e["source"])
        for e in client.get(f"/api/traces/{tid}/history").json()["tag_history"]
        if e["key"] == "score"
    ]
    assert history == [("set", "ui"), ("update", "ui"), ("delete", "ui")]


def test_exclusive_tag_moves_and_is_listed(client: httpx.Client) -> None:
    a, b = _ids(client, "tags.env = 'dev'")[:2]
    client.post("/api/tags", json={"trace_id": a, "key": "best", "value": True, "exclusive": True})
    r = client.post("/api/tags", json={"trace_id": b, "key": "best", "value": True})
    assert r.status_code == 200
    assert _ids(client, "tags.best = true") == [b]
    assert "best" in client.get(f"/api/traces/{a}").json()["exclusive_keys"]
    history = client.get(f"/api/traces/{a}/history").json()["tag_history"]
    assert any(e["key"] == "best" and e["operation"] == "moved" for e in history)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"key": "k", "value": 1}, 400),  # no trace_id
        ({"trace_id": "ab", "value": 1}, 400),  # no key
        ({"trace_id": "ab", "key": "k"}, 400),  # no value
        ({"trace_id": "ffffffffffffffff", "key": "k", "value": 1}, 404),
        ({"trace_id": "REPORT", "key": "", "value": 1}, 400),
        ({"trace_id": "REPORT", "key": "traceduck.x", "value": 1}, 400),
        ({"trace_id": "REPORT", "key": "k", "value": 1, "exclusive": "yes"}, 400),
        ([1, 2], 400),
    ],
)
def test_set_tag_bad_input(client: httpx.Client, payload: object, status: int) -> None:
    if isinstance(payload, dict) and payload.get("trace_id") == "REPORT":
        payload = {**payload, "trace_id": _one(client, "name = 'report'")["trace_id"]}
    r = client.post("/api/tags", json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_hostile_bodies_are_4xx(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    deep = b'{"trace_id": "a", "key": "k", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = client.post("/api/tags", content=deep, headers=headers)
    assert r.status_code == 400 and "deep" in r.json()["error"]["message"]
    huge = b'{"trace_id": "a", "key": "k", "value": "' + b"x" * (9 * 2**20) + b'"}'
    r = client.post("/api/tags", content=huge, headers=headers)
    assert r.status_code == 413 and "MiB" in r.json()["error"]["message"]
    r = client.post("/api/tags", content=b"\xff\xfe", headers=headers)
    assert r.status_code == 400


def test_delete_missing_tag_and_broken_body(client: httpx.Client) -> None:
    tid = _one(client, "name = 'report'")["trace_id"]
    r = client.post("/api/tags/delete", json={"trace_id": tid, "key": "never-set"})
    assert r.status_code == 400 and "never-set" in r.json()["error"]["message"]
    r = client.post("/api/tags", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_bulk_tag_and_bulk_delete(client: httpx.Client) -> None:
    r = client.post("/api/tags/bulk", json={"filter": "tags.env = 'dev'", "tags": {"batch": 7}})
    assert r.json() == {"count": N_SEARCH}
    assert len(_ids(client, "tags.batch = 7")) == N_SEARCH
    one = _ids(client, "tags.batch = 7")[0]
    history = client.get(f"/api/traces/{one}/history").json()["tag_history"]
    assert any(e["key"] == "batch" and e["source"] == "ui" for e in history)
    r = client.post("/api/tags/bulk-delete", json={"filter": "tags.batch = 7", "keys": ["batch"]})
    assert r.json() == {"count": N_SEARCH}
    assert _ids(client, "tags.batch = 7") == []


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/tags/bulk", {"tags": {"a": 1}}),
        ("/api/tags/bulk", {"filter": "", "tags": {"a": 1}}),
        ("/api/tags/bulk", {"filter": "tags.env = 'dev'", "tags": {}}),
        ("/api/tags/bulk", {"filter": "tags.env = 'dev'", "tags": ["a"]}),
        ("/api/tags/bulk", {"filter": "tags.env = ", "tags": {"a": 1}}),
        ("/api/tags/bulk-delete", {"filter": "tags.env = 'dev'", "keys": []}),
        ("/api/tags/bulk-delete", {"filter": "tags.env = 'dev'", "keys": "a"}),
    ],
)
def test_bulk_bad_input_changes_nothing(client: httpx.Client, path: str, payload: dict) -> None:
    before = client.get("/api/search", params={"max_results": 1000}).json()
    r = client.post(path, json=payload)
    assert r.status_code == 400 and r.json()["error"]["message"]
    assert client.get("/api/search", params={"max_results": 1000}).json() == before


def test_log_metadata_appends(client: httpx.Client) -> None:
    tid = _one(client, "name = 'report'")["trace_id"]
    r = client.post("/api/metadata", json={"trace_id": tid, "metadata": {"eval": {"acc": 0.9}}})
    assert r.status_code == 200 and r.json()["metadata"]["eval"] == {"acc": 0.9}
    history = client.get(f"/api/traces/{tid}/history").json()["metadata_history"]
    assert (history[-1]["key"], history[-1]["source"]) == ("eval", "ui")
    for bad in ({"trace_id": tid, "metadata": {}}, {"trace_id": tid, "metadata": [1]}):
        assert client.post("/api/metadata", json=bad).status_code == 400


# -- stats and compare ------------------------------------------------------------------------


def test_stats_grouped_by_tag(client: httpx.Client) -> None:
    body = client.get("/api/stats", params={"by": "tags.env"}).json()
    groups = {g["group"]: g for g in body["groups"]}
    assert groups["prod"]["count"] == N_CHECKOUT and groups["prod"]["errors"] == 1
    assert groups["dev"]["count"] == N_SEARCH and groups["dev"]["error_rate"] == 0
    assert groups["prod"]["p50_ms"] <= groups["prod"]["p95_ms"] <= groups["prod"]["p99_ms"]
    filtered = client.get("/api/stats", params={"by": "status", "filter": "tags.env = 'prod'"})
    assert {g["group"]: g["count"] for g in filtered.json()["groups"]} == {
        "OK": N_CHECKOUT - 1,
        "ERROR": 1,
    }


@pytest.mark.parametrize("params", [{"by": "nonsense"}, {"by": "tags.`"}, {"filter": "status ="}])
def test_stats_bad_input(client: httpx.Client, params: dict) -> None:
    r = client.get("/api/stats", params=params)
    assert r.status_code == 400 and r.json()["error"]["message"]


def test_compare_marks_differences(client: httpx.Client) -> None:
    a, b = _ids(client, "tags.env = 'prod'")[:2]
    body = client.get("/api/compare", params={"ids": f"{a},{b[:10]}"}).json()
    assert body["trace_ids"] == [a, b]
    rows = {r["field"]: r for r in body["rows"]}
    assert rows["name"]["differs"] is False and rows["tags.env"]["differs"] is False
    assert rows["tags.cost"]["differs"] is True
    by_filter = client.get("/api/compare", params={"filter": "tags.env = 'dev'", "limit": 3}).json()
    assert len(by_filter["trace_ids"]) == 3


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"ids": "ffffffffffffffff"}, 404),
        ({"filter": "x ="}, 400),
        ({"ids": "a", "limit": "0"}, 400),
    ],
)
def test_compare_bad_input(client: httpx.Client, params: dict, status: int) -> None:
    assert client.get("/api/compare", params=params).status_code == status


# -- safety -----------------------------------------------------------------------------------


def test_writes_need_json_and_same_origin(client: httpx.Client, server: ServerThread) -> None:
    tid = _one(client, "name = 'report'")["trace_id"]
    body = {"trace_id": tid, "key": "csrf", "value": 1}
    r = client.post("/api/tags", data={"trace_id": tid, "key": "csrf", "value": "1"})
    assert r.status_code == 415
    r = client.post("/api/tags", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/tags", json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert "csrf" not in client.get(f"/api/traces/{tid}").json()["info"]["tags"]
    r = client.post("/api/tags", json=body, headers={"Origin": server.url})
    assert r.status_code == 200


def test_token_guards_every_api_call_but_not_the_shell(token_server: ServerThread) -> None:
    with httpx.Client(base_url=token_server.url) as anon:
        for path in ("/api/search", "/api/keys", "/api/stats", "/api/traces/ab", "/api/nope"):
            r = anon.get(path)
            assert r.status_code == 401 and "token" in r.json()["error"]["message"]
        assert (
            anon.post("/api/tags", json={"trace_id": "a", "key": "k", "value": 1}).status_code
            == 401
        )
        bad = anon.get("/api/search", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401
        shell = anon.get("/")
        assert shell.status_code == 200 and "app.js" in shell.text and "trace_id" not in shell.text
        assert anon.get("/static/app.js").status_code == 200
    with httpx.Client(
        base_url=token_server.url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as authed:
        assert len(authed.get("/api/search").json()["traces"]) == N_TOTAL


def test_pages_carry_a_strict_csp_and_no_inline_script(client: httpx.Client) -> None:
    for path in ("/", "/trace/abc", "/compare", "/stats"):
        r = client.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text  # only <script src=...>
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js.replace("never through innerHTML", "")


def test_foreign_host_names_are_refused_on_loopback(client: httpx.Client) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 reaches the UI with its own
    Host header; the UI answers only to loopback names."""
    for path in ("/api/search", "/"):
        r = client.get(path, headers={"Host": "evil.example:5000"})
        assert r.status_code == 403 and "loopback" in r.json()["error"]["message"]
    for host in ("localhost:5000", "127.0.0.1", "LOCALHOST"):
        assert client.get("/api/count", headers={"Host": host}).status_code == 200


def test_unknown_api_path_and_method(client: httpx.Client) -> None:
    r = client.get("/api/nothing/here")
    assert r.status_code == 404 and r.json()["error"]["message"]
    r = client.request("DELETE", "/api/search", json={})
    assert r.status_code in (404, 405) and "DELETE" in r.json()["error"]["message"]


# -- stores that are not there, or not DuckDB -------------------------------------------------


def test_a_missing_store_is_empty_and_reading_it_creates_nothing(tmp_path: Path) -> None:
    from traceduck.ui import create_app

    path = tmp_path / "none.duckdb"
    with ServerThread(create_app(path)) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/search").json() == {"traces": [], "next_page_token": None}
        assert http.get("/api/count").json() == {"count": 0}
        assert http.get("/api/stats", params={"by": "tags.env"}).json()["groups"] == []
        assert http.get("/api/traces/abc").status_code == 404
        assert http.get("/api/traces/abc/history").status_code == 404
    assert not path.exists()


def test_a_corrupt_store_is_a_503_and_left_as_it_is(tmp_path: Path) -> None:
    from traceduck.ui import create_app

    path = tmp_path / "corrupt.duckdb"
    path.write_bytes(b"not a database " * 100)
    with ServerThread(create_app(path)) as server, httpx.Client(base_url=server.url) as http:
        for r in (
            http.get("/api/search"),
            http.post("/api/tags", json={"trace_id": "ab", "key": "k", "value": 1}),
        ):
            assert r.status_code == 503 and "corrupt.duckdb" in r.json()["error"]["message"]
    assert path.read_bytes() == b"not a database " * 100
