"""traceduck's JSON encoding (stored attributes, inputs/outputs, tags) matches the standard
library's compact encoding exactly, for every JSON value, and fails the same way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceduck import _json

_REFERENCE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_LENIENT_REFERENCE = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=repr
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_dumps_is_the_standard_compact_encoding(value: Any) -> None:
    assert _json.dumps(value) == _REFERENCE.encode(value)
    assert json.loads(_json.dumps(value)) == json.loads(_REFERENCE.encode(value))


@given(values)
def test_lenient_dumps_matches_the_standard_encoding_with_repr_fallback(value: Any) -> None:
    assert _json.dumps_lenient(value) == _LENIENT_REFERENCE.encode(value)


def test_lenient_dumps_writes_what_json_cannot_hold_as_text() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    assert json.loads(_json.dumps_lenient({"a": Thing(), "b": float("nan")})) == {
        "a": "Thing()",
        "b": "nan",
    }


@pytest.mark.parametrize(
    ("value", "error"),
    [({"a": object()}, TypeError), (float("inf"), ValueError), ([1, float("nan")], ValueError)],
)
def test_strict_dumps_refuses_what_json_cannot_hold(value: Any, error: type) -> None:
    with pytest.raises(error):
        _json.dumps(value)


def test_a_circular_value_is_an_error_every_time_not_a_crash() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    for _ in range(2):  # the guard is fresh per call: the second call is judged on its own
        with pytest.raises(ValueError, match="Circular"):
            _json.dumps(loop)
    assert _json.dumps([[1], [1]]) == "[[1],[1]]"  # the same list twice is not a cycle
    shared = [1]
    assert _json.dumps([shared, shared]) == "[[1],[1]]"


_names = st.lists(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True),
    min_size=1,
    max_size=5,
    unique=True,
)
_scalars = st.one_of(
    st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True), st.text(max_size=250)
)


@given(names=_names, data=st.data())
def test_positional_inputs_encode_as_the_bound_dict_does(names: list[str], data: Any) -> None:
    """The quick encoding of positional scalar inputs gives the very text of the general path
    (the bound dict through the encoder), whatever the scalars and however many."""
    from traceduck._capture import _bind, encode, encode_inputs

    args = tuple(data.draw(st.lists(_scalars, max_size=len(names) + 2)))
    names_t = tuple(names) if len(args) <= len(names) else (*names, "*rest")
    assert encode_inputs((names_t, args, {})) == encode(_bind(names_t, args, {}))
