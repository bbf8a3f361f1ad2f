"""An in-memory FHIR source over bundled resources (embedded demo data, tests).

It supports the search parameters the service's own queries use: ``patient`` /
``subject`` (reference), ``code`` (token, ``system|code`` or ``code``, comma = OR),
``_id`` and ``_count`` (ignored: everything is one page). Any other parameter is
reported as ignored, as a real server does. It has no URLs, so it follows no
``next`` link: a paginated prefetch is fetched again from it instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from service.fhir.errors import FhirNotFoundError, FhirResponseError
from service.fhir.source import SearchResult

SUBJECT_FIELDS = ("subject", "patient")
PAGING_PARAMS = {"_count", "_sort"}


def _reference_matches(resource: dict, patient_ref: str) -> bool:
    for name in SUBJECT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and ref.get("reference") == patient_ref:
            return True
    return False


def _code_matches(resource: dict, tokens: list[str]) -> bool:
    codings = [c for c in (resource.get("code") or {}).get("coding", []) if isinstance(c, dict)]
    codings += [c for comp in resource.get("component", []) or [] for c in (comp.get("code") or {}).get("coding", [])]
    for token in tokens:
        system, _, code = token.rpartition("|")
        for coding in codings:
            if coding.get("code") == code and (not system or coding.get("system") == system):
                return True
    return False


class InMemoryFhirSource:
    """Resources held by type and id; each call returns copies."""

    def __init__(self, resources: Iterable[dict] = ()) -> None:
        self._store: dict[str, dict[str, dict]] = {}
        for resource in resources:
            self.add(resource)

    def add(self, resource: dict) -> None:
        self._store.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    def patient_ids(self) -> list[str]:
        return sorted(self._store.get("Patient", {}))

    def resource_types(self) -> list[str]:
        return sorted(self._store)

    def all_resources(self) -> list[dict]:
        return [copy.deepcopy(r) for by_id in self._store.values() for r in by_id.values()]

    async def read(self, resource_type: str, resource_id: str) -> dict:
        resource = self._store.get(resource_type, {}).get(resource_id)
        if resource is None:
            raise FhirNotFoundError(f"{resource_type}/{resource_id} not found")
        return copy.deepcopy(resource)

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> SearchResult:
        candidates = list(self._store.get(resource_type, {}).values())
        outcomes: list[str] = []
        for name, value in params:
            if name in ("patient", "subject"):
                ref = value if "/" in value else f"Patient/{value}"
                candidates = [r for r in candidates if _reference_matches(r, ref)]
            elif name == "code":
                tokens = value.split(",")
                candidates = [r for r in candidates if _code_matches(r, tokens)]
            elif name == "_id":
                ids = set(value.split(","))
                candidates = [r for r in candidates if r.get("id") in ids]
            elif name not in PAGING_PARAMS:
                outcomes.append(f"Unknown search parameter '{name}' for {resource_type}")
        return SearchResult(
            resources=[copy.deepcopy(r) for r in candidates],
            outcomes=outcomes,
            unfiltered=bool(outcomes),
        )

    def can_follow(self, url: str) -> bool:
        """Never: an in-memory source has no URLs."""
        return False

    async def follow(self, url: str) -> SearchResult:
        raise FhirResponseError("the in-memory FHIR source has no pages to follow")
