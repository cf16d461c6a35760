"""Stage-level tests: tokens, parse trees, field spellings, SQL shape, probes, explain."""

from __future__ import annotations

import duckdb
import pytest
from querytest_data import tid

from traceduck.errors import FilterError
from traceduck.query import as_runner, compile_filter, explain, search
from traceduck.query._ast import And, Not, Or, Predicate
from traceduck.query._dialect import json_pointer
from traceduck.query._fields import SPELLINGS
from traceduck.query._parser import parse
from traceduck.query._tokens import Kind, tokenize
from traceduck.store.duckdb._runner import DuckDBRunner


# -- tokens ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'can''t'", "can't"),
        ("'can\\'t'", "can't"),
        ('"say ""hi"""', 'say "hi"'),
        ('"can\\"t"', 'can"t'),
        ("'^v[0-9]+\\.[0-9]+'", "^v[0-9]+\\.[0-9]+"),
        ("'C:\\temp'", "C:\\temp"),
        ("'a\\\\'", "a\\\\"),
        ('"it\\\'s"', "it\\'s"),
        ("''", ""),
        ("'λ ✓'", "λ ✓"),
    ],
)
def test_string_escapes(text: str, value: str) -> None:
    tok = tokenize(text)[0]
    assert tok.kind in (Kind.STRING, Kind.DQUOTED)
    assert tok.value == value
    assert (tok.start, tok.end) == (0, len(text))


def test_tokens_keep_positions() -> None:
    tokens = tokenize("tags.`a``b`.c >= -1.5e3 AND x")
    kinds = [t.kind for t in tokens]
    assert kinds == [
        Kind.WORD, Kind.DOT, Kind.BACKTICK, Kind.DOT, Kind.WORD, Kind.OP, Kind.NUMBER,
        Kind.WORD, Kind.WORD, Kind.EOF,
    ]  # fmt: skip
    assert tokens[2].value == "a`b"
    assert [(t.start, t.end) for t in tokens[5:7]] == [(14, 16), (17, 23)]
    assert tokens[-1].start == 29


@pytest.mark.parametrize("number", ["1", "-2", "+3", "1.5", ".5", "5.", "1e3", "2.5E-2"])
def test_numbers(number: str) -> None:
    tokens = tokenize(f"x = {number}")
    assert tokens[2].kind is Kind.NUMBER and tokens[2].text == number


def test_digits_after_a_dot_are_a_key_segment() -> None:
    tokens = tokenize("tags.2024.q1")
    assert [t.kind for t in tokens[:5]] == [Kind.WORD, Kind.DOT, Kind.WORD, Kind.DOT, Kind.WORD]


# -- parse trees -------------------------------------------------------------------------------
def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    node = parse("status = 'OK' or NOT name = 'a' AND span_count > 1")
    assert isinstance(node, Or)
    right = node.children[1]
    assert isinstance(right, And)
    assert isinstance(right.children[0], Not)


def test_keywords_are_case_insensitive() -> None:
    a = parse("tags.x NOT IN (1) AND tags.y IS NOT NULL OR tags.z NOT LIKE 'a'")
    b = parse("tags.x not in (1) and tags.y is not null or tags.z not like 'a'")
    assert repr(a) == repr(b)


@pytest.mark.parametrize(
    ("text", "op", "negated"),
    [
        ("tags.x IN (1, 'a', true, null)", "IN", False),
        ("tags.x NOT IN (1)", "IN", True),
        ("tags.x IS NULL", "IS", False),
        ("tags.x IS NOT NULL", "IS", True),
        ("tags.x NOT LIKE 'a'", "LIKE", True),
        ("tags.x NOT CONTAINS 'a'", "CONTAINS", True),
        ("tags.x <> 'a'", "!=", False),
    ],
)
def test_predicate_forms(text: str, op: str, negated: bool) -> None:
    node = parse(text)
    assert isinstance(node, Predicate)
    assert (node.op, node.negated) == (op, negated)


# -- field spellings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("request_id", "trace_id"),
        ("trace.request_id", "trace_id"),
        ("attributes.trace_id", "trace_id"),
        ("timestamp", "timestamp_ms"),
        ("trace.timestamp", "timestamp_ms"),
        ("attribute.timestamp_ms", "timestamp_ms"),
        ("execution_time", "execution_time_ms"),
        ("trace.execution_time_ms", "execution_time_ms"),
        ("`timestamp`", "timestamp_ms"),
        ("`trace`.status", "status"),
        ("Status", "status"),
        ("span.duration_ms", "span.execution_time_ms"),
        ("span.span_type", "span.type"),
    ],
)
def test_aliases_resolve_to_one_field(spelling: str, canonical: str) -> None:
    node = parse(f"{spelling} IS NULL")
    assert isinstance(node, Predicate)
    assert node.field.name == canonical


