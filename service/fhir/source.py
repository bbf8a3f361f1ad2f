"""The FHIR data-source seam: one interface, two implementations.

``HttpFhirSource`` (``service.fhir.client``) talks to a FHIR R4 server with httpx;
``InMemoryFhirSource`` (``service.fhir.memory``) answers from bundled resources
(the embedded demo data, and tests).

Search results are read page by page with :func:`read_search_page`, which the
client uses for the pages it fetches and ``service.gather`` for prefetched
searchset Bundles, so both treat outcomes, entry modes and ``next`` links alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from service.fhir.errors import FhirResponseError

MAX_OUTCOME_CHARS = 300
# An OperationOutcome issue saying a search parameter was not applied: the result is not filtered as asked.
_IGNORED_PARAMETER_CODES = frozenset({"not-supported"})
_IGNORED_PARAMETER_WORDS = ("ignored", "unknown search parameter", "not supported")
_RESOURCE_MODES = (None, "match", "include")


class MalformedBundleError(ValueError):
    """A Bundle or OperationOutcome whose container is of the wrong JSON type (``entry: 5``, ``issue: 5``).

    Whoever reads it decides the answer: a 4xx for what the caller sent (prefetch), a 502 for what a
    FHIR server sent.
    """


def _list_of(container: dict, key: str, what: str) -> list:
    """``container[key]`` when it is a list; [] when absent or null; MalformedBundleError otherwise."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBundleError(f"{what}.{key} must be a list, not {type(value).__name__}")
    return value


@dataclass
class SearchPage:
    """One searchset Bundle: its resources, what the server said, and the ``next`` link."""

    resources: list[dict] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    unfiltered: bool = False
    next_url: str | None = None


@dataclass
class SearchResult:
    """The resources a search returned (all pages), and what the server said about it."""

    resources: list[dict] = field(default_factory=list)
    # diagnostics of OperationOutcome entries (e.g. an ignored search parameter)
    outcomes: list[str] = field(default_factory=list)
    # True when the server said it ignored a parameter: the result is not filtered as asked
    unfiltered: bool = False

    def add(self, page: SearchPage) -> None:
        """Append one page's resources and outcomes."""
        self.resources.extend(page.resources)
        self.outcomes.extend(page.outcomes)
        self.unfiltered = self.unfiltered or page.unfiltered


def token_value(system: str, code: str) -> str:
    """A ``system|code`` token search value, FHIR-escaped (``\\ , | $``) and URL-encoded for a query string.

    ``:`` and ``/`` (in system URIs) and the ``|`` separator stay readable, as in the CDS Hooks examples.
    """

    def escape(text: str) -> str:
        for ch in ("\\", ",", "|", "$"):
            text = text.replace(ch, "\\" + ch)
        return quote(text, safe=":/")

    return f"{escape(system)}|{escape(code)}"


def _issue_text(issue: dict) -> str:
    details = issue.get("details")
    if not isinstance(details, dict):
        details = {}
    text = issue.get("diagnostics") or details.get("text") or issue.get("code") or "no details"
    return str(text)[:MAX_OUTCOME_CHARS]


def _says_parameter_ignored(issue: dict, text: str) -> bool:
    lowered = text.lower()
    return issue.get("code") in _IGNORED_PARAMETER_CODES or any(word in lowered for word in _IGNORED_PARAMETER_WORDS)


def outcome_texts(outcome: dict) -> list[str]:
    """The diagnostics of an OperationOutcome's issues (each shortened)."""
    return [_issue_text(i) for i in _list_of(outcome, "issue", "OperationOutcome") if isinstance(i, dict)]


def next_link(bundle: dict) -> str | None:
    """The Bundle's ``next`` link, if any."""
    for link in _list_of(bundle, "link", "Bundle"):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"] or None
    return None


def read_search_page(bundle: dict) -> SearchPage:
    """Split a searchset Bundle into resources (modes match/include), outcomes and its ``next`` link.

    :class:`MalformedBundleError` when ``entry``, ``link`` or an outcome's ``issue`` is not a list."""
    page = SearchPage(next_url=next_link(bundle))
    resources = page.resources
    for entry in _list_of(bundle, "entry", "Bundle"):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        if rtype == "OperationOutcome":
            for issue in _list_of(resource, "issue", "OperationOutcome"):
                if isinstance(issue, dict):
                    text = _issue_text(issue)
                    page.outcomes.append(text)
                    page.unfiltered = page.unfiltered or _says_parameter_ignored(issue, text)
            continue
        search = entry.get("search")
        if (search.get("mode") if isinstance(search, dict) else None) in _RESOURCE_MODES:
            resources.append(resource)
    return page


class FhirSource(Protocol):
    """Read and search on one FHIR server (or its stand-in)."""

    async def read(self, resource_type: str, resource_id: str) -> dict:
        """The resource, or :class:`FhirNotFoundError`."""
        ...

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> SearchResult:
        """Every page of a type-level search."""
        ...

    def can_follow(self, url: str) -> bool:
        """True when ``url`` (e.g. a prefetched Bundle's ``next`` link) may be fetched from this source:
        it is on the source's origin, so the source's token goes nowhere else."""
        ...

    async def follow(self, url: str) -> SearchResult:
        """Every page of a search from ``url`` (a ``next`` link :meth:`can_follow` accepts) to the end."""
        ...


@dataclass(frozen=True)
class Query:
    """A relative FHIR read (``Patient/123``) or type-level search (``Observation?patient=123``)."""

    resource_type: str
    resource_id: str | None
    params: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, relative: str) -> Query:
        parts = urlsplit(relative)
        if parts.scheme or parts.netloc:
            raise FhirResponseError(f"query must be relative: {relative}")
        path = parts.path.strip("/").split("/")
        if not path or not path[0] or len(path) > 2:
            raise FhirResponseError(f"not a FHIR read or search: {relative}")
        resource_id = path[1] if len(path) == 2 else None
        return cls(path[0], resource_id, tuple(parse_qsl(parts.query, keep_blank_values=False)))

    @property
    def is_read(self) -> bool:
        return self.resource_id is not None


async def run_query(source: FhirSource, query: Query) -> dict | SearchResult:
    """A read returns the resource; a search, every page of the result."""
    if query.is_read:
        return await source.read(query.resource_type, query.resource_id or "")
    return await source.search(query.resource_type, list(query.params))
