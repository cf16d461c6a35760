"""The ``experiments`` table: experiment names and the ids the store gives them.

Ids are assigned in order of creation, "1", "2", ... ("0" is Default, made with the schema), as
MLflow's SQL stores do, so MLflow code written against a fresh store (``experiment_ids=["1"]``)
means the same here. A name is created the first time ``set_experiment`` or a written trace
names it, inside that caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import duckdb

from ...model import Experiment
from .._experiments import split_default

_COLUMNS = "experiment_id, name, created"


def ensure(cur: duckdb.DuckDBPyConnection, names: Iterable[str], now: datetime) -> dict[str, str]:
    """name -> id for each of ``names``, creating the missing ones (in the order given)."""
    ids, wanted = split_default(names)
    if not wanted:
        return ids
    holes = ", ".join("?" * len(wanted))
    ids.update(
        cur.execute(
            f"SELECT name, experiment_id FROM experiments WHERE name IN ({holes})", wanted
        ).fetchall()
    )
    missing = [n for n in wanted if n not in ids]
    if missing:
        (last,) = cur.execute(
            "SELECT coalesce(max(TRY_CAST(experiment_id AS BIGINT)), 0) FROM experiments"
        ).fetchone()
        made = {name: str(last + 1 + i) for i, name in enumerate(missing)}
        cur.execute(
            "INSERT INTO experiments VALUES " + ", ".join(["(?, ?, ?)"] * len(made)),
            [v for name, eid in made.items() for v in (eid, name, now)],
        )
        ids.update(made)
    return ids


def by_name(cur: duckdb.DuckDBPyConnection, name: str) -> Experiment | None:
    rows = cur.execute(f"SELECT {_COLUMNS} FROM experiments WHERE name = ?", [name]).fetchall()
    return _experiment(rows[0]) if rows else None


def by_id(cur: duckdb.DuckDBPyConnection, experiment_id: str) -> Experiment | None:
    rows = cur.execute(
        f"SELECT {_COLUMNS} FROM experiments WHERE experiment_id = ?", [str(experiment_id)]
    ).fetchall()
    return _experiment(rows[0]) if rows else None


def every(cur: duckdb.DuckDBPyConnection) -> list[Experiment]:
    """Every experiment, oldest (Default) first."""
    rows = cur.execute(
        f"SELECT {_COLUMNS} FROM experiments "
        "ORDER BY TRY_CAST(experiment_id AS BIGINT) NULLS LAST, experiment_id"
    ).fetchall()
    return [_experiment(r) for r in rows]


def _experiment(row: tuple[Any, ...]) -> Experiment:
    eid, name, created = row
    millis = None
    if created is not None:
        millis = int(created.replace(tzinfo=timezone.utc).timestamp() * 1000)
    return Experiment(experiment_id=eid, name=name, creation_time=millis)