@pytest.mark.parametrize(
    ("spelling", "family", "key"),
    [
        ("tags.model.version", "tag", "model.version"),
        ("tag.model.version", "tag", "model.version"),
        ("`tags`.k", "tag", "k"),
        ("tags.`model.version`", "tag", "model.version"),
        ('tags."a b"', "tag", "a b"),
        ("span.attributes.traceduck.tag.tenant", "span_attr", "traceduck.tag.tenant"),
        ("span.attribute.`x y`", "span_attr", "x y"),
    ],
)
def test_keyed_fields_take_the_whole_rest_as_key(spelling: str, family: str, key: str) -> None:
    node = parse(f"{spelling} IS NULL")
    assert isinstance(node, Predicate)
    assert (node.field.family, node.field.key) == (family, key)


def test_metadata_tries_the_flat_key_first() -> None:
    node = parse("request_metadata.context.git.commit IS NULL")
    assert isinstance(node, Predicate)
    assert node.field.candidates == (
        ("context.git.commit", ()),
        ("context.git", ("commit",)),
        ("context", ("git", "commit")),
    )


def test_every_spelling_in_the_table_parses() -> None:
    for spelling in SPELLINGS:
        assert isinstance(parse(f"{spelling} IS NOT NULL"), Predicate), spelling


def test_json_pointer_escapes_keys() -> None:
    assert json_pointer("a/b~c", ("0", "x.y")) == "/a~1b~0c/0/x.y"


# -- MLflow filters from its documentation and tests -------------------------------------------
MLFLOW_FILTERS = [
    "attributes.status = 'OK'",
    "attributes.status = 'ERROR'",
    "attributes.timestamp_ms > 1749006880539",
    "attributes.execution_time_ms > 5000",
    "tags.environment = 'production'",
    "tags.`mlflow.traceName` = 'my_function'",
    "metadata.`mlflow.user` = 'alice@company.com'",
    "metadata.`mlflow.trace.session` = 'session_abc'",
    "attributes.status = 'OK' AND tags.environment = 'production'",
    "trace.name = 'predict'",
    "trace.timestamp > 1700000000000",
    "trace.status = 'OK'",
    "status = 'ERROR'",
    "name = 'predict'",
    "request_id = 'tr-123'",
    "trace.request_id IN ('tr-1', 'tr-2')",
    "timestamp_ms > 1 AND timestamp_ms < 2",
    "execution_time > 100",
    "tags.\"t.a.g\" = \"a\"",
    "`tags`.source_name = 'a notebook'",
    "tags.version = 'commit-hash'",
    "span.type = 'LLM'",
    "span.type != 'CHAIN'",
    "span.type IN ('LLM', 'CHAIN')",
    "span.type NOT IN ('UNKNOWN')",
    "span.name = 'llm' AND span.type = 'LLM'",
    "span.attributes.temperature LIKE '%0.7%'",
    "trace.status IN ('OK', 'IN_PROGRESS')",
    "tags.env LIKE 'pro%'",
    "tags.env ILIKE 'PRO%'",
    "tags.env RLIKE '^v[0-9]+\\.[0-9]+'",
]  # fmt: skip


@pytest.mark.parametrize("text", MLFLOW_FILTERS)
def test_mlflow_filters_are_accepted(con: duckdb.DuckDBPyConnection, text: str) -> None:
    search(con, text)


def test_mlflow_fields_we_do_not_have_get_a_clear_error(con: duckdb.DuckDBPyConnection) -> None:
    for text in ("trace.text LIKE '%a%'", "span.content LIKE '%a%'", "feedback.score > 0.5"):
        with pytest.raises(FilterError, match="unknown field"):
            search(con, text)


# -- SQL shape ---------------------------------------------------------------------------------
def test_user_text_is_always_bound(con: duckdb.DuckDBPyConnection) -> None:
    marker = "ZQXJ"
    for text in (
        f"tags.{marker} = '{marker}'",
        f"tags.`{marker} x` != 3",
        f"metadata.{marker}.{marker}2 IN ('{marker}', 1)",
        f"span.attributes.{marker} LIKE '%{marker}%' AND span.name = '{marker}'",
        f"name RLIKE '{marker}' OR service_name CONTAINS '{marker}'",
        f"NOT tags.x CONTAINS '{marker}'",
    ):
        sql, params = compile_filter(text, con)
        assert marker not in sql, text
        values = params.values() if isinstance(params, dict) else params
        assert any(marker in str(p) for p in values)
        query, _ = explain(con, text, order_by=[f"tags.{marker} DESC", f"metadata.{marker}"])
        assert marker not in query


