"""The FHIR data-source seam: one interface, two implementations.

``HttpFhirSource`` (``service.fhir.client``) talks to a FHIR R4 server with httpx;
``InMemoryFhirSource`` (``service.fhir.memory``) answers from bundled resources
(the embedded demo data, and tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from service.fhir.errors import FhirResponseError


@dataclass
class SearchResult:
    """The resources a search returned (all pages), and what the server said about it."""

    resources: list[dict] = field(default_factory=list)
    # diagnostics of OperationOutcome entries (e.g. an ignored search parameter)
    outcomes: list[str] = field(default_factory=list)
    # True when the server said it ignored a parameter: the result is not filtered as asked
    unfiltered: bool = False


class FhirSource(Protocol):
    """Read and search on one FHIR server (or its stand-in)."""

    async def read(self, resource_type: str, resource_id: str) -> dict:
        """The resource, or :class:`FhirNotFoundError`."""
        ...

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> SearchResult:
        """Every page of a type-level search."""
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
    if query.is_read:
        return await source.read(query.resource_type, query.resource_id or "")
    return await source.search(query.resource_type, list(query.params))
