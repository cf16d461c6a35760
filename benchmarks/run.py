"""Run traceduck's benchmarks; print a markdown report and write it to benchmarks/results.md.

    PYTHONPATH=src python benchmarks/run.py                    # every suite (~9 min, 2 cores)
    PYTHONPATH=src python benchmarks/run.py --quick            # smaller sizes (~50 s, 2 cores)
    PYTHONPATH=src python benchmarks/run.py --suite overhead   # one suite (repeatable)
    PYTHONPATH=src python benchmarks/run.py --build-stores     # build the cached stores first
    PYTHONPATH=src python benchmarks/run.py --suite search --chdb-traces 10000000  # and 10M on chdb

Run from the repository root. Each suite runs in its own worker process whose working directory
(and TMPDIR, and XDG_CONFIG_HOME) is a fresh temp dir that is removed afterwards, so a run leaves
no files behind except the report and the caches in benchmarks/.cache (generated stores, an empty
MLflow store, pre-encoded OTLP requests; built on first use). The exit status is 1 when a suite
failed to run (a missed target is reported in the table, not by the exit status).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from suites import SUITES, load  # noqa: E402
from suites._common import Config, SuiteResult, Target, table  # noqa: E402

README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.quick, Path(args.result), tuple(args.chdb_traces or ()))
    if args.build_stores:
        from suites import _stores, search, transfer

        sizes, mlflow_sizes = search.stores(args.quick)
        sizes += [n for n in transfer.stores(args.quick) if n not in sizes]
        _stores.build_all(sizes, mlflow_sizes)
        return 0

    names: list[str] = args.suite or list(SUITES)
    env = _worker_env()
    started = time.perf_counter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    results: list[SuiteResult] = []
    failed: list[str] = []
    for name in names:
        print(f"== {name} ({'quick' if args.quick else 'full'})", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"traceduck-bench-{name}-") as tmp:
            result_file = Path(tmp) / "result.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
            command += ["--result", str(result_file)] + (["--quick"] if args.quick else [])
            command += [f"--chdb-traces={n}" for n in args.chdb_traces or ()]
            # Temp files and per-user config (MLflow's telemetry id) land in the temp dir too.
            worker_env = {**env, "TMPDIR": tmp, "XDG_CONFIG_HOME": tmp}
            proc = subprocess.run(command, cwd=tmp, env=worker_env, check=False)
            if proc.returncode != 0 or not result_file.exists():
                failed.append(name)
                continue
            results.append(SuiteResult.from_json(json.loads(result_file.read_text())))

    report = render(
        results, failed, args.quick, names, time.perf_counter() - started, load,
        tuple(args.chdb_traces or ()),
    )  # fmt: skip
    print(report)
    out = Path(args.out)
    out.write_text(report + "\n")
    print(f"report written to {out}", file=sys.stderr)
    if args.update_readme:
        _update_readme(report)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument(
        "--suite",
        action="append",
        choices=list(SUITES),
        help="run only this suite (repeatable); default: " + ", ".join(SUITES),
    )
    parser.add_argument("--out", default=str(HERE / "results.md"), help="where to write the report")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help=f"also replace the block between {README_BEGIN} and {README_END} "
        "in benchmarks/README.md",
    )
    parser.add_argument(
        "--build-stores",
        action="store_true",
        help="build the cached generated stores the search suite reads (with --quick: the "
        "small ones) and exit; a run builds missing ones itself",
    )
    parser.add_argument(
        "--chdb-traces",
        action="append",
        type=int,
        metavar="N",
        help="the search suite also runs its chdb queries (traceduck against hand-written "
        "ClickHouse SQL, no DuckDB) on a chdb store of N traces (repeatable; e.g. 10000000: "
        "built into the cache first if missing, ~6 min and ~4 GB on 2 cores)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def _worker(name: str, quick: bool, result_file: Path, chdb_traces: tuple[int, ...]) -> int:
    """Run one suite in this process (cwd: its temp dir) and write its result as JSON."""
    try:
        config = Config(quick=quick, workdir=Path.cwd(), chdb_traces=chdb_traces)
        result = load(name).run(config)
        import traceduck

        result.environment["traceduck"] = (
            f"{traceduck.__version__} ({Path(traceduck.__file__).parent})"
        )
    except Exception:
        traceback.print_exc()
        return 1
    result_file.write_text(json.dumps(result.to_json()))
    # The suite has stopped its servers and child processes, and the parent removes the temp
    # dir, so the interpreter's teardown is skipped: it took up to 2 s a suite (MLflow's exit
    # hook waits out its idle logging thread's 1 s poll; DuckDB and Arrow free their memory).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker_env() -> dict[str, str]:
    """The environment of the workers: PYTHONPATH made absolute (they run in a temp dir)."""
    env = dict(os.environ)
    paths = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if importlib.util.find_spec("traceduck") is None:
        paths.insert(0, str(REPO / "src"))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("TRACEDUCK_DB", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    # No telemetry thread (or network attempt) from MLflow inside the measurements.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


# -- the report -------------------------------------------------------------------------------


def render(
    results: list[SuiteResult],
    failed: list[str],
    quick: bool,
    names: list[str],
    seconds: float,
    load: tuple[float, float, float] | None,
    chdb_traces: tuple[int, ...] = (),
) -> str:
    flags = (" --quick" if quick else "") + "".join(
        f" --suite {n}" for n in names if len(names) < len(SUITES)
    )
    flags += "".join(f" --chdb-traces {n}" for n in chdb_traces)
    environment: dict[str, str] = {}
    for result in results:
        environment.update(result.environment)
    lines = [
        f"## Benchmark results ({'quick' if quick else 'full'} run)",
        "",
        f"Command (from the repository root): `PYTHONPATH=src python benchmarks/run.py{flags}`",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"whole run {seconds:.0f} s" + (f"; load average at start {load[0]:.2f}" if load else ""),
        f"- Machine: {_machine()}",
        f"- Versions: {_versions(environment)}",
        f"- Code: {_git()}",
        "",
        "### Targets",
        "",
    ]
    targets: list[Target] = [t for r in results for t in r.targets]
    lines.append(
        table(
            ["target", "measured", "goal", "verdict"],
            [[t.name, t.measured, t.goal, t.verdict] for t in targets],
        )
    )
    if failed:
        lines += ["", f"**Suites that failed to run: {', '.join(failed)}** (see stderr)."]
    for result in results:
        lines += ["", f"## {result.title} (`--suite {result.suite}`, {result.seconds:.0f} s)"]
        for section in result.sections:
            lines += ["", section.markdown()]
    return "\n".join(lines)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}"
    )


def _versions(environment: dict[str, str]) -> str:
    parts = [f"traceduck {environment.get('traceduck', '?').split(' ')[0]}"]
    for dist in ("opentelemetry-sdk", "duckdb", "pyarrow", "wrapt", "mlflow"):
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            if dist == "mlflow":
                parts.append("mlflow not installed")
    return ", ".join(parts)


def _git() -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {commit}" + (" (src/ has uncommitted changes)" if dirty else "")


def _update_readme(report: str) -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if README_BEGIN not in text or README_END not in text:
        print(
            f"{readme} has no {README_BEGIN} ... {README_END} block; not updated", file=sys.stderr
        )
        return
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{report}\n{README_END}{tail}")
    print(f"{readme} updated", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
