"""JSON numbers in ClickHouse as DuckDB reads them: integers beyond 64 bits, and a number's text.

**Integers beyond 64 bits** (``2**70``, ``-(2**70)``, ``2**64``): DuckDB reads them as numbers
(compared as DOUBLE, like every number) and keeps their digits as their text. ClickHouse's JSON
reader (simdjson) reads them as *strings*: ``JSONType('1180591620717411303424')`` is 'String'
and ``JSONExtractRaw`` writes them quoted, so once extracted such a number cannot be told from
the string of the same digits. The stored text can: the writers store the JSON text Python
wrote, where a number stands bare and a string quoted. So every value read out of a document
goes through ``bare_bigint`` with the document it came from: a quoted run of digits beyond the
64-bit range that the document holds nowhere quoted is the bare number again. A value text that
ClickHouse calls a string but that does not start with a quote is then a number (``is_number``).
If the document holds the same digits both bare and quoted (``{"a": N, "b": "N"}``) the query
raises (``BIGINT_AMBIGUOUS``) instead of guessing.

**A number's text** (what LIKE, RLIKE, CONTAINS, STARTSWITH and ENDSWITH match a number by):
Python's JSON text of it, on both engines: an integer's digits, a float's ``repr`` (``1e-07``,
``1e+21``, ``100.0``, ``-0.0``). ClickHouse writes floats its own way (``1e-7``, ``100``,
``-0``), so ``float_text`` rebuilds Python's form from ClickHouse's shortest digits (checked
against ``repr`` on 12,000 floats, random bit patterns included).
"""

from __future__ import annotations

from ...query._dialect import Frag, sql

__all__ = ["BIGINT_AMBIGUOUS", "bare_bigint", "float_text", "is_number", "is_string", "number_text"]

NUMBER_TYPES = "('Int64', 'UInt64', 'Double')"
BIGINT_AMBIGUOUS = (
    "traceduck: ClickHouse cannot tell an integer beyond 64 bits from a string of the same "
    "digits in one document; DuckDB can"
)

# Python's repr of a Float64 ``__x`` from ClickHouse's shortest digits (toString): the digits D
# without leading or trailing zeros and the place of the decimal point (decpt: the value is
# 0.D * 10**decpt); positional for exponents -4..15, else d.ddde+XX, as Python writes them.
_FLOAT_TEXT = (
    "arrayMap((s, neg) -> arrayMap((mant, e) -> arrayMap((digits, intlen) -> "
    "arrayMap((d, lz) -> arrayMap((D, decpt) -> "
    "if(D = '', if(neg, '-0.0', '0.0'), concat(if(neg, '-', ''), "
    "if(decpt - 1 >= -4 AND decpt - 1 < 16, "
    "multiIf(decpt <= 0, concat('0.', repeat('0', toUInt64(-decpt)), D), "
    "decpt < length(D), concat(substring(D, 1, decpt), '.', substring(D, decpt + 1)), "
    "concat(D, repeat('0', toUInt64(decpt - length(D))), '.0')), "
    "concat(substring(D, 1, 1), if(length(D) > 1, concat('.', substring(D, 2)), ''), 'e', "
    "if(decpt < 1, '-', '+'), "
    "leftPad(toString(abs(decpt - 1)), greatest(2, length(toString(abs(decpt - 1)))), '0'))))), "
    "[replaceRegexpOne(d, '0+$', '')], [intlen + e - lz])[1], "
    "[replaceRegexpOne(digits, '^0+', '')], "
    "[toInt64(length(digits) - length(replaceRegexpOne(digits, '^0+', '')))])[1], "
    "[replaceOne(mant, '.', '')], [toInt64(length(splitByChar('.', mant)[1]))])[1], "
    "[splitByChar('e', s)[1]], [if(position(s, 'e') > 0, toInt64(splitByChar('e', s)[2]), 0)])"
    "[1], [toString(abs(__x))], [startsWith(toString(__x), '-')])[1]"
)


# A float text that is already Python's: positional, a fraction that ends in a non-zero digit,
# at least 1e-4 and below 1e16 (most floats: the rebuilding is ~2x a LIKE's cost).
_AS_PYTHON = "^-{0,1}([1-9][0-9]{0,15}[.][0-9]*[1-9]|0[.]0{0,3}[1-9][0-9]*)$"


def float_text(number: Frag) -> Frag:
    """Python's ``repr`` of a Float64."""
    parts = _FLOAT_TEXT.split("__x")
    return sql("{}".join(parts), *[number] * (len(parts) - 1))


def is_number(value: Frag) -> Frag:
    """Whether JSON text is a number: one ClickHouse reads as a number, or a bare integer
    beyond 64 bits (which it calls a string). JSON text that starts with a quote is a string
    (ClickHouse writes none with white space before it, nor do our writers)."""
    return sql(
        "(NOT startsWith({}, '\"') AND JSONType({}) IN ('Int64', 'UInt64', 'Double', 'String'))",
        value, value,
    )  # fmt: skip


def is_string(value: Frag) -> Frag:
    return sql("startsWith({}, '\"')", value)


def number_text(value: Frag) -> Frag:
    """The text of a JSON number (see the module docstring): an integer's digits as written,
    a float's repr."""
    number = float_text(sql("JSONExtractFloat({})", value))
    return sql(
        "multiIf(JSONType({}) != 'Double', {}, match({}, '" + _AS_PYTHON + "'), {}, {})",
        value, value, value, value, number,
    )  # fmt: skip


def bare_bigint(raw: Frag, doc: Frag) -> Frag:
    """``raw`` (a value ClickHouse extracted from the stored JSON text ``doc``), with an integer
    beyond 64 bits unquoted again: ClickHouse quotes it, the document has it bare. The common
    case costs a length and a first-byte test."""
    digits = sql("substring({}, 2, length({}) - 2)", raw, raw)
    bare_in_doc = sql("match({}, concat('(^|[^\"0-9.eE+-])', {}, '($|[^\"0-9.eE])'))", doc, digits)
    return sql(
        "if(length({}) >= 21 AND startsWith({}, '\"') AND match({}, '^\"-{0,1}[0-9]+\"$') "
        "AND toInt64OrNull({}) IS NULL AND toUInt64OrNull({}) IS NULL, "
        "multiIf(position({}, {}) = 0, {}, throwIf({}, '" + BIGINT_AMBIGUOUS + "') = 0, {}, {}), "
        "{})",
        raw, raw, raw, digits, digits, doc, raw, digits, bare_in_doc, raw, raw, raw,
    )  # fmt: skip
