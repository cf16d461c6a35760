"""SQL shared by the ClickHouse readers, filters and views: the current state from events.

The current value of (trace, key) is the tag event with the greatest (version, edit_id, seq);
a deleted key's last event has ``value_type = ''``. For an exclusive key, a trace whose claim
is not the latest of its (key, scope) does not show the tag: when two processes claim at once,
the later claim holds it and the reader never sees two holders.
"""

from __future__ import annotations

__all__ = ["EXCLUSIVE_KEYS", "LATEST", "ORD", "current_metadata", "current_tags", "stale_claims"]

# The order of events as one UInt128 (a materialised column, ``ord``): the version, then 32 bits
# of the edit id (two edits stamped in the same nanosecond by two processes), then the row's
# place in its edit. argMax over one fixed-size number is ~4x faster than over the tuple.
ORD = (
    "bitOr(bitShiftLeft(toUInt128(version), 64), "
    "bitOr(bitShiftLeft(toUInt128(bitAnd(edit_id, 4294967295)), 32), toUInt128(seq)))"
)
LATEST = "ord"


# Keys ever registered exclusive. Every writer registers a key before its first claim (the
# registration's insert comes first), so claims exist only for these keys: narrowing the claim
# scans by this set changes no answer, and for the keys that were never exclusive (most) the
# engine reads no granule of td_tag_events at all (the set prunes the primary key, `key`).
EXCLUSIVE_KEYS = "key IN (SELECT key FROM td_tag_keys WHERE exclusive)"


def stale_claims(
    claim_filter: str = "", holder_filter: str = "", *, registered_only: bool = True
) -> str:
    """(key, trace_id) of claims that a later claim of the same (key, scope) superseded.

    ``claim_filter`` narrows the claims looked at; ``holder_filter`` (by key only: a holder is
    decided among every claim of its key) narrows the holders computed. ``registered_only``:
    read the claims of keys ever registered exclusive only (the same rows, fewer read); off
    for the views of schema version 1, whose SQL stays as it was created."""
    where = f" AND {claim_filter}" if claim_filter else ""
    holders = f" AND {holder_filter}" if holder_filter else ""
    gate = f"{EXCLUSIVE_KEYS} AND " if registered_only else ""
    return (
        f"SELECT key, trace_id FROM td_tag_events WHERE {gate}kind = 'claim'" + where + " AND "
        "(key, claim_scope, trace_id) NOT IN (SELECT key, claim_scope, tupleElement(h, 1) FROM "
        f"(SELECT key, claim_scope, argMax(tuple(trace_id, kind), {LATEST}) AS h "
        f"FROM td_tag_events WHERE {gate}kind != 'event'{holders} GROUP BY key, claim_scope) "
        "WHERE tupleElement(h, 2) = 'claim')"
    )


def current_tags(key_filter: str = "", *, by_key: bool = True, registered_only: bool = True) -> str:
    """Current tags: trace_id, key, value (JSON text), value_type, value_str, value_num,
    value_bool. ``key_filter`` (SQL over td_tag_events, e.g. ``key = {k:String}``) narrows
    the events read; ``by_key``: it names keys only (then it narrows the holders computed too;
    a filter by trace must not, since a holder is decided among every claim of its key).
    ``registered_only``: see ``stale_claims``."""
    where = f" AND {key_filter}" if key_filter else ""
    stale = stale_claims(key_filter, key_filter if by_key else "", registered_only=registered_only)
    return (
        "SELECT trace_id, key, ifNull(tupleElement(cur, 1), '') AS value, "
        "tupleElement(cur, 2) AS value_type, "
        "tupleElement(cur, 3) AS value_str, tupleElement(cur, 4) AS value_num, "
        "tupleElement(cur, 5) AS value_bool FROM ("
        "SELECT trace_id, key, argMax(tuple(new_value, value_type, value_str, value_num, "
        f"value_bool), {LATEST}) AS cur FROM td_tag_events WHERE kind = 'event'{where} "
        "GROUP BY trace_id, key) "
        f"WHERE tupleElement(cur, 2) != '' AND (key, trace_id) NOT IN ({stale})"
    )


def current_metadata(key_filter: str = "") -> str:
    """Latest metadata value per (trace, key): trace_id, key, value (JSON text)."""
    where = f" WHERE {key_filter}" if key_filter else ""
    return (
        f"SELECT trace_id, key, argMax(value, {LATEST}) AS value FROM td_metadata{where} "
        "GROUP BY trace_id, key"
    )
