"""Redaction: what a span carries is scrubbed of secrets before it leaves the process.

``configure(redact=...)`` picks a ``Redactor`` (``SETTINGS.redactor``); the exporter in front of
every other one (``_export._redacting``) applies it to each finished span where the span
processor exports (its worker thread, or a thread calling ``flush()``), never in the traced
call. Two kinds of rule, in the spirit of Logfire's scrubbing:

- **Key rules**, matched case-insensitively anywhere in a key at any depth (argument names, dict
  keys, attribute keys, tag and metadata keys): the value under a matching key becomes
  ``"[REDACTED: <reason>]"``, whatever it holds. ``None``, booleans and ``""`` stay: they hold
  no secret, and a flag such as ``use_auth=True`` keeps its meaning.
- **Text rules**, matched in every string value: a secret-looking piece of text (a bearer
  token, a provider's API key, an AWS access key id, a JWT, a PEM private key, a URL's
  password, the value of ``password=...``, ``"api_key": "..."`` or a ``Cookie: ...`` line,
  whose key a key rule matches) is replaced by the marker and the rest of the text is kept.

A key's verdict is computed once per distinct key, a short text's once per distinct text (both
cached); a long text is scanned each time. Extra patterns: a
``str`` is one more key rule (a regular expression, case-insensitive), a compiled
``re.Pattern`` is matched against keys and against text. A callable replaces the rules: it gets
``(path, value)`` for every leaf value and returns the value to keep; ``default_redactor`` is
the default rules in that form, for a callable to fall back on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _capture, _runtime
from .errors import ConfigError

__all__ = ["SETTINGS", "Redactor", "active", "default_redactor", "marker", "redactor_for"]

Path = tuple[Any, ...]
RedactFunc = Callable[[Path, Any], Any]

# (reason, regex) matched in lower-cased keys; the leftmost match names the reason. The
# look-arounds keep short acronyms from matching inside words ("jwt" but not "ajwtx"), "auth"
# from matching "author", "token" from matching an LLM's token counts ("max_tokens",
# "token_count", "tokenizer"), and "session" from an LLM conversation's id (below).
KEY_RULES: tuple[tuple[str, str], ...] = (
    ("password", r"password"),
    ("passwd", r"passwd|(?<![a-z0-9])pwd(?![a-z0-9])"),
    ("secret", r"secret"),
    ("api key", r"api[._ -]?key"),
    ("private key", r"private[._ -]?key"),
    ("authorization", r"authori[sz]ation"),
    ("auth", r"auth(?!or)"),
    ("credential", r"credential"),
    ("cookie", r"cookie"),
    # A session id is how LLM tracing groups a conversation's traces (OpenInference's
    # session.id, Langfuse's and MLflow's session_id, MLflow 3's mlflow.trace.session): it is
    # kept, so filters on it work. A web session (session, sessionid, session_token) is not.
    ("session", r"(?<!trace\.)session(?![._-]id(?![a-z0-9]))"),
    ("csrf", r"(?<![a-z0-9])[cx]srf(?![a-z0-9])"),
    ("jwt", r"(?<![a-z0-9])jwt(?![a-z0-9])"),
    ("ssn", r"(?<![a-z0-9])ssn(?![a-z0-9])|social[._ -]?security"),
    ("credit card", r"credit[._ -]?card|(?<![a-z0-9])(?:card[._ -]?number|cvv|cvc)(?![a-z0-9])"),
    ("token", r"token(?!s|iz|[._ -]?(?:counts?|usage|limits?|ids?)(?![a-z]))"),
)
# A key without one of these can match no key rule: one plain search settles most new keys
# (the rules' alternation of look-arounds costs a few µs a key).
_STEMS = re.compile(
    "passw|pwd|secret|api|private|auth|credential|cookie|session|srf|jwt|ssn|social|credit"
    "|card|cvv|cvc|token"
)

# Secret shapes in text: (reason, regex, gate). A shape is searched for only in a text that
# holds its gate, a character or two that ``in`` finds at memchr speed; each regex starts with a
# literal, which the regex engine also finds at C speed. (One alternation of the shapes, or of
# their prefixes, or a leading ``\b``, scans 10-30x slower: a match that starts inside a longer
# word is left alone afterwards instead.) A named group ``s`` is the secret (the rest of the
# match is kept); a shape without one is a secret as a whole. Every shape is at least 14
# characters long but a URL's password.
SHAPES: tuple[tuple[str, str, str], ...] = (
    ("private key", r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?s:.*?)"
                    r"(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", "-"),
    ("jwt", r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}", "yJ"),
    ("aws access key id", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])", "A"),
    ("api key", r"sk-[\w-]{20,}", "-"),  # OpenAI, Anthropic (sk-ant-), OpenRouter, ...
    ("api key", r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", "_"),  # Stripe
    ("api key", r"AIza[\w-]{35}", "A"),  # Google
    ("access token", r"gh[pousr]_[A-Za-z0-9]{30,}", "_"),  # GitHub
    ("access token", r"github_pat_\w{30,}", "_"),
    ("access token", r"glpat-[\w-]{20,}", "-"),  # GitLab
    ("access token", r"xox[abposr]-[\w-]{10,}", "-"),  # Slack
    ("access token", r"hf_[A-Za-z0-9]{30,}", "_"),  # Hugging Face
    # a credential of 8+ characters with a digit or a symbol in it ("Bearer bonds" is prose)
    ("bearer token", r"[Bb]earer[ \t]+(?P<s>(?=[\w.~+/-]*[\d.~+/_-])[\w.~+/-]{8,}=*)", "earer"),
    ("password", r"://[^/\s:@]+:(?P<s>[^/\s@]+)@", "://"),  # scheme://user:password@host
)  # fmt: skip
_MIN_SHAPE = 14
_SHORT = 256  # a text up to this long has its verdict cached
_TEXT_CACHE_SIZE = 4096
# ``key=value``, ``"key": value``, ``key:value``, and ``Key: value`` at the start of a line (an
# HTTP header, a YAML or .env line: the value runs to the end of the line). Found from each
# ``:`` or ``=`` (str.find: a regex starting with a character class scans 40x slower)
# backwards, in the reversed text: (spaces, quote, reversed key).
_KEY_BACKWARDS = re.compile(r"[ \t]*([\"']?)([\w.-]{1,64})")
_VALUE = re.compile(r"[ \t]*(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|[^\s\"',;&)}\]{\[<>]+)")
_LINE_VALUE = re.compile(r"[ \t]*([^\r\n]+)")
_WORD = re.compile(r"[\w-]")
_HARMLESS = frozenset({"true", "false", "null", "none", '""', "''"})
_KEY_CACHE_SIZE = 8192
_SCALARS = (int, float, bool, type(None))


def marker(reason: str) -> str:
    """The text that replaces a scrubbed value: ``[REDACTED: password]``."""
    return f"[REDACTED: {reason}]"


def _hides(value: Any) -> bool:
    """Whether a value under a sensitive key is replaced (None, booleans and "" hold nothing)."""
    return not (value is None or value is True or value is False or value == "")


class Redactor:
    """The rules for one configuration: default key and text rules plus ``extra`` patterns, or
    a callable ``func(path, value) -> value`` instead of them."""

    def __init__(self, extra: Iterable[str | re.Pattern[str]] = (), func: RedactFunc | None = None):
        self.func = func
        self.extra_patterns: list[re.Pattern[str]] = []  # matched in keys and in text
        self._extra_keys: list[tuple[str, re.Pattern[str]]] = []  # str patterns: keys only
        for item in extra:
            if isinstance(item, re.Pattern):
                self.extra_patterns.append(item)
            else:
                self._extra_keys.append((item, re.compile(item, re.IGNORECASE)))
        # Matched against the lower-cased key: re.IGNORECASE turns off the regex engine's
        # literal search and makes the search 5-10x slower.
        groups = [f"(?P<k{i}>{regex})" for i, (_, regex) in enumerate(KEY_RULES)]
        self._key_re = re.compile("|".join(groups))
        self._key_reasons = {f"k{i}": reason for i, (reason, _) in enumerate(KEY_RULES)}
        # re.sub reads backslashes in a replacement: the marker's (a \d in its pattern) are text
        self._extra_text = [
            (p, marker(p.pattern).replace("\\", "\\\\")) for p in self.extra_patterns
        ]
        self._gates: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for reason, regex, gate in SHAPES:
            self._gates.setdefault(gate, []).append((reason, re.compile(regex)))
        self._keys: dict[str, str | None] = {}
        self._reversed_keys: dict[str, str | None] = {}
        self._texts: dict[str, str | None] = {}  # short text -> its scrubbed form, None: clean
        self._names: dict[tuple[str, ...], bool] = {}
        self._last_value: tuple[Any, Any] = (None, None)

    # -- keys and text ------------------------------------------------------------------------

    def key_reason(self, key: str) -> str | None:
        """Why values under ``key`` are scrubbed, or None; computed once per distinct key."""
        reason = self._keys.get(key, "")
        if reason != "":
            return reason
        low = key.lower()
        match = self._key_re.search(low) if _STEMS.search(low) is not None else None
        if match is not None:
            reason = self._key_reasons[match.lastgroup or ""]
        else:
            reason = next((name for name, p in self._extra_keys if p.search(key)), None)
            if reason is None:
                reason = next((p.pattern for p in self.extra_patterns if p.search(key)), None)
        if len(self._keys) >= _KEY_CACHE_SIZE:
            self._keys.clear()
        self._keys[key] = reason
        return reason

    def text(self, text: str) -> str:
        """``text`` with every secret-looking piece replaced by its marker (the same object
        when there is none)."""
        if len(text) > _SHORT:
            return self._scan(text)
        texts = self._texts
        done = texts.get(text, "")
        if done == "":
            done = self._scan(text)
            if len(texts) >= _TEXT_CACHE_SIZE:
                texts.clear()
            texts[text] = None if done == text else done
            return done
        return text if done is None else done

    def _scan(self, text: str) -> str:
        if len(text) >= _MIN_SHAPE or "://" in text:
            for gate, shapes in self._gates.items():
                if gate in text:
                    for reason, regex in shapes:
                        if regex.search(text) is not None:
                            text = regex.sub(_Shape(text, reason), text)
        if "=" in text or ":" in text:
            text = self._assignments(text)
        for pattern, template in self._extra_text:
            if pattern.search(text) is not None:
                text = pattern.sub(template, text)
        return text

    def _assignments(self, text: str) -> str:
        """``text`` with the values of sensitive ``key=value`` pairs replaced."""
        separators = []
        for char in ":=":
            at = text.find(char, 1)  # a separator needs a key before it
            while at >= 0:
                separators.append(at)
                at = text.find(char, at + 1)
        if not separators:
            return text
        separators.sort(reverse=True)  # edits go from the end of the text backwards
        backwards = text[::-1]
        size = len(text)
        cache = self._reversed_keys
        edits: list[tuple[int, int, str]] = []
        for sep in separators:
            found = _KEY_BACKWARDS.match(backwards, size - sep)
            if found is None:
                continue
            key = found.group(2)
            reason = cache.get(key, "")
            if reason == "":
                reason = self.key_reason(key[::-1])
                if len(cache) >= _KEY_CACHE_SIZE:
                    cache.clear()
                cache[key] = reason
            if reason is None:
                continue
            key_start = size - found.end()
            quoted = bool(found.group(1))
            if quoted or text[sep] == "=":
                value = _VALUE.match(text, sep + 1)
            elif _at_line_start(text, key_start):  # ``Authorization: Basic ...``
                value = _LINE_VALUE.match(text, sep + 1)
            elif sep + 1 < size and not text[sep + 1].isspace():  # ``token:abc``
                value = _VALUE.match(text, sep + 1)
            else:  # ``your password: click here`` is prose
                continue
            if value is None:
                continue
            secret = value.group(1)
            if secret.lower() in _HARMLESS:
                continue
            start, end = value.span(1)
            if secret[0] in "\"'":
                new = f"{secret[0]}{marker(reason)}{secret[0]}"
            elif quoted:  # a quoted key's bare value (a JSON number): keep the JSON valid
                new = f'"{marker(reason)}"'
            else:
                new = marker(reason)
            while edits and edits[-1][0] < end:  # a header line's value covers later pairs
                edits.pop()
            edits.append((start, end, new))
        if not edits:
            return text
        parts = []
        last = size
        for start, end, new in edits:  # from the end of the text backwards
            parts.append(text[end:last])
            parts.append(new)
            last = start
        parts.append(text[:last])
        return "".join(reversed(parts))

    # -- values -------------------------------------------------------------------------------

    def value(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, tuples, scalars) with the rules applied at every
        depth; the same object when nothing changed, else a copy (the input is never changed)."""
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict:
            out = None
            for key, item in value.items():
                reason = self.key_reason(key) if type(key) is str else None
                if reason is not None:
                    new = marker(reason) if _hides(item) else item
                else:
                    new = self.value(item)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        if kind is list or kind is tuple:
            items = None
            for i, item in enumerate(value):
                new = self.value(item)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[i] = new
            if items is None:
                return value
            return items if kind is list else tuple(items)
        return value

    def keyed(self, key: str, value: Any) -> Any:
        """The value stored under ``key`` (an attribute, tag, metadata or argument name)."""
        reason = self.key_reason(key)
        if reason is not None:
            return marker(reason) if _hides(value) else value
        kind = type(value)
        if kind in _SCALARS:
            return value
        return self.value(value)

    def shared(self, value: Any) -> Any:
        """``value(value)`` for an object seen again and again (the automatic context, one dict
        for every trace of a process): the last answer is kept by identity."""
        seen, result = self._last_value
        if value is seen:
            return result
        result = self.value(value)
        self._last_value = (value, result)
        return result

    def inputs(self, deferred: Any) -> Any:
        """Captured inputs in their deferred form (``_capture.snapshot_args``: a tuple of
        names, scalar args and kwargs, or a dict): the tuple stays a tuple when nothing in it
        needs scrubbing, else becomes the scrubbed dict of bound arguments."""
        if type(deferred) is not tuple:
            return self.value(deferred)
        names, args, kwargs = deferred
        dirty = self._names.get(names)
        if dirty is None:
            dirty = any(self.key_reason(n.lstrip("*")) is not None for n in names)
            if len(self._names) >= _KEY_CACHE_SIZE:
                self._names.clear()
            self._names[names] = dirty
        if not dirty and self._clean(args, kwargs):
            return deferred
        bound = _capture._bind(names, args, kwargs)
        return {k: self.keyed(k, v) for k, v in bound.items()}

    def _clean(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether scalar arguments hold nothing to scrub (their names were checked)."""
        text = self.text
        for arg in args:
            if type(arg) is str and text(arg) is not arg:
                return False
        for key, arg in kwargs.items():
            if self.key_reason(key) is not None or (type(arg) is str and text(arg) is not arg):
                return False
        return True

    # -- the callable form --------------------------------------------------------------------

    def leaves(self, path: Path, value: Any) -> Any:
        """``func(path, value)`` for every leaf under ``value``; containers are rebuilt. A leaf
        whose call raises is dropped (the marker "redactor error") and the error reported."""
        kind = type(value)
        if kind is dict:
            return {k: self.leaves((*path, k), v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [self.leaves((*path, i), v) for i, v in enumerate(value)]
        assert self.func is not None
        try:
            return _capture.snapshot(self.func(path, value))
        except Exception as exc:
            _runtime.report_internal_error("the redact callable", exc)
            return marker("redactor error")


class _Shape:
    """The replacement for one shape's matches in ``text`` (``re.sub``'s callable)."""

    __slots__ = ("reason", "text")

    def __init__(self, text: str, reason: str) -> None:
        self.text, self.reason = text, reason

    def __call__(self, found: re.Match[str]) -> str:
        whole = found.group()
        start = found.start()
        if start and _WORD.match(whole) and _WORD.match(self.text, start - 1):
            return whole  # inside a longer word ("task-..." is no "sk-" key)
        if found.re.groupindex:
            first, last = found.span("s")
            return whole[: first - start] + marker(self.reason) + whole[last - start :]
        return marker(self.reason)


def _at_line_start(text: str, index: int) -> bool:
    """Whether only spaces or tabs come before ``index`` on its line."""
    line = text.rfind("\n", 0, index) + 1
    return not text[line:index].strip(" \t")


class _Settings:
    """``redactor``: configure(redact=...)'s rules, None when redaction is off; until
    configure() runs (the zero-code exporter), the default rules."""

    redactor: Redactor | None = None
    configured = False

    def use(self, redactor: Redactor | None) -> None:
        self.redactor = redactor
        self.configured = True


SETTINGS = _Settings()
_DEFAULT: list[Redactor] = []


def default() -> Redactor:
    """The default rules (built once)."""
    if not _DEFAULT:
        _DEFAULT.append(Redactor())
    return _DEFAULT[0]


def active() -> Redactor | None:
    """The rules in force: configure(redact=...)'s, or the default ones before any configure()."""
    settings = SETTINGS
    return settings.redactor if settings.configured else default()


