"""Redaction: secrets in inputs, outputs, attributes, events, exception messages, tags and metadata
never reach the store; configure(redact=...) turns it off, adds patterns or hands it to a callable.
(The OTLP path is in tests/collector/test_redact_otlp.py.)"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from traceduck.errors import ConfigError

from ._helpers import PYTHON, exception_event, last_trace, span, subprocess_env, user_metadata

# Each default key rule: a key that must hit it -> the reason its marker names.
KEYS = {
    "password": "password",
    "db_passwd": "passwd",
    "client_secret": "secret",
    "token": "token",
    "refreshToken": "token",
    "api_key": "api key",
    "api-key": "api key",
    "apikey": "api key",
    "OpenAIApiKey": "api key",
    "auth": "auth",
    "Authorization": "authorization",
    "cookie": "cookie",
    "session": "session",
    "sessionid": "session",
    "session_token": "session",
    "csrf_token": "csrf",
    "private key": "private key",
    "credit_card": "credit card",
    "ssn": "ssn",
    "jwt": "jwt",
}
# Keys an LLM app uses for counts and names: they look close but hold no secret.
NOT_KEYS = ["max_tokens", "prompt_tokens", "tokenizer", "token_count", "author", "user", "model",
            "session_id", "session.id", "mlflow.trace.session"]  # fmt: skip
SECRET = "s3cr3t-v4lue"


def stored_text() -> str:
    """Every row of every table of the store, as one string (to look for a secret in)."""
    tables = ["traces", "spans", "trace_metadata", "tag_events", "exclusive_holders"]
    return "\n".join(str(td.sql(f"SELECT * FROM {t}").to_pylist()) for t in tables)


def marker(reason: str) -> str:
    return f"[REDACTED: {reason}]"


def test_every_default_key_rule_at_any_depth() -> None:
    values = {key: SECRET for key in [*KEYS, *NOT_KEYS]}

    @td.trace
    def call(payload: dict[str, Any]) -> dict[str, Any]:
        td.update_current_trace(tags=values, metadata={"deep": {"a": [values]}})
        current = td.get_current_span()
        assert current is not None
        current.set_attributes(values)
        return {"nested": [values]}

    call({"level": {"list": [values]}})
    trace = last_trace()
    (root,) = trace.spans
    expected = {key: marker(reason) for key, reason in KEYS.items()}
    expected.update({key: SECRET for key in NOT_KEYS})
    assert root.inputs["payload"]["level"]["list"][0] == expected  # argument, any depth
    assert root.outputs["nested"][0] == expected
    assert {k: root.attributes[k] for k in expected} == expected
    assert {k: trace.info.tags[k] for k in expected} == expected
    assert user_metadata(trace.info)["deep"]["a"][0] == expected


def test_argument_names_and_harmless_values() -> None:
    @td.trace
    def connect(host: str, password: str, token: str | None = None, use_auth: bool = True) -> str:
        return "ok"

    connect("db.local", "hunter2", token=None, use_auth=True)
    (root,) = last_trace().spans
    # None and booleans hold no secret and keep their meaning; everything else is scrubbed.
    assert root.inputs == {
        "host": "db.local",
        "password": marker("password"),
        "token": None,
        "use_auth": True,
    }


# (text, the secret in it, the text as stored)
FREE_TEXT = [
    ("Authorization: Bearer eyAbc123.def456", "eyAbc123.def456",
     "Authorization: [REDACTED: authorization]"),
    ("curl -H 'x: Bearer 9f8e7d6c5b4a3921'", "9f8e7d6c5b4a3921",
     "curl -H 'x: Bearer [REDACTED: bearer token]'"),
    ("key sk-proj-Abcdefghijklmnopqrstuvwx123", "sk-proj-Abcdefghijklmnopqrstuvwx123",
     "key [REDACTED: api key]"),
    ("anthropic sk-ant-api03-abcdefghijklmnopqrstu", "sk-ant-api03-abcdefghijklmnopqrstu",
     "anthropic [REDACTED: api key]"),
    ("aws AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE",
     "aws [REDACTED: aws access key id] in use"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
     "gh [REDACTED: access token]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4J3",
     "jwt [REDACTED: jwt]"),
    ("postgres://app:Pa55word@db:5432/x", "Pa55word",
     "postgres://app:[REDACTED: password]@db:5432/x"),
    ("GET /login?user=bob&password=hunter2&next=/", "hunter2",
     "GET /login?user=bob&password=[REDACTED: password]&next=/"),
    ('{"name":"bob","api_key":"k-123-456"}', "k-123-456",
     '{"name":"bob","api_key":"[REDACTED: api key]"}'),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAK\n-----END RSA PRIVATE KEY-----\n", "MIIEpAIBAAK",
     "[REDACTED: private key]\n"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "secret", "stored"), FREE_TEXT, ids=[t[:12] for t, *_ in FREE_TEXT]
)
def test_secrets_in_free_text(text: str, secret: str, stored: str) -> None:
    @td.trace
    def ask(prompt: str) -> str:
        with td.start_span("tool", attributes={"request": text}) as s:
            s.add_event("log", {"line": text})
        return text

    ask(text)
    trace = last_trace()
    root = span(trace, "ask")
    assert (root.inputs["prompt"], root.outputs) == (stored, stored)
    tool = span(trace, "tool")
    assert tool.attributes["request"] == stored
    assert tool.events[0]["attributes"]["line"] == stored
    assert secret not in stored_text()


def test_prose_around_a_secret_is_left_alone() -> None:
    @td.trace
    def ask(prompt: str) -> str:
        return prompt

    prose = "Reset your password: click the link. Bearer bonds pay 5%. max_tokens=100, tokens: 7"
    ask(f"{prose} Key: sk-proj-Abcdefghijklmnopqrstuvwx123")
    (root,) = last_trace().spans
    assert root.outputs == f"{prose} Key: {marker('api key')}"


def test_exception_messages_status_and_stack_trace() -> None:
    key = "sk-live-Abcdefghijklmnopqrstuvwxyz12"

    @td.trace
    def call_llm(prompt: str) -> None:
        raise PermissionError(f"invalid api key {key}")

    with pytest.raises(PermissionError, match=key):  # the program sees its own exception
        call_llm("hi")
    trace = last_trace()
    (root,) = trace.spans
    assert root.status_message == f"PermissionError: invalid api key {marker('api key')}"
    event = exception_event(root)
    assert event["exception.message"] == f"invalid api key {marker('api key')}"
    assert marker("api key") in event["exception.stacktrace"]
    assert key not in stored_text()


def test_automatic_labels_are_scrubbed_too(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from traceduck import _autocontext

    # A git remote with a token in its URL lands in metadata.context.git.origin_url; a
    # `traceduck run --tag/--metadata` can carry a secret too.
    url = "https://bob:ghtoken123@github.com/acme/app.git"
    monkeypatch.setattr(_autocontext, "git_context", lambda cwd=None: {"origin_url": url})
    run = {"run_id": "r1", "tags": {"session": "s-9"}, "metadata": {"api_key": "k-9"}}
    monkeypatch.setattr(_autocontext, "run_settings", lambda: run)
    _autocontext._cache.clear()
    try:
        td.configure(db=db_path)  # a new exporter reads the run's settings

        @td.trace
        def f() -> int:
            return 1

        f()
        info = last_trace().info
    finally:
        _autocontext._cache.clear()
    git = info.metadata["context"]["git"]
    assert git["origin_url"] == f"https://bob:{marker('password')}@github.com/acme/app.git"
    assert info.tags["session"] == marker("session")
    assert info.metadata["api_key"] == marker("api key")


def test_off(db_path: str) -> None:
    td.configure(db=db_path, redact=False)

    @td.trace
    def login(password: str) -> str:
        td.update_current_trace(tags={"session": SECRET})
        return "Bearer 9f8e7d6c5b4a3921"

    login(SECRET)
    trace = last_trace()
    assert trace.spans[0].inputs == {"password": SECRET}
    assert trace.spans[0].outputs == "Bearer 9f8e7d6c5b4a3921"
    assert trace.info.tags["session"] == SECRET


def test_extra_patterns_add_to_the_defaults(db_path: str) -> None:
    ssn_shape = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
    td.configure(db=db_path, redact=["customer_email", r"^phone", ssn_shape])

    @td.trace
    def signup(customer_email: str, phone_home: str, note: str, password: str) -> None:
        return None

    signup("a@b.c", "555 0100", "ssn 123-45-6789 on file", "hunter2")
    (root,) = last_trace().spans
    assert root.inputs == {
        "customer_email": marker("customer_email"),
        "phone_home": marker("^phone"),
        "note": f"ssn {marker(ssn_shape.pattern)} on file",
        "password": marker("password"),  # the defaults still apply
    }


def test_a_callable_decides(db_path: str) -> None:
    seen: list[tuple[Any, ...]] = []

    def redact(path: tuple[Any, ...], value: Any) -> Any:
        seen.append(path)
        if path[-1] == "session_token":
            return value  # this app's session tokens are test data
        if path[-1] == "name":
            return str(value).upper()
        return td.default_redactor(path, value)

    td.configure(db=db_path, redact=redact)

    @td.trace
    def handle(name: str, password: str, session_token: str) -> dict[str, Any]:
        td.update_current_trace(tags={"cookie": "c1"}, metadata={"session_token": "m1"})
        return {"token": "t1", "items": [1, 2]}

    handle("bob", "hunter2", "s-1")
    trace = last_trace()
    (root,) = trace.spans
    assert root.inputs == {"name": "BOB", "password": marker("password"), "session_token": "s-1"}
    assert root.outputs == {"token": marker("token"), "items": [1, 2]}
    assert trace.info.tags["cookie"] == marker("cookie")
    assert user_metadata(trace.info)["session_token"] == "m1"
    assert {("inputs", "name"), ("outputs", "items", 1), ("tags", "cookie")} <= set(seen)


def test_a_redactor_that_raises_drops_the_value_and_is_reported_once(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    def redact(path: tuple[Any, ...], value: Any) -> Any:
        if value == "boom":
            raise RuntimeError("redactor bug")
        return value

    td.configure(db=db_path, redact=redact)

    @td.trace
    def f(x: str, y: str) -> str:
        return x + y

    with caplog.at_level(logging.WARNING, logger="traceduck"):
        assert f("boom", "ok") == "boomok"  # the traced call is untouched
        assert f("boom", "ok") == "boomok"
        trace = last_trace()
    assert trace.spans[0].inputs == {"x": marker("redactor error"), "y": "ok"}
    assert trace.spans[0].outputs == "boomok"
    reports = [r for r in caplog.records if "redact callable" in r.getMessage()]
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    "option",
    ["password", 3, [3], ["("], [""], [re.compile("")], re.compile("x"), {"a": 1}],
    ids=repr,
)
def test_bad_options_are_config_errors(db_path: str, option: Any) -> None:
    with pytest.raises(ConfigError, match="redact"):
        td.configure(db=db_path, redact=option)


def test_tags_set_after_the_fact_are_stored_as_given() -> None:
    """set_trace_tag / log_metadata with an id write what the caller names, on purpose: they
    are not traced data, and a store may be written by a process with no redact setting."""

    @td.trace
    def f() -> int:
        td.update_current_trace(tags={"session": "live-1"})
        return 1

    f()
    trace_id = last_trace().info.trace_id
    assert td.get_trace(trace_id).info.tags["session"] == marker("session")
    td.set_trace_tag(trace_id, "session", "s-1")
    td.log_metadata({"api_key": "label"}, trace_id=trace_id)
    info = td.get_trace(trace_id).info
    assert info.tags["session"] == "s-1" and info.metadata["api_key"] == "label"


def test_the_readme_example_runs_as_it_says(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## Redaction\n") :]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example is not None
    code = example.group(1) + "\nprint(repr(span.inputs)); print(repr(span.status_message))\n"
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    inputs, status = done.stdout.splitlines()
    assert inputs == repr(
        {
            "prompt": "hi",
            "api_key": "[REDACTED: api key]",
            "headers": {"Authorization": "[REDACTED: authorization]", "accept": "json"},
        }
    )
    assert status == repr("PermissionError: key [REDACTED: api key] was refused")


ZERO_CODE_APP = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from traceduck._export._zerocode import TraceduckExporter

provider = TracerProvider()  # what opentelemetry-instrument builds; no td.configure()
provider.add_span_processor(BatchSpanProcessor(TraceduckExporter(sys.argv[1])))
with provider.get_tracer("app").start_as_current_span("GET") as span:
    span.set_attribute("http.url", "https://bob:Pa55word@api.example.com/v1")
    span.set_attribute("http.request.header.authorization", "Basic Ym9iOnBhc3M=")
provider.shutdown()
"""


def test_the_zero_code_exporter_scrubs_with_the_default_rules(tmp_path: Path) -> None:
    db = str(tmp_path / "zero.duckdb")
    done = subprocess.run(
        [PYTHON, "-c", ZERO_CODE_APP, db], env=subprocess_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (trace,) = td.TraceStore(db).search_traces(include_spans=True)
    attributes = trace.spans[0].attributes
    assert attributes["http.url"] == f"https://bob:{marker('password')}@api.example.com/v1"
    assert attributes["http.request.header.authorization"] == marker("authorization")
