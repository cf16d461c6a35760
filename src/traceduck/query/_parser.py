"""Recursive-descent parser: tokens -> AST, one method per precedence level.

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" or_expr ")" | predicate
    predicate  := field op literal
                | field ["NOT"] "IN" "(" literal ("," literal)* ")"
                | field "IS" ["NOT"] "NULL"
                | field "NOT" pattern_op literal          (extension: NOT LIKE, NOT CONTAINS...)

Every failure is a FilterError pointing at the offending token; nothing else escapes.
"""

from __future__ import annotations

from ..errors import FilterError
from ._ast import And, FieldRef, Literal, Node, Not, Or, Predicate
from ._fields import Segment, resolve_field, suggest
from ._tokens import Kind, Token, number_value, tokenize

__all__ = ["COMPARISON_OPS", "MAX_DEPTH", "PATTERN_OPS", "parse", "parse_order_items"]

COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=")
PATTERN_OPS = ("LIKE", "ILIKE", "RLIKE", "CONTAINS", "STARTSWITH", "ENDSWITH")
_WORD_OPS = (*PATTERN_OPS, "IN", "NOT", "IS")
_ALL_OPS = (*COMPARISON_OPS, "<>", *_WORD_OPS, "NOT IN", "IS NULL", "IS NOT NULL")
# Nesting deeper than this is no real query; refusing it keeps Python's and DuckDB's recursion
# limits out of reach of user input.
MAX_DEPTH = 64
_SYMBOL_HINTS = {
    "==": "'='",
    "&&": "AND",
    "&": "AND",
    "||": "OR",
    "|": "OR",
    "!": "NOT or '!='",
    "=~": "RLIKE",
    "~": "RLIKE",
    "!~": "NOT RLIKE",
}


