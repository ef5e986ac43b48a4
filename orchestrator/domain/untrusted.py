"""Data from outside (board specs, documents fetched by CID, model output): parsed with explicit limits, checked
against the text rules, and shown without letting it drive a terminal.

Why limits of our own: Python's JSON decoder recurses once per nesting level, guarded only by the interpreter's
recursion limit, and importing py-evm raises that limit to 100,000 — deep enough that a 200 KB document of nested
brackets overflows the C stack and kills the process (a segmentation fault, not an exception). So
``parse_json`` measures the nesting with a flat scan *before* the decoder sees a byte, and walks the result with
an explicit stack; nothing here recurses over outside data, whatever ``sys.getrecursionlimit()`` says.

Standard library only: the domain core (``specs``) and every adapter use it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.errors import DocumentRefused

#: Control characters refused in text from outside: C0 except tab and newline, DEL, and C1 (which includes the
#: 8-bit CSI, U+009B, that some terminals obey like ESC [).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: The same rule as a JSON Schema / ECMA-262 pattern, published in the task-spec schema.
NO_CONTROL_CHARS_PATTERN = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
#: Lone UTF-16 surrogates: a JSON ``\ud800`` escape decodes to one, and no database or terminal can take it.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
#: One JSON string token (escapes included), or one bracket: what the nesting scan looks at.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How much of a JSON document from outside is read before it is refused. Each limit is named in the error
    of a document that breaks it."""

    max_bytes: int = 262_144
    max_depth: int = 32
    #: values and keys in the whole document
    max_values: int = 20_000
    #: items of one array, or keys of one object
    max_container: int = 2_000
    #: characters of one string or key
    max_string_chars: int = 262_144
    #: characters of one number literal (uint256 has 78 digits)
    max_number_chars: int = 100
    #: whether a string may contain a control character other than newline and tab
    allow_control_chars: bool = False

    def describe(self) -> dict[str, int | bool]:
        """The limits as published (JSON Schema annotation ``x-deworker-limits``, ``deworker spec schema``)."""
        return {
            "max_bytes": self.max_bytes,
            "max_depth": self.max_depth,
            "max_values": self.max_values,
            "max_container": self.max_container,
            "max_string_chars": self.max_string_chars,
            "max_number_chars": self.max_number_chars,
            "allow_control_chars": self.allow_control_chars,
        }


def parse_json(raw: bytes, *, limits: JsonLimits, what: str = "document") -> Any:
    """Decode untrusted JSON bytes within ``limits``. Raises ``DocumentRefused`` naming the limit or the place.

    Refused as well: invalid UTF-8, a byte-order mark, duplicate object keys (two parsers could each pick a
    different value), ``NaN``/``Infinity`` and numbers that overflow a float, lone surrogates.
    """
    if len(raw) > limits.max_bytes:
        raise DocumentRefused(f"{what} is {len(raw):,} bytes, over the {limits.max_bytes:,}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentRefused(f"{what} is not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise DocumentRefused(f"{what} starts with a byte-order mark, which JSON does not allow")
    depth = nesting_depth(text)
    if depth > limits.max_depth:
        raise DocumentRefused(f"{what} is nested {depth:,} levels deep, over the limit of {limits.max_depth}")

    def number(literal: str, convert: type[int] | type[float]) -> int | float:
        if len(literal) > limits.max_number_chars:
            raise DocumentRefused(
                f"{what} has a number of {len(literal):,} characters, over the limit of {limits.max_number_chars}"
            )
        value = convert(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise DocumentRefused(f"{what} has a number too large for a float: {literal[:20]}")
        return value

    def constant(name: str) -> None:
        raise DocumentRefused(f"{what} uses {name}, which is not JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DocumentRefused(f"{what} has the key {printable(key[:60])!r} twice in one object")
            out[key] = value
        return out

    try:
        doc = json.loads(
            text,
            parse_int=lambda s: number(s, int),
            parse_float=lambda s: number(s, float),
            parse_constant=constant,
            object_pairs_hook=pairs,
        )
    except json.JSONDecodeError as exc:
        raise DocumentRefused(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # cannot happen below max_depth; kept so no parser error ever escapes as a crash
        raise DocumentRefused(f"{what} is nested too deeply to parse") from None
    check_values(doc, limits=limits, what=what)
    return doc


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, found by a flat scan (string contents are skipped, a stray
    closing bracket never lowers the count below zero, so the result is never less than what a decoder sees)."""
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def check_values(doc: Any, *, limits: JsonLimits, what: str = "document") -> None:
    """Walk decoded JSON with an explicit stack: container sizes, the number of values, string lengths, lone
    surrogates and (unless allowed) control characters. The error names the place, e.g. ``acceptance[2]``."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    values = 0
    while stack:
        value, path = stack.pop()
        values += 1
        if values > limits.max_values:
            raise DocumentRefused(f"{what} has more than {limits.max_values:,} values")
        if isinstance(value, dict):
            if len(value) > limits.max_container:
                raise DocumentRefused(
                    f"{where(what, path)} has {len(value):,} keys, over the limit of {limits.max_container:,}"
                )
            for key, item in value.items():
                check_text(key, limits=limits, place=f"a key of {where(what, path)}")
                stack.append((item, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            if len(value) > limits.max_container:
                raise DocumentRefused(
                    f"{where(what, path)} has {len(value):,} items, over the limit of {limits.max_container:,}"
                )
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            check_text(value, limits=limits, place=where(what, path))


def where(what: str, path: str) -> str:
    """``field description of spec`` style place names for error messages (the path printed safely)."""
    return f"field {printable(path[:120])} of {what}" if path else what


def check_text(value: str, *, limits: JsonLimits, place: str) -> None:
    """One string from outside: length, lone surrogates, control characters."""
    if len(value) > limits.max_string_chars:
        raise DocumentRefused(f"{place} is {len(value):,} characters, over the limit of {limits.max_string_chars:,}")
    if found := _SURROGATES.search(value):
        raise DocumentRefused(
            f"{place} contains a lone surrogate (U+{ord(found.group()):04X}) at position {found.start()}, "
            "which is not text"
        )
    if not limits.allow_control_chars and (found := CONTROL_CHARS.search(value)):
        raise DocumentRefused(
            f"{place} contains the control character {char_name(found.group())} at position {found.start()}; "
            "only newline and tab are allowed"
        )


def char_name(char: str) -> str:
    """``U+001B (ESCAPE)``: a character named for an error message."""
    name = unicodedata.name(char, "") or _C0_NAMES.get(ord(char), "control")
    return f"U+{ord(char):04X} ({name})"


_C0_NAMES = {0: "NUL", 7: "BELL", 8: "BACKSPACE", 13: "CARRIAGE RETURN", 27: "ESCAPE", 127: "DELETE", 0x9B: "CSI"}


#: What ``printable`` escapes: control characters (newline and tab too, for one-line output) and lone surrogates,
#: and the bidirectional overrides that make text read differently from what it is ("Trojan Source").
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: str, *, keep_lines: bool = False) -> str:
    """``text`` safe to write to a terminal or a log: every control character, lone surrogate and bidi override
    shown as an escape (``\\x1b``, ``\\u202e``), so outside text can neither move the cursor, retitle the window,
    hide itself nor break a line. ``keep_lines`` leaves newlines and tabs as they are (multi-line content)."""
    pattern = _UNPRINTABLE_KEEP_LINES if keep_lines else _UNPRINTABLE
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
