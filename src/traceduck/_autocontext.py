"""Automatic context (redun's automatic tags) and ``traceduck run``'s tags, added to every trace.

``metadata.context`` = ``{user, host, pid, python, service: {name, version}, traceduck_version,
git: {commit, branch, dirty, origin_url}}`` (git only inside a work tree; ``run_id`` under
``traceduck run``). It is computed once per process, lazily, in the span processor's export
thread: the caller's thread never pays for it, and a missing or broken git never fails anything.

``AutoLabels.for_root(start, resource)`` gives a local root's automatic labels: the context
(and the run's ``--metadata``) as metadata entries, and the run's ``--tag``s. The exporters
(DuckDB, OTLP) add them as they convert the root, after the labels its attributes carry and
before its live ones: live values win, run tags only fill keys the trace did not set, and the
context/run metadata entries come before the trace's own entries (the latest entry per key is
the one shown).
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import threading
from typing import Any

from . import _redact, _runtime
from ._export._redacting import redact_labels

__all__ = ["ENV_RUN", "AutoLabels", "base_context", "git_context", "run_settings"]

ENV_RUN = "TRACEDUCK_RUN"  # JSON set by `traceduck run`: {"run_id", "tags", "metadata"}
GIT_TIMEOUT_S = 5.0


class _Settings:
    """``enabled``: configure(auto_context=...); read once per export batch."""

    enabled = True


SETTINGS = _Settings()
_lock = threading.Lock()
_cache: dict[Any, Any] = {}


def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


_runtime.after_fork_in_child(_new_lock)


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_context(cwd: str | None = None) -> dict[str, Any] | None:
    """``{commit, branch, dirty, origin_url}`` of the work tree at ``cwd``, or None outside one."""
    cwd = cwd or os.getcwd()
    if _git(["rev-parse", "--is-inside-work-tree"], cwd) != "true":
        return None
    commit = _git(["rev-parse", "HEAD"], cwd)  # None in a repository without commits
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) if commit else None
    if not branch:
        branch = _git(["symbolic-ref", "--short", "HEAD"], cwd)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "commit": commit,
        "branch": None if branch == "HEAD" else branch,  # detached HEAD
        "dirty": None if status is None else bool(status),
        "origin_url": _git(["config", "--get", "remote.origin.url"], cwd),
    }


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers without passwd entries)
        return None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("traceduck")
    except Exception:
        from . import __version__

        return __version__


def run_settings() -> dict[str, Any]:
    """``traceduck run``'s settings from ``$TRACEDUCK_RUN`` (empty outside a run, or if bad)."""
    text = os.environ.get(ENV_RUN)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        _runtime.logger.warning("traceduck: ignoring $%s: not JSON", ENV_RUN)
        return {}
    return value if isinstance(value, dict) else {}


def report_to_run(stats: dict[str, Any]) -> None:
    """Under ``traceduck run``, append this process's final counters to the run's report file
    (one JSON line per process), so the run's summary can say what was written and dropped."""
    path = run_settings().get("report")
    if not isinstance(path, str):
        return
    line = json.dumps(
        {
            "pid": os.getpid(),
            "written_traces": stats.get("written_traces", 0),
            "dropped_traces": stats.get("dropped_traces", 0),
            "dropped_spans": stats.get("dropped_spans", 0),
            "last_error": stats.get("last_error"),
            "otlp_dropped_spans": stats.get("otlp_dropped_spans", 0),
        }
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # the run created it; never create one
    except OSError:
        return
    try:
        os.write(fd, (line + "\n").encode())  # one write: lines of processes do not interleave
    finally:
        os.close(fd)


def base_context() -> dict[str, Any]:
    """The per-process part of the context (cached per pid: a forked child recomputes)."""
    pid = os.getpid()
    key = ("base", pid)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            cached = {
                "user": _user(),
                "host": socket.gethostname(),
                "pid": pid,
                "python": platform.python_version(),
                "traceduck_version": _version(),
            }
            try:
                git = git_context()
            except Exception as exc:
                _runtime.report_internal_error("automatic context (git)", exc)
                git = None
            if git is not None:
                cached["git"] = git
            _cache[key] = cached
    return cached


# This process's id, kept up to date at fork (os.getpid() is a system call: once per trace
# it showed in a tight loop's profile).
_pid = [os.getpid()]


def _new_pid() -> None:
    _pid[0] = os.getpid()


_runtime.after_fork_in_child(_new_pid)


def _context_for(resource: Any, run_id: Any) -> dict[str, Any]:
    """The full context for spans of ``resource`` (one dict per resource, shared by traces)."""
    key = (_pid[0], id(resource), SETTINGS.enabled, run_id)
    cached = _cache.get(key)
    if cached is None:
        out: dict[str, Any] = {}
        if SETTINGS.enabled:
            attrs = getattr(resource, "attributes", None) or {}
            out = dict(base_context())
            out["service"] = {
                "name": attrs.get("service.name"),
                "version": attrs.get("service.version"),
            }
        if run_id is not None:
            out["run_id"] = run_id
        cached = _cache[key] = out
    return cached


# A root's automatic labels: metadata entries (key, value, unix ns) and tags.
Labels = tuple[list[tuple[str, Any, int]], dict[str, Any]]
_NONE: Labels = ([], {})


class AutoLabels:
    """The automatic context and ``traceduck run``'s labels of this process's local roots.

    The run's settings are read once, on first use (``$TRACEDUCK_RUN`` is set before the
    process starts); whether the context is on is read per call (``configure(auto_context=)``).
    """

    def __init__(self) -> None:
        self._run: dict[str, Any] | None = None
        # The last answer, scrubbed, without timestamps: (pid, resource id, context on),
        # the redactor, [(key, value)], tags. Every root of a process under one provider
        # gets the same labels: they are made and scrubbed once, not per trace.
        self._last: tuple[tuple[int, int, bool], Any, list[tuple[str, Any]], dict] | None = None

    def for_root(self, start_ns: int, resource: Any) -> Labels:
        """(metadata entries, tags) to add to the trace whose local root started at
        ``start_ns`` (unix ns) under ``resource``. The entries are a new list on each call
        (the caller may keep it), but for none: then a shared empty list."""
        run = self._run
        if run is None:
            run = self._run = run_settings()
        enabled = SETTINGS.enabled
        if not enabled and not run:
            return _NONE
        key = (_pid[0], id(resource), enabled)
        redactor = _redact.active()
        last = self._last
        if last is None or last[0] != key or last[1] is not redactor:
            entries: list[tuple[str, Any, int]] = []
            context = _context_for(resource, run.get("run_id"))
            if context:
                entries.append(("context", context, 0))
            run_meta = run.get("metadata")
            if run_meta:
                entries.extend((k, v, 0) for k, v in run_meta.items())
            entries, tags = redact_labels(entries, run.get("tags") or {})  # configure(redact=)
            last = self._last = (key, redactor, [(k, v) for k, v, _ in entries], tags)
        return [(k, v, start_ns) for k, v in last[2]], last[3]
