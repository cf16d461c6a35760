"""How a user names a store, parsed in one place.

Everywhere a store is named (``configure(db=...)``, ``TraceStore(...)``, ``$TRACEDUCK_DB``,
``--db``) the same three forms are accepted::

    traces.duckdb                                          a DuckDB file (any path)
    chdb:///abs/dir   chdb://rel/dir                       ClickHouse embedded in the process
    clickhouse://[user[:password]@]host[:port]/[database]  a ClickHouse server over HTTP
    clickhouses://...                                      the same over HTTPS

A text with ``://`` is a URL and must be one of these (a typo such as ``clickhous://`` is a
``ConfigError``, never a DuckDB file of that name); anything else is a path. The chdb form takes
``?database=NAME`` to keep several stores in one directory (the default database is
``traceduck`` for both ClickHouse forms).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigError

__all__ = ["DEFAULT_DATABASE", "StoreName", "is_clickhouse", "missing_store", "parse_store_name"]

Engine = Literal["duckdb", "chdb", "clickhouse"]
DEFAULT_DATABASE = "traceduck"
_SCHEMES = ("chdb", "clickhouse", "clickhouses")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SYSTEM_DATABASES = ("system", "information_schema", "_temporary_and_external_tables")
_EXAMPLES = (
    "a DuckDB path (traces.duckdb), chdb:///path/to/dir, or "
    "clickhouse://[user[:password]@]host[:port]/[database] (clickhouses:// for TLS)"
)


@dataclass(frozen=True)
class StoreName:
    """A parsed store name. ``path`` is the DuckDB file or the chdb directory."""

    engine: Engine
    text: str  # as given (may hold a password: show ``display`` instead)
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str = DEFAULT_DATABASE
    secure: bool = False

    @property
    def display(self) -> str:
        """The name with any password hidden, for messages."""
        if self.engine == "duckdb":
            return self.text
        if self.engine == "chdb":
            suffix = "" if self.database == DEFAULT_DATABASE else f"?database={self.database}"
            return f"chdb://{self.path}{suffix}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        who = f"{self.user}{':***' if self.password else ''}@" if self.user else ""
        return f"{scheme}://{who}{self.host}:{self.port}/{self.database}"

    @property
    def key(self) -> tuple[object, ...]:
        """Identifies the store: names that mean the same store have the same key."""
        if self.engine == "duckdb":
            return ("duckdb", os.path.realpath(self.path or ""))
        if self.engine == "chdb":
            return ("chdb", os.path.realpath(self.path or ""), self.database)
        return ("clickhouse", self.secure, self.host, self.port, self.user, self.database)


def missing_store(name: StoreName) -> str | None:
    """Why there is no store at ``name`` (``"no such file"``, ``"no folder /x"``, ``"no such
    directory /x"``), or None when there is one or a server decides (it is asked on connect).

    The one rule of where a store exists: only a write creates one (DESIGN). A DuckDB file that
    does not exist reads as an empty store; a chdb directory cannot (chdb runs one directory per
    process), so reading a missing one is this error instead of a new, empty store on disk; the
    CLI refuses both for its reading commands."""
    if name.engine == "chdb" and name.path is not None:
        return None if os.path.isdir(name.path) else f"no such directory {name.path}"
    if name.engine != "duckdb" or os.path.exists(name.text):
        return None
    folder = os.path.dirname(os.path.abspath(name.text))
    return "no such file" if os.path.isdir(folder) else f"no folder {folder}"


def is_clickhouse(name: str | os.PathLike[str] | StoreName) -> bool:
    """Whether ``name`` names a ClickHouse store (chdb or a server); bad URLs raise."""
    parsed = name if isinstance(name, StoreName) else parse_store_name(name)
    return parsed.engine != "duckdb"


def parse_store_name(name: str | os.PathLike[str]) -> StoreName:
    """Parse a store name; ``ConfigError`` saying what to write for a malformed URL."""
    if isinstance(name, StoreName):
        return name
    if not isinstance(name, (str, os.PathLike)):
        raise ConfigError(f"a store is named by a path or URL ({_EXAMPLES}), not {name!r}")
    text = os.fspath(name)
    if isinstance(text, bytes):
        raise ConfigError(f"a store name must be text, not bytes: {text!r}")
    if not text.strip():
        raise ConfigError(f"the store name is empty; give {_EXAMPLES}")
    match = _URL.match(text)
    if match is None:
        return StoreName("duckdb", text, path=text)
    scheme = match.group(1).lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unknown store URL scheme {scheme + '://'!r} in {text!r}; use {_EXAMPLES}"
        )
    if scheme == "chdb":
        return _parse_chdb(text)
    return _parse_server(text, secure=scheme == "clickhouses")


def _parse_chdb(text: str) -> StoreName:
    rest = text[len("chdb://") :]
    path, _, query = rest.partition("?")
    path = unquote(path)
    if not path:
        raise ConfigError(
            f"{text!r} names no directory: write chdb:///absolute/dir or chdb://relative/dir"
        )
    options = _options(text, query, allowed=("database",))
    database = _database(text, options.get("database", DEFAULT_DATABASE))
    return StoreName("chdb", text, path=os.path.abspath(path), database=database)


def _parse_server(text: str, *, secure: bool) -> StoreName:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"bad ClickHouse URL {_hide(text)!r}: {exc}; the port must be a number 1-65535, as "
            "in clickhouse://localhost:8123/traceduck"
        ) from None
    if not parts.hostname:
        raise ConfigError(
            f"ClickHouse URL {_hide(text)!r} names no host; write e.g. "
            "clickhouse://user:password@localhost:8123/traceduck"
        )
    if port == 0:
        raise ConfigError(f"ClickHouse URL {_hide(text)!r}: the port must be 1-65535")
    path = parts.path.strip("/")
    if "/" in path:
        raise ConfigError(
            f"ClickHouse URL {_hide(text)!r}: the path is one database name, not {path!r}"
        )
    if parts.fragment:
        raise ConfigError(f"ClickHouse URL {_hide(text)!r} must not have a #fragment")
    _options(_hide(text), parts.query, allowed=())
    return StoreName(
        "clickhouse",
        text,
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=_database(_hide(text), unquote(path) or DEFAULT_DATABASE),
        secure=secure,
    )


def _options(text: str, query: str, *, allowed: tuple[str, ...]) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"store URL {text!r} has a malformed ?query") from None
    options = dict(pairs)
    if len(options) != len(pairs):  # which one would win is no choice to make silently
        twice = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ConfigError(f"store URL {text!r} gives {twice!r} more than once")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no ?options"
        raise ConfigError(f"store URL {text!r}: unknown option {unknown[0]!r} (it {takes})")
    return options


def _database(text: str, database: str) -> str:
    if not _DATABASE.match(database):
        raise ConfigError(
            f"store URL {text!r}: database {database!r} must be letters, digits and "
            "underscores, starting with a letter or underscore"
        )
    if database.lower() in _SYSTEM_DATABASES:
        raise ConfigError(
            f"store URL {text!r}: {database!r} is ClickHouse's own database; name another "
            f"(the default is {DEFAULT_DATABASE!r})"
        )
    return database


def _hide(text: str) -> str:
    """The URL with its password replaced, for error messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)
