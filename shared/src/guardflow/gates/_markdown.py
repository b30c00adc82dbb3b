"""A tiny, safe Markdown subset for gate bodies on the review page.

Gate bodies come from pipeline code and may quote data, so the text is HTML-escaped first and only
then given a little structure: paragraphs, ``- ``/``* `` and ``1. `` lists, ``# `` headings (shown
as small headings), ``**bold**``, ``*emphasis*`` and ```code```. Nothing else is interpreted: no raw
HTML, no links, no images (a body cannot make the page load anything or point anywhere).
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

__all__ = ["render_markdown"]

_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


def _inline(escaped: str) -> str:
    """Apply code, bold and emphasis to already-escaped text (code spans are left verbatim)."""
    parts = _CODE.split(escaped)
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"<code>{part}</code>")
        else:
            part = _BOLD.sub(r"<strong>\1</strong>", part)
            out.append(_EM.sub(r"<em>\1</em>", part))
    return "".join(out)


def _blocks(lines: list[str]) -> list[str]:
    """Group lines into HTML blocks: lists, headings and paragraphs."""
    out: list[str] = []
    paragraph: list[str] = []
    list_tag: str | None = None
    entries: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(line.strip()) for line in paragraph) + "</p>")
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_tag
        if list_tag is not None:
            body = "".join(f"<li>{_inline(entry)}</li>" for entry in entries)
            out.append(f"<{list_tag}>{body}</{list_tag}>")
            entries.clear()
            list_tag = None

    for line in lines:
        bullet, number, heading = _BULLET.match(line), _NUMBER.match(line), _HEADING.match(line)
        if not line.strip():
            flush_paragraph()
            flush_list()
        elif bullet or number:
            tag = "ul" if bullet else "ol"
            flush_paragraph()
            if list_tag != tag:
                flush_list()
                list_tag = tag
            entries.append((bullet or number).group(1).strip())  # type: ignore[union-attr]
        elif heading:
            flush_paragraph()
            flush_list()
            out.append(f'<p class="md-heading"><strong>{_inline(heading.group(2))}</strong></p>')
        elif list_tag is not None and line.startswith((" ", "\t")) and entries:
            entries[-1] += " " + line.strip()
        else:
            flush_list()
            paragraph.append(line)
    flush_paragraph()
    flush_list()
    return out


def render_markdown(text: str | None) -> Markup:
    """Render a gate body as safe HTML.

    Args:
        text: Markdown text from the gate request (any HTML in it is shown as text).

    Returns:
        Markup ready for a Jinja2 template; it contains only ``p``, ``br``, ``ul``, ``ol``,
        ``li``, ``strong``, ``em`` and ``code`` elements.

    Examples:
        >>> str(render_markdown("**Ship** `v2`?\\n\\n- <b>a</b>"))
        '<p><strong>Ship</strong> <code>v2</code>?</p><ul><li>&lt;b&gt;a&lt;/b&gt;</li></ul>'
    """
    if not text:
        return Markup("")
    escaped = html.escape(text.replace("\r\n", "\n").replace("\r", "\n"), quote=True)
    # Safe: every character of the input was escaped before any tag was added.
    return Markup("".join(_blocks(escaped.split("\n"))))
