"""Zero-code: ``OTEL_TRACES_EXPORTER=traceduck opentelemetry-instrument python app.py`` stores an
instrumented app's spans (here urllib and sqlite3, which need no server) into $TRACEDUCK_DB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import traceduck as td
from _support import child_env

APP = textwrap.dedent(
    """
    import sqlite3
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer


    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass


    server = HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/ducks").read()
    cursor = sqlite3.connect(":memory:").cursor()
    cursor.execute("CREATE TABLE ducks (name TEXT)")
    cursor.execute("INSERT INTO ducks VALUES ('mallard')")
    rows = cursor.execute("SELECT name FROM ducks").fetchall()
    server.shutdown()
    print(body.decode(), rows)
    """
)


def test_the_exporter_is_registered_under_its_name() -> None:
    from traceduck._export._zerocode import TraceduckExporter

    (found,) = entry_points(group="opentelemetry_traces_exporter", name="traceduck")
    assert found.load() is TraceduckExporter


def test_an_instrumented_app_is_traced_with_no_code_change(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    db = tmp_path / "zero.duckdb"
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run(
        [str(instrument), sys.executable, str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=child_env(
            OTEL_TRACES_EXPORTER="traceduck",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_SERVICE_NAME="duck-app",
            TRACEDUCK_DB=str(db),
            MLFLOW_EXPERIMENT_NAME="zero-code",
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello [('mallard',)]\n"  # the app's behaviour is its own
    assert "error" not in result.stderr.lower(), result.stderr
    store = td.TraceStore(str(db))
    (get,) = store.search_traces("span.attributes.`http.method` = 'GET'", include_spans=True)
    assert get.info.name == "GET" and get.info.service_name == "duck-app"
    assert get.spans[0].attributes["http.url"].endswith("/ducks")
    assert get.info.metadata["context"]["service"]["name"] == "duck-app"  # automatic context
    statements = (
        store.sql(
            "SELECT json_extract_string(attributes, '$.\"db.statement\"') AS sql FROM spans "
            "WHERE json_extract_string(attributes, '$.\"db.system\"') = 'sqlite' "
            "ORDER BY start_time_ns"
        )
        .column("sql")
        .to_pylist()
    )
    assert statements == [
        "CREATE TABLE ducks (name TEXT)",
        "INSERT INTO ducks VALUES ('mallard')",
        "SELECT name FROM ducks",
    ]
    assert store.count_traces() == 4  # each call at top level is a trace of its own
    assert store.count_traces("experiment = 'zero-code'") == 4  # $MLFLOW_EXPERIMENT_NAME


def test_spans_a_provider_made_before_traceduck_hands_over_at_exit_are_stored(
    tmp_path: Path,
) -> None:
    """A provider made before traceduck is imported shuts down last at exit, after DuckDB's own
    exit hooks; its span processor then hands over its last spans to an exporter that has shut
    down already. They are written in the main thread, not lost."""
    db = tmp_path / "late.duckdb"
    script = textwrap.dedent(
        f"""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()  # its exit hook is registered before DuckDB's

        from traceduck import DuckDBSpanExporter

        provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter({str(db)!r})))
        tracer = provider.get_tracer("late")
        for i in range(3):
            with tracer.start_as_current_span(f"job-{{i}}"):
                pass
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env=child_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert td.TraceStore(str(db)).count_traces() == 3