def parse(text: str) -> Node | None:
    """Parse a filter; None for an empty (all-whitespace) filter."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not Kind.EOF:
            self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> FilterError:
        return FilterError(message, self.text, (tok or self.tok).start)

    def unexpected(self, expected: str, tok: Token | None = None) -> FilterError:
        tok = tok or self.tok
        hint = _SYMBOL_HINTS.get(tok.text) if tok.kind in (Kind.SYMBOL, Kind.OP) else None
        extra = f"; did you mean {hint}?" if hint else ""
        return self.error(f"expected {expected}, got {tok.describe()}{extra}", tok)

    def is_word(self, *words: str) -> bool:
        return self.tok.kind is Kind.WORD and self.tok.upper() in words

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Node | None:
        if self.tok.kind is Kind.EOF:
            return None
        node = self.or_expr()
        if self.tok.kind is not Kind.EOF:
            if self.tok.kind is Kind.RPAREN:
                raise self.error("unbalanced ')': no '(' opens it")
            raise self.unexpected("AND, OR or the end of the filter")
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while self.is_word("AND"):
            self.advance()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the filter nests deeper than {MAX_DEPTH} levels")
        try:
            if self.is_word("NOT"):
                start = self.advance().start
                return Not(self.not_expr(), start)
            if self.tok.kind is Kind.LPAREN:
                self.advance()
                if self.tok.kind is Kind.RPAREN:
                    raise self.error("empty parentheses: expected a condition inside")
                node = self.or_expr()
                if self.tok.kind is not Kind.RPAREN:
                    raise self.unexpected("')' or AND/OR")
                self.advance()
                return node
            return self.predicate()
        finally:
            self.depth -= 1

    def predicate(self) -> Predicate:
        field = resolve_field(self.field_segments(), self.text)
        tok = self.tok
        if tok.kind is Kind.OP:
            if tok.text == "==":
                raise self.error("unknown operator '=='; did you mean '='?")
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Predicate(field, op, (self.literal(op),), False, tok.start, tok.end)
        if tok.kind is not Kind.WORD:
            raise self.unexpected("an operator (=, !=, <, >, LIKE, IN, IS NULL, ...)")
        word = tok.upper()
        if word not in _WORD_OPS:
            hint = suggest(word, _ALL_OPS) or _SYMBOL_HINTS.get(tok.text)
            extra = f"; did you mean {hint}?" if hint else ""
            raise self.error(f"unknown operator {tok.text!r}{extra}", tok)
        self.advance()
        negated = False
        end = tok.end
        if word == "IS":
            if self.is_word("NOT"):
                self.advance()
                negated = True
            if not self.is_word("NULL"):
                raise self.unexpected("NULL after IS" + (" NOT" if negated else ""))
            end = self.advance().end
            return Predicate(field, "IS", (), negated, tok.start, end)
        if word == "NOT":
            if not self.is_word("IN", *PATTERN_OPS):
                raise self.unexpected("IN, LIKE, ILIKE, RLIKE, CONTAINS, STARTSWITH or ENDSWITH")
            second = self.advance()
            word, end, negated = second.upper(), second.end, True
        if word == "IN":
            return Predicate(field, "IN", self.literal_list(), negated, tok.start, end)
        return Predicate(field, word, (self.literal(word),), negated, tok.start, end)

    def field_segments(self) -> list[Segment]:
        tok = self.tok
        if tok.kind not in (Kind.WORD, Kind.BACKTICK):
            if tok.kind is Kind.EOF:
                raise self.error("expected a condition, got the end of the filter")
            if tok.kind in (Kind.STRING, Kind.DQUOTED, Kind.NUMBER):
                raise self.error(
                    f"expected a field (such as tags.env or status), got the value "
                    f"{tok.describe()}: write the field first, as in tags.env = 'prod'"
                )
            raise self.unexpected("a field (such as tags.env or status)")
        if tok.kind is Kind.WORD and tok.upper() in ("AND", "OR"):
            raise self.error(f"expected a condition before {tok.text.upper()}")
        self.advance()
        segments = [Segment(tok.value, tok.kind is Kind.BACKTICK, tok.start, tok.end)]
        while self.tok.kind is Kind.DOT and self.tok.start == segments[-1].end:
            dot = self.advance()
            seg = self.tok
            if seg.start != dot.end or seg.kind not in (Kind.WORD, Kind.BACKTICK, Kind.DQUOTED):
                raise self.error("expected a key right after '.'", seg)
            self.advance()
            segments.append(Segment(seg.value, seg.kind is not Kind.WORD, seg.start, seg.end))
        return segments

    def literal_list(self) -> tuple[Literal, ...]:
        if self.tok.kind is not Kind.LPAREN:
            raise self.unexpected("'(' after IN, as in IN ('a', 'b')")
        self.advance()
        values = [self.literal("IN")]
        while self.tok.kind is Kind.COMMA:
            self.advance()
            values.append(self.literal("IN"))
        if self.tok.kind is not Kind.RPAREN:
            raise self.unexpected("',' or ')' in the IN list")
        self.advance()
        return tuple(values)

    def literal(self, after: str) -> Literal:
        tok = self.tok
        if tok.kind in (Kind.STRING, Kind.DQUOTED):
            self.advance()
            return Literal("string", tok.value, tok.start, tok.end, tok.text)
        if tok.kind is Kind.NUMBER:
            self.advance()
            return Literal("number", _number(tok, self.text), tok.start, tok.end, tok.text)
        if tok.kind is Kind.WORD and tok.upper() in ("TRUE", "FALSE"):
            self.advance()
            return Literal("boolean", tok.upper() == "TRUE", tok.start, tok.end, tok.text)
        if tok.kind is Kind.WORD and tok.upper() == "NULL":
            self.advance()
            return Literal("null", None, tok.start, tok.end, tok.text)
        if tok.kind is Kind.EOF:
            raise self.error(f"expected a value after {after}, got the end of the filter")
        if tok.kind is Kind.WORD:
            raise self.error(
                f"expected a value after {after}, got {tok.describe()}: quote text, as in "
                f"'{tok.value}'"
            )
        if tok.kind is Kind.BACKTICK:
            raise self.error(
                f"back-ticks quote names, not values: write '{tok.value}' after {after}"
            )
        raise self.unexpected(f"a value after {after}")


def _number(tok: Token, text: str) -> int | float:
    """The value of a NUMBER token; an error when it is out of range (1e999)."""
    value = number_value(tok.text)
    if value is None:
        shown = tok.text if len(tok.text) <= 30 else tok.text[:27] + "..."
        raise FilterError(f"the number {shown} is out of range", text, tok.start)
    return value


def parse_order_items(text: str) -> list[tuple[FieldRef, bool]]:
    """Parse ``field [ASC|DESC] (, field [ASC|DESC])*``; True means descending."""
    parser = _Parser(text)
    items: list[tuple[FieldRef, bool]] = []
    while True:
        if parser.tok.kind is Kind.EOF:
            raise parser.error("expected a field to order by, as in 'timestamp_ms DESC'")
        field = resolve_field(parser.field_segments(), text)
        descending = False
        if parser.is_word("ASC", "DESC"):
            descending = parser.advance().upper() == "DESC"
        elif parser.tok.kind is Kind.WORD:
            word = parser.tok.upper()
            hint = next((d for d in ("DESC", "ASC") if word.startswith(d)), None)
            hint = hint or suggest(word, ("ASC", "DESC"))
            extra = f"; did you mean {hint}?" if hint else ""
            raise parser.error(f"expected ASC or DESC, got {parser.tok.describe()}{extra}")
        items.append((field, descending))
        if parser.tok.kind is Kind.COMMA:
            parser.advance()
            continue
        if parser.tok.kind is not Kind.EOF:
            raise parser.unexpected("ASC, DESC, ',' or the end of the order_by item")
        return items