def redactor_for(option: Any) -> Redactor | None:
    """The Redactor for ``configure(redact=option)``; ConfigError for a bad option."""
    if option is True:
        return default()
    if option is False or option is None:
        return None
    if callable(option) and not isinstance(option, re.Pattern):
        return Redactor(func=option)
    if isinstance(option, (str, bytes, re.Pattern, Mapping)) or not isinstance(option, Iterable):
        raise ConfigError(
            f"redact must be True, False, a list of patterns or a callable(path, value), "
            f"not {option!r}"
        )
    extra: list[str | re.Pattern[str]] = []
    for item in option:
        if isinstance(item, re.Pattern) and item.pattern:  # an empty one would match all
            extra.append(item)
        elif isinstance(item, str) and item:
            try:
                re.compile(item)
            except re.error as exc:
                raise ConfigError(
                    f"redact pattern {item!r} is not a regular expression: {exc}"
                ) from None
            extra.append(item)
        else:
            raise ConfigError(f"a redact pattern is a non-empty str or re.Pattern, not {item!r}")
    return Redactor(extra) if extra else default()


def default_redactor(path: Path, value: Any) -> Any:
    """The default rules for one leaf value, for a ``redact=`` callable to fall back on.

    >>> def redact(path, value):
    ...     if path[-1] == "auth_provider":
    ...         return value                      # "google" is no secret
    ...     return td.default_redactor(path, value)

    ``path`` starts with where the value is (``"inputs"``, ``"outputs"``, ``"attributes"``,
    ``"events"``, ``"links"``, ``"status_message"``, ``"tags"``, ``"metadata"``); any string
    after that is a key, and a key that matches a rule scrubs the value.
    """
    rules = default()
    for key in path[1:]:
        if type(key) is str:
            reason = rules.key_reason(key)
            if reason is not None:
                return marker(reason) if _hides(value) else value
    return rules.text(value) if type(value) is str else value
