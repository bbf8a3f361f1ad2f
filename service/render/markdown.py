"""Record-derived text in Markdown card details: shown as text, never as Markdown or HTML.

A card's ``detail`` is (GitHub-flavoured) Markdown that the EHR renders. Text that comes from the
patient's record or the request (resource ids that failed validation, units, status reasons,
displays) can hold HTML (``<img src=x onerror=...>``), links (``[click](https://...)``), reference
definitions (``[x]: https://evil.example "hospital protocol"``), headings, lists or line breaks;
rendered, that would run script in the EHR, put a link in front of the clinician or forge a
heading such as ``## Sorafenib eligibility: eligible``.

- :func:`escape` makes one string literal for a single line of Markdown: every line ending and
  control character becomes a space (the string can never start a block of its own: no heading,
  list, quote, code block, thematic break or reference definition), and every character
  CommonMark or GFM gives a meaning to inline or at the start of a block is backslash-escaped
  (CommonMark 2.4: an escaped ASCII punctuation character is always literal). The card renderer
  escapes *every* string it interpolates (reasons, notes, evidence, summaries, even the service's
  own wording: reasons quote record text), and writes the Markdown around them itself.
- :func:`neutralise` is defence in depth over a whole detail: it escapes what the service's own
  markup never contains (an HTML tag's ``<``, a link's ``](``, an image's ``![``).
"""

from __future__ import annotations

import re

# always escaped: the characters that open or close an inline construct (emphasis, code, link,
# image, autolink, raw HTML, entity, strikethrough, table cell) or a block (heading, quote, list)
_SIGNIFICANT = re.compile(r"([\\`*{}\[\]()<>#+!|~&])")
# "_" opens or closes emphasis unless it sits between two ASCII letters or digits (CommonMark
# 6.2: such a run is both left- and right-flanking and preceded and followed by an alphanumeric)
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# at the start of a line only: a list item ("-", "1." / "1)"), a setext or thematic line ("=", "-")
_LINE_START = re.compile(r"^(?:(?=[-=])|\d{1,9}(?=\.))")
# line endings, tabs and every other control or separator character: a single line, no blocks
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
_SPACES = re.compile(r"[ \t]{2,}")


def _one_line(text: str) -> str:
    text = _BREAKS.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" ")


def escape(text: str) -> str:
    """``text`` shown literally inside one line of Markdown (and so never as HTML or a block)."""
    text = _one_line(text)
    text = _SIGNIFICANT.sub(r"\\\1", text)
    if "_" in text:
        text = _UNDERSCORE.sub(r"\\_", text)
    m = _LINE_START.match(text)
    if m:  # "-" / "=" (a list item, a setext or thematic line) or "1." (an ordered list) first
        text = text[: m.end()] + "\\" + text[m.end():]
    return text


def escape_all(texts) -> list[str]:
    """:func:`escape` over an iterable of strings."""
    return [escape(t) for t in texts]


def neutralise(markdown: str) -> str:
    """``markdown`` with raw HTML tags, links and images turned into plain text."""
    # the scans are the slow part (a backslash-run group tried at every character: ~0.4 ms a card
    # detail); a detail without a "<", a "](" or a "![" has nothing they could match
    if "<" in markdown:
        markdown = _TAG_START.sub(r"\1\\<", markdown)
    if "](" in markdown or "![" in markdown:
        markdown = _LINK.sub(lambda m: m.group(1) + m.group(2)[0] + "\\" + m.group(2)[1], markdown)
    return markdown


# an unescaped "<" (after an even number of backslashes) that starts a tag, a comment or a declaration
_TAG_START = re.compile(r"(?<!\\)((?:\\\\)*)<(?=[A-Za-z/!?])")
_LINK = re.compile(r"(?<!\\)((?:\\\\)*)(\]\(|!\[)")
