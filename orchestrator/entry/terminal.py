"""Text from outside, ready for a rich console: control characters, terminal escapes and bidi overrides shown as
escapes (``untrusted.printable``), and rich markup shown as written (``[link=...]`` in a title stays text).

Every CLI table or line that shows a title, reason, feedback, CID or path from a board, a model or a reviewer
goes through ``literal``; the web pages escape HTML on their own (Jinja autoescape).
"""

from __future__ import annotations

from rich.markup import escape

from orchestrator.domain.untrusted import printable


def literal(text: str | None, *, keep_lines: bool = False) -> str:
    """``text`` as rich markup that prints it literally and safely (``None`` prints as nothing)."""
    return escape(printable(text or "", keep_lines=keep_lines))