def test_explain_runs_the_same_query_as_search(con: duckdb.DuckDBPyConnection) -> None:
    _first, token = search(con, "status = 'OK'", order_by=["tags.cost DESC"], max_results=3)
    query, params = explain(
        con, "status = 'OK'", order_by=["tags.cost DESC"], max_results=3, page_token=token
    )
    rows = as_runner(con).rows(query, params, "")
    ids, _ = search(
        con, "status = 'OK'", order_by=["tags.cost DESC"], max_results=3, page_token=token
    )
    assert [r[0] for r in rows][:3] == ids


def test_tag_string_equality_uses_no_lambda(duck_con: duckdb.DuckDBPyConnection) -> None:
    """The hot path stays one extraction and one comparison (see _values). DuckDB's SQL."""
    con = DuckDBRunner(duck_con)
    sql, params = compile_filter("tags.env = 'prod'", con)
    assert sql == "(json_extract_string(t.tags, CAST(? AS VARCHAR)) = CAST(? AS VARCHAR))"
    assert params == ["/env", "prod"]
    sql, params = compile_filter("tags.env IN ('prod', 'dev')", con)
    assert sql == (
        "(json_extract_string(t.tags, CAST(? AS VARCHAR)) IN "
        "(CAST(? AS VARCHAR), CAST(? AS VARCHAR)))"
    )
    assert params == ["/env", "prod", "dev"]
    sql, _ = compile_filter("tags.cost > 3", con)
    assert " FOR " not in sql


def test_compiled_sql_is_a_boolean_over_traces(con: duckdb.DuckDBPyConnection) -> None:
    sql, params = compile_filter("tags.env = 'prod' AND NOT span.type = 'LLM'", con)
    runner = as_runner(con)
    table = runner.dialect.traces_from
    count = runner.rows(f"SELECT count(*) FROM {table} WHERE {sql}", params, "")
    assert [tuple(r) for r in count] == [(4,)]
    if isinstance(params, dict):  # ClickHouse: named parameters, usable twice
        flag = runner.rows(f"SELECT min({sql}) FROM {table} WHERE {sql}", params, "")
    else:
        flag = runner.rows(f"SELECT bool_and({sql}) FROM {table} WHERE {sql}", params * 2, "")
    assert [bool(r[0]) for r in flag] == [True]


# -- type probes -------------------------------------------------------------------------------
def test_probe_errors_are_the_same_for_search_and_compile(con: duckdb.DuckDBPyConnection) -> None:
    text = "tags.user = 1 AND span.attributes.temperature > '0.5'"
    with pytest.raises(FilterError) as a:
        search(con, text)
    with pytest.raises(FilterError) as b:
        compile_filter(text, con)
    assert a.value.position == b.value.position == 12
    assert "write tags.user = '1'" in a.value.message


def test_several_typed_predicates_probe_together_and_report_the_first_mismatch(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Probes of several predicates (asked together where the engine can): those that hold
    their literal's type pass, and the first that does not is reported, in source order."""
    ids, _ = search(con, "tags.env = 'prod' OR tags.cost > 5 OR status = 'ERROR'")
    assert ids  # every typed predicate holds its literal's type: no error
    with pytest.raises(FilterError, match=r"tags\.reviewed holds booleans") as err:
        search(con, "tags.env = 'prod' OR tags.reviewed = 'yes' OR tags.user = 1")
    assert err.value.position == 37  # its literal


def test_keys_without_values_are_not_mismatches(con: duckdb.DuckDBPyConnection) -> None:
    assert search(con, "tags.nothing > 3")[0] == []
    assert search(con, "tags.env = null OR tags.nothing = 'x'")[0] == [tid(5)]
    # null literals never trip the probe: "set to null" is a question about presence
    assert search(con, "tags.cost = null OR tags.user IN (null)")[0] == []


def test_a_probe_sees_the_whole_store_not_only_the_page(con: duckdb.DuckDBPyConnection) -> None:
    # The first matches exist, so the deferred probe never has to run ...
    ids, _ = search(con, "tags.cost > 5 AND tags.env = 'prod'")
    assert sorted(ids) == [tid(7), tid(8)]
    # ... and an empty result makes it run: a mismatch is then reported, not an empty page.
    with pytest.raises(FilterError, match=r"tags\.reviewed holds booleans"):
        search(con, "tags.cost > 5 AND tags.reviewed = 'yes'")


def test_filter_error_message_has_a_caret() -> None:
    err = FilterError("boom", "tags.x = ", 9)
    assert str(err) == "boom (at position 9)\n  tags.x = \n           ^"
    assert isinstance(err, ValueError)
