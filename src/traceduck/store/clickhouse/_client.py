"""One clickhouse-connect client per store per process, for a server and for chdb alike.

clickhouse-connect speaks HTTP to a server and, through chdb's backend, to ClickHouse embedded
in this process (``get_client(dsn="chdb:///dir")``): the same client API, the same SQL and the
same ``{name:Type}`` parameters, so everything above this module has one code path.

chdb runs one engine directory per process and, like DuckDB, one process per directory: a
second process gets a ``StorageError`` (the engine refuses it; nothing crashes). Several
databases in one directory are fine (``chdb:///dir?database=x``).

A client is shared by the threads of the process: clickhouse-connect serialises calls on a chdb
handle and pools HTTP connections, and binds parameters per call (a raw ``chdb.Session`` shared
by threads mixes up parameters: see shared notes).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import re
import threading
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from ... import _runtime
from ...errors import StorageError
from .._names import StoreName

__all__ = ["Connection", "connect", "storage_error"]

# Server error codes that mean "who you are" is wrong (not the store).
_AUTH_CODES = {"192", "193", "194", "516", "497"}
_CODE = re.compile(r"Code: (\d+)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')\]]+)")

# A library's logger stays quiet unless the application configures logging: without a handler
# of its own, clickhouse-connect's warnings ("Unexpected Http Driver Exception") would reach
# stderr beside traceduck's one-line error.
logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())

_CLIENTS: dict[tuple[object, ...], Connection] = {}
_LOCK = threading.Lock()
_CHDB_PATH: list[str] = []  # the one chdb directory this process has open, if any
_CHDB_PID: list[int] = []  # the process that started chdb's engine (a forked child inherits it)


# Sent with every query and insert. On one node they change nothing; on a cluster
# (``_cluster``: Distributed tables over replicated local ones) the filters and views use IN
# subqueries over distributed tables, which need "global" (the default, "deny", refuses them),
# and an insert must return only when every shard has its rows, so that a trace becomes visible
# after its spans, tags and metadata (the writer's order).
CLUSTER_SETTINGS = {"distributed_product_mode": "global", "insert_distributed_sync": 1}


# The writer's statements on chdb run in one thread: the engine's second thread takes more CPU
# than it saves on batches of thousands of rows, from an application that shares the cores.
_CHDB_WRITE_SETTINGS = "max_threads = 1, max_insert_threads = 1"


class Connection:
    """A client bound to one store's database, with the store's name for messages."""

    def __init__(self, name: StoreName, client: Any) -> None:
        self.name = name
        self._client = client
        self._pid = os.getpid()  # the process whose client this is
        self.chdb = name.engine == "chdb"
        # The writer's lookups and inserts through chdb's own API (``stored_trace_ids``,
        # ``insert_arrow_tables``); off, they take a server's path (clickhouse-connect).
        self.chdb_api = self.chdb
        self.database = name.database
        self._reader: Any = None
        self._raw_handle: tuple[Any, threading.Lock] | None = None
        self.schema_ready = False  # migrated by this process (see _schema.migrate)

    @property
    def client(self) -> Any:
        """The clickhouse-connect client, this process's own: in a forked child a server's is
        opened afresh (the parent's HTTP connections are the parent's: two processes on one
        socket read each other's answers), and chdb's engine, which belongs to the process
        that opened it, is a StorageError (``_forked``)."""
        if self._pid != os.getpid():
            self._forked()
        return self._client

    def _forked(self) -> None:
        if self.chdb:
            raise _forked_chdb(self.name)
        with _LOCK:
            if self._pid != os.getpid():
                self._client = _open(self.name)
                self._reader = None
                self._pid = os.getpid()

    def query(self, sql: str, params: dict[str, Any] | None = None, **settings: Any) -> list:
        """Rows of a SELECT, as tuples."""
        try:
            return self.client.query(
                sql, parameters=params or None, settings={**CLUSTER_SETTINGS, **settings}
            ).result_rows
        except ClickHouseError as exc:
            raise storage_error(self.name, exc) from exc

    def query_arrow(self, sql: str, params: dict[str, Any] | None = None, **settings: Any) -> Any:
        try:
            return self.client.query_arrow(
                sql, parameters=params or None, settings={**CLUSTER_SETTINGS, **settings}
            )
        except ClickHouseError as exc:
            raise storage_error(self.name, exc) from exc

    def command(self, sql: str, params: dict[str, Any] | None = None, **settings: Any) -> Any:
        try:
            return self.client.command(
                sql, parameters=params or None, settings={**CLUSTER_SETTINGS, **settings}
            )
        except ClickHouseError as exc:
            raise storage_error(self.name, exc) from exc

    def run_script(self, statements: list[str]) -> None:
        """Statements without parameters or results (DDL), in order; the first that fails
        raises, and the ones after it do not run. On chdb one call into the engine, which opens
        a new database in about half the time of a call per statement
        (``benchmarks/profile_chdb_new_store.py``); on a server one request each."""
        if not self.chdb_api:
            for statement in statements:
                self.command(statement)
            return
        if statements:
            self._raw_query(";\n".join([f"USE `{self.database}`", *statements]))

    def insert_arrow(self, table: str, data: Any) -> None:
        """One INSERT of an Arrow table: one block, so atomic (it lands whole or not at all).

        On a server, ``async_insert`` lets many writers insert at once without making one part
        each; ``wait_for_async_insert`` returns only when the rows are written (and visible).
        chdb has one writer: a plain insert."""
        settings = {
            **CLUSTER_SETTINGS,
            **(
                {"async_insert": 0}
                if self.chdb
                else {"async_insert": 1, "wait_for_async_insert": 1}
            ),
        }
        try:
            self.client.insert_arrow(table, data, settings=settings)
        except ClickHouseError as exc:
            raise storage_error(self.name, exc) from exc

    def insert_arrow_tables(
        self, inserts: list[tuple[str, Any]], exprs: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Insert Arrow tables into their tables, in order, each one INSERT (one block: whole
        or not at all); the first that fails raises, and the ones after it are not inserted.

        On a server, one ``insert_arrow`` after the other. On chdb, one call of up to four
        INSERTs, each reading its Arrow table where it is (chdb's ``Python()`` table
        function): clickhouse-connect's chdb backend writes each table to a temporary file
        for an ``INSERT ... FROM INFILE``, and every call into the engine is a wait for the
        GIL when it returns, up to 5 ms beside the application's busy thread. ``exprs``
        (chdb's API only): per table, SQL that the engine inserts instead of a column's values (an
        expression over that column)."""
        inserts = [(table, data) for table, data in inserts if data.num_rows]
        exprs = exprs or {}
        if not self.chdb_api or len(inserts) > 4:
            if any(exprs.get(table) for table, _ in inserts):
                raise ValueError("column expressions are for chdb's in-place inserts only")
            for table, data in inserts:
                self.insert_arrow(table, data)
            return
        if not inserts:
            return
        # Python() finds a table by name among the local variables of the calling frames.
        _td_0, _td_1, _td_2, _td_3 = (*(data for _, data in inserts), None, None, None)[:4]
        statements = []
        for i, (table, data) in enumerate(inserts):
            names = data.schema.names
            values = [exprs.get(table, {}).get(name, name) for name in names]
            statements.append(
                f"INSERT INTO `{self.database}`.{table} ({', '.join(names)}) "
                f"SELECT {', '.join(values)} FROM Python(_td_{i}) "
                f"SETTINGS {_CHDB_WRITE_SETTINGS}, output_format_json_escape_forward_slashes = 0"
            )
        self._raw_query(";\n".join(statements))
        del _td_0, _td_1, _td_2, _td_3

    def stored_trace_ids(
        self, tables: tuple[str, ...], ids: list[str], condition: str = ""
    ) -> set[str]:
        """Those of ``ids`` (hexadecimal trace ids) with a row in any of ``tables`` (that meets
        the SQL ``condition``, if given), through chdb's own API (``chdb_api``; a server takes
        ``query``).

        On chdb the ids go to the engine as one string parameter it splits itself: bound by
        clickhouse-connect (which escapes a parameter character by character in Python) or
        written out as literals (which the engine's SQL parser reads at some 6 µs apiece),
        10,000 ids cost the writer 30-60 ms; split by the engine, under 10. The query runs on
        a handle of its own (chdb gives each handle its session; the engine is the same)."""
        chosen = "(SELECT arrayJoin(splitByChar(',', {ids:String})))"
        where = f"{condition} AND " if condition else ""
        sql = (
            " UNION DISTINCT ".join(
                f"SELECT trace_id FROM `{self.database}`.{table} WHERE {where}trace_id IN {chosen}"
                for table in tables
            )
            + f" SETTINGS {_CHDB_WRITE_SETTINGS}"
        )
        result = self._raw_query(sql, params={"ids": ",".join(ids)})
        return set(result.bytes().decode().split()) if result is not None else set()

    def _raw_query(self, sql: str, **options: Any) -> Any:
        """``sql`` (one or more statements) on chdb's own connection, as TabSeparated."""
        handle, lock = self._raw()
        try:
            with lock:
                return handle.query(sql, "TabSeparated", **options)
        except Exception as exc:  # chdb's own errors, not clickhouse-connect's
            raise storage_error(self.name, exc) from exc

    def _raw(self) -> tuple[Any, threading.Lock]:
        """chdb's own connection to this process's engine (opened on first use)."""
        if self._pid != os.getpid():
            self._forked()
        with _LOCK:
            if self._raw_handle is None:
                import chdb

                self._raw_handle = (chdb.connect(os.path.realpath(self.name.path or "")),
                                    threading.Lock())  # fmt: skip
                # Closed before chdb's own exit hooks (registered earlier, so run later): a
                # handle still open when the engine shuts down crashes the interpreter's exit.
                atexit.register(self._close_raw)
            return self._raw_handle

    def _close_raw(self) -> None:
        if self._raw_handle is not None and self._pid == os.getpid():
            handle, lock = self._raw_handle
            with lock:
                self._raw_handle = None
                handle.close()

    def query_arrow_read_only(self, sql: str, params: dict[str, Any] | None = None,
                              **settings: Any) -> Any:  # fmt: skip
        """A user's query, which the engine refuses to let write (``readonly = 2``).

        chdb keeps a setting for the session, and a session in readonly mode cannot leave it:
        there the query runs on a second handle of the same engine that stays read-only."""
        client = self.client
        if self.chdb:
            with _LOCK:
                if self._reader is None:
                    self._reader = clickhouse_connect.get_client(dsn=f"chdb://{self.name.path}")
                    self._reader.database = self.database
                    self._reader.command("SET readonly = 2")
                client = self._reader
        else:
            settings = {**settings, "readonly": 2}
        try:
            return client.query_arrow(
                sql, parameters=params or None, settings={**CLUSTER_SETTINGS, **settings}
            )
        except ClickHouseError as exc:
            raise storage_error(self.name, exc) from exc

    def close(self) -> None:
        if self._pid != os.getpid():
            return  # the parent's client: not this process's to close
        try:
            self._close_raw()
            self._client.close()
        except Exception:
            pass


def storage_error(name: StoreName, exc: BaseException) -> StorageError:
    """A ClickHouse failure as a StorageError that says what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = _CODE.search(str(exc))
    if code and code.group(1) in _AUTH_CODES:
        return StorageError(
            f"ClickHouse at {name.display} refused the credentials ({text}); check the user "
            "and password in the URL (clickhouse://user:password@host:port/database)"
        )
    if isinstance(exc, OperationalError) and not code:
        return StorageError(
            f"cannot reach ClickHouse at {name.display} ({_reason(text)}); is the server running "
            "and are the host and port right?"
        )
    return StorageError(f"ClickHouse store {name.display}: {text}")


def connect(name: StoreName) -> Connection:
    """The process-wide connection of a ClickHouse store (created on first use). A server's
    is opened outside the lock: one that never answers holds up only its own caller (up to
    the read timeout), not every other store of the process."""
    with _LOCK:
        conn = _CLIENTS.get(name.key)
        if conn is None and name.engine == "chdb":
            conn = _CLIENTS[name.key] = Connection(name, _open(name))
        if conn is not None:
            return conn
    opened = Connection(name, _open(name))
    with _LOCK:
        conn = _CLIENTS.setdefault(name.key, opened)
    if conn is not opened:  # another thread's came first
        opened.close()
    return conn


def _open(name: StoreName) -> Any:
    if name.engine == "chdb":
        return _open_chdb(name)
    try:
        client = clickhouse_connect.get_client(
            host=name.host,
            port=name.port,
            username=name.user or "default",
            password=name.password or "",
            secure=name.secure,
            connect_timeout=5,
            send_receive_timeout=30,
            autogenerate_session_id=False,
        )
        client.command(f"CREATE DATABASE IF NOT EXISTS `{name.database}`")
        client.database = name.database
        return client
    except ClickHouseError as exc:
        raise storage_error(name, exc) from exc
    except Exception as exc:  # DNS and socket errors from urllib3 before the driver wraps them
        raise StorageError(
            f"cannot reach ClickHouse at {name.display} ({_reason(str(exc))})"
        ) from exc


def _reason(text: str) -> str:
    """The socket's own words in a driver's long connection error ("Connection refused",
    "Name or service not known"), else the first line."""
    found = _ERRNO.search(text)
    return found.group(1).strip() if found else text.strip().splitlines()[0]


def _forked_chdb(name: StoreName) -> StorageError:
    return StorageError(
        f"cannot use {name.display} in this process: it was forked from the one that started "
        "chdb's engine, which belongs to that process (chdb admits one process per "
        "directory). Trace forked processes into a ClickHouse server (clickhouse://...) or a "
        "DuckDB file"
    )


def _after_fork_in_child() -> None:
    """A new lock (another thread may have held it at the fork); and, where the parent had
    started chdb's engine, an exit without the engine's own exit handlers. Those wait for the
    engine's threads, which a forked child does not have: a child that ends by returning or by
    sys.exit() would hang for ever (chdb 4.4). glibc's ``on_exit`` hands ``_exit`` the status
    after Python has finished its own exit (its atexit functions, its files flushed)."""
    global _LOCK
    _LOCK = threading.Lock()
    if not _CHDB_PID:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.on_exit(libc._exit, None)
    except (OSError, AttributeError):  # not glibc
        pass


_runtime.after_fork_in_child(_after_fork_in_child)


def _open_chdb(name: StoreName) -> Any:
    path = name.path or ""
    if _CHDB_PID and _CHDB_PID[0] != os.getpid():
        raise _forked_chdb(name)
    if _CHDB_PATH and _CHDB_PATH[0] != path:
        raise StorageError(
            f"cannot open {name.display}: this process already runs chdb on {_CHDB_PATH[0]}, and "
            "chdb runs one directory per process. Keep several stores in one directory with "
            "chdb:///dir?database=NAME"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise StorageError(f"cannot open {name.display}: {path} is a file, not a chdb directory")
    try:
        client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    except DatabaseError as exc:
        if "Unable to open the chdb engine" in str(exc):
            raise StorageError(
                f"cannot open {name.display}: the directory is in use by another process (chdb, "
                "like DuckDB, admits one process per directory), or it is not a chdb directory. "
                "Stop the other process, or use a ClickHouse server for many processes"
            ) from exc
        raise storage_error(name, exc) from exc
    except ImportError as exc:
        raise StorageError(
            f"{name.display} needs chdb: pip install 'traceduck[clickhouse]'"
        ) from exc
    if not _CHDB_PATH:
        _CHDB_PATH.append(path)
        _CHDB_PID.append(os.getpid())
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS `{name.database}`")
        client.database = name.database
    except ClickHouseError as exc:
        raise storage_error(name, exc) from exc
    return client
