"""Experiments on ClickHouse: ``td_experiments`` rows (one per name, ideally) and their ids.

As on DuckDB, ids are given in order of creation ("0" is Default, made with the schema). A name
is created by one insert; a reader takes, per name, the id of its earliest row, so two writers
creating the same new name at once still agree on one id. Two writers creating two *different*
new names at the same moment on a server may both take the next number: creating experiments
is rare and done by ``set_experiment`` before tracing, so this is left as a known limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import pyarrow as pa

from ...model import Experiment
from .._experiments import split_default
from ._client import Connection

_CURRENT = (
    "SELECT name, argMin(eid, c) AS experiment_id, min(c) AS created FROM "
    "(SELECT name, experiment_id AS eid, created AS c FROM td_experiments) GROUP BY name"
)


def ensure(conn: Connection, names: Iterable[str]) -> dict[str, str]:
    """name -> id for each of ``names``, creating the missing ones (in the order given)."""
    ids, wanted = split_default(names)
    if not wanted:
        return ids
    rows = conn.query(
        f"SELECT name, experiment_id FROM ({_CURRENT}) WHERE name IN {{n:Array(String)}}",
        {"n": wanted},
    )
    ids.update((name, eid) for name, eid in rows)
    missing = [n for n in wanted if n not in ids]
    if missing:
        last = conn.query("SELECT max(toInt64OrZero(experiment_id)) FROM td_experiments")
        first = int(last[0][0] or 0) + 1 if last else 1
        made = {name: str(first + i) for i, name in enumerate(missing)}
        now = datetime.now(timezone.utc)
        conn.insert_arrow(
            "td_experiments",
            pa.table(
                {
                    "experiment_id": list(made.values()),
                    "name": list(made),
                    "created": pa.array([now] * len(made), pa.timestamp("us", tz="UTC")),
                }
            ),
        )
        ids.update(ensure(conn, missing))  # the ids every reader sees (earliest row per name)
    return ids


def by_name(conn: Connection, name: str) -> Experiment | None:
    found = _select(conn, "WHERE name = {n:String}", {"n": name})
    return found[0] if found else None


def by_id(conn: Connection, experiment_id: str) -> Experiment | None:
    found = _select(conn, "WHERE experiment_id = {e:String}", {"e": str(experiment_id)})
    return found[0] if found else None


def every(conn: Connection) -> list[Experiment]:
    return _select(conn, "", {})


def _select(conn: Connection, where: str, params: dict) -> list[Experiment]:
    rows = conn.query(
        f"SELECT experiment_id, name, created FROM ({_CURRENT}) {where} "
        "ORDER BY toInt64OrZero(experiment_id), experiment_id",
        params,
    )
    out = []
    for eid, name, created in rows:
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        out.append(Experiment(eid, name, int(created.timestamp() * 1000)))
    return out
