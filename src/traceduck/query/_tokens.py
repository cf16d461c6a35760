"""Tokenizer of the filter language: text -> tokens that remember where they start and end.

Positions are kept on every token because every error the user sees points at a character of
their filter with a caret; the parser and compiler never have to re-scan the text to find one.

The tokenizer is context-free except for one rule: right after a ``.`` that touches the previous
word, a key segment may start with a digit (``tags.2024``), so it is read as a word, not a number.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from ..errors import FilterError

__all__ = ["MAX_FILTER_CHARS", "NUMBER_RE", "Kind", "Token", "number_value", "tokenize"]

# A filter longer than this is a mistake (or an attack), not a query; refusing it early keeps the
# probe queries and the SQL size bounded.
MAX_FILTER_CHARS = 100_000


class Kind(enum.Enum):
    """Token kinds. Keywords are plain WORDs: the parser compares them case-insensitively."""

    WORD = "word"  # identifier or keyword
    NUMBER = "number"
    STRING = "string"  # 'single-quoted'
    DQUOTED = "dquoted"  # "double-quoted": a key after a prefix, a string in value position
    BACKTICK = "backtick"  # `back-ticked`: always a name (field or key)
    DOT = "dot"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    OP = "op"  # = != <> < <= > >= ==
    SYMBOL = "symbol"  # anything else (; & | ~ ! ...): only ever reported as an error
    EOF = "eof"


@dataclass(frozen=True)
class Token:
    """One token: ``text`` is the raw source slice, ``value`` the decoded text of quoted tokens."""

    kind: Kind
    text: str
    value: str
    start: int
    end: int

    def upper(self) -> str:
        """The keyword spelling of a WORD (keywords are case-insensitive)."""
        return self.value.upper() if self.kind is Kind.WORD else ""

    def describe(self) -> str:
        """How to name this token in an error message."""
        if self.kind is Kind.EOF:
            return "the end of the filter"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return repr(shown)


NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[^\W\d][\w\-]*")
_SEGMENT = re.compile(r"[\w\-]+")
_OPERATORS = ("!=", "<>", "<=", ">=", "==", "=", "<", ">")
_SYMBOLS = ("&&", "||", "=~", "!~")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one EOF token; raise FilterError on bad text."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(
            f"the filter is {len(text):,} characters long; the limit is {MAX_FILTER_CHARS:,}",
            text[:200],
            None,
        )
    _check_encodable(text)
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        prev = tokens[-1] if tokens else None
        after_dot = prev is not None and prev.kind is Kind.DOT and prev.end == i
        if ch in "'\"":
            kind = Kind.STRING if ch == "'" else Kind.DQUOTED
            value, end = _read_quoted(text, i, ch)
            tokens.append(Token(kind, text[i:end], value, i, end))
            i = end
        elif ch == "`":
            value, end = _read_backtick(text, i)
            tokens.append(Token(Kind.BACKTICK, text[i:end], value, i, end))
            i = end
        elif after_dot and (m := _SEGMENT.match(text, i)):
            tokens.append(Token(Kind.WORD, m.group(), m.group(), i, m.end()))
            i = m.end()
        elif ch == "." and not (i + 1 < n and text[i + 1].isdigit() and not _touches_name(prev, i)):
            tokens.append(Token(Kind.DOT, ".", ".", i, i + 1))
            i += 1
        elif ch in "(),":
            kind = {"(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA}[ch]
            tokens.append(Token(kind, ch, ch, i, i + 1))
            i += 1
        elif m := NUMBER_RE.match(text, i):
            tokens.append(Token(Kind.NUMBER, m.group(), m.group(), i, m.end()))
            i = m.end()
        elif m := _WORD.match(text, i):
            tokens.append(Token(Kind.WORD, m.group(), m.group(), i, m.end()))
            i = m.end()
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is not None:
                tokens.append(Token(Kind.OP, op, op, i, i + len(op)))
                i += len(op)
                continue
            sym = next((s for s in _SYMBOLS if text.startswith(s, i)), ch)
            tokens.append(Token(Kind.SYMBOL, sym, sym, i, i + len(sym)))
            i += len(sym)
    tokens.append(Token(Kind.EOF, "", "", n, n))
    return tokens


def number_value(raw: str) -> int | float | None:
    """The value of a number as written: an int when written as one and within 64 bits, else a
    float; None when ``raw`` is not a number or is out of range. (float() has no digit limit,
    unlike int(), so long inputs cannot raise.)"""
    if not NUMBER_RE.fullmatch(raw):
        return None
    if not any(c in raw for c in ".eE") and len(raw) <= 20:
        value = int(raw)
        if -(2**63) <= value < 2**63:
            return value
    number = float(raw)
    return number if math.isfinite(number) else None


def _touches_name(prev: Token | None, i: int) -> bool:
    """Whether a '.' at ``i`` continues a name (``tags.1``) rather than starting ``.5``."""
    return prev is not None and prev.end == i and prev.kind in (Kind.WORD, Kind.BACKTICK)


def _read_quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """Decode a quoted literal starting at ``start``; return (value, index after closing quote).

    The quote itself is written doubled (``'can''t'``) or backslash-escaped (``'can\\'t'``);
    every other backslash is kept as written, together with the character after it, so that
    regular expressions such as ``'^v[0-9]+\\.[0-9]+'`` and ``'a\\\\'`` survive unchanged.
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(nxt if nxt == quote else ch + nxt)
            i += 2
        elif ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise FilterError(f"unterminated string: add the closing {quote}", text, start)


def _read_backtick(text: str, start: int) -> tuple[str, int]:
    """Decode a back-ticked name; a back-tick inside is written doubled."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "`":
            if i + 1 < n and text[i + 1] == "`":
                out.append("`")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError("unterminated back-ticked name: add the closing `", text, start)


def _check_encodable(text: str) -> None:
    """Reject text that cannot be sent to the database (lone surrogates from broken decoding)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FilterError(
            "the filter contains a character that is not valid text (a lone surrogate)",
            text.encode("utf-8", "replace").decode("utf-8"),
            exc.start,
        ) from None
