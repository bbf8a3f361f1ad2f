"""Record-derived text in Markdown card details: shown as text, never as HTML or links.

A card's ``detail`` is (GitHub-flavoured) Markdown that the EHR renders. Text that comes from the
patient's record or the request (resource ids that failed validation, units, status reasons,
displays) can hold HTML (``<img src=x onerror=...>``) or Markdown links (``[click](https://...)``);
rendered, that would run script in the EHR or put a link in front of the clinician.

- :func:`escape` makes one record-derived string literal (every Markdown-significant ASCII
  punctuation character backslash-escaped: CommonMark shows it as written);
- :func:`neutralise` is defence in depth over a whole detail the service wrote: it escapes what
  the service's own wording never contains (an HTML tag's ``<``, a link's ``](``, an image's ``![``).
"""

from __future__ import annotations

import re

_SIGNIFICANT = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
# an unescaped "<" (after an even number of backslashes) that starts a tag, a comment or a declaration
_TAG_START = re.compile(r"(?<!\\)((?:\\\\)*)<(?=[A-Za-z/!?])")
_LINK = re.compile(r"(?<!\\)((?:\\\\)*)(\]\(|!\[)")


def escape(text: str) -> str:
    """``text`` shown literally in Markdown (and so never as HTML)."""
    return _SIGNIFICANT.sub(r"\\\1", text)


def neutralise(markdown: str) -> str:
    """``markdown`` with raw HTML tags, links and images turned into plain text."""
    # the scans are the slow part (a backslash-run group tried at every character: ~0.4 ms a card
    # detail); a detail without a "<", a "](" or a "![" has nothing they could match
    if "<" in markdown:
        markdown = _TAG_START.sub(r"\1\\<", markdown)
    if "](" in markdown or "![" in markdown:
        markdown = _LINK.sub(lambda m: m.group(1) + m.group(2)[0] + "\\" + m.group(2)[1], markdown)
    return markdown
