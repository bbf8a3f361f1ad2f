"""The references page that ships with the product: ``GET /references`` (HTML, or JSON on request).

Every citation a user sees names a published source (authors, journal, year) or an entry of this
page: the source study (its bibliographic record is unconfirmed, and the page says so, with the
study's internal inconsistencies that the benchmark caveats cite by number) and the product's own
operational choices, listed as such. The entries are ``rules/data/references.json``; the
inconsistencies come from the shipped benchmark tables. ``GET /references`` answers HTML unless
the client prefers ``application/json``; ``GET /references.json`` is always JSON. No JWT: the page
holds no patient data (cards link to it), as ``/about``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from service.benchmarks.patient import COHORT_ID
from service.deps import StateDep
from service.knowledge import read_data_file
from service.main_state import AppState
from service.render.templates import TEMPLATES

router = APIRouter(tags=["references"])

PAGE_PATH = "/references"
_HEADERS = {
    "Cache-Control": "public, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Vary": "Accept",
}
_TEMPLATES = TEMPLATES
KINDS = ("published", "study", "product-choice")


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["published", "study", "product-choice"]
    authors: str
    title: str
    journal: str | None
    year: int | None
    url: str | None
    cited_as: str
    used_for: str
    details: str | None = None


class StudyInconsistency(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    number: int
    topic: str
    text: str


class References(BaseModel):
    """The product's references: published sources, the source study, the product's own choices."""

    version: str
    references: list[Reference]
    study_inconsistencies: list[StudyInconsistency]


@lru_cache(maxsize=1)
def _entries() -> tuple[str, tuple[Reference, ...]]:
    document = read_data_file("references.json")
    return str(document["_meta"]["version"]), tuple(Reference.model_validate(e) for e in document["entries"])


def load_references(state: AppState) -> References:
    """The shipped entries with the source study's inconsistencies (numbered as the caveats cite them)."""
    version, entries = _entries()
    cohort = state.benchmarks.cohort(COHORT_ID).document
    return References(
        version=version,
        references=list(entries),
        study_inconsistencies=[StudyInconsistency.model_validate(i) for i in cohort.get("inconsistencies", [])],
    )


def prefers_json(accept: str | None) -> bool:
    """True when the Accept header ranks application/json above text/html (absent or */*: HTML)."""
    if not accept:
        return False
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[media.lower()] = max(q, best.get(media.lower(), 0.0))
    json_q = best.get("application/json", 0.0)
    html_q = max(best.get("text/html", 0.0), best.get("text/*", 0.0), best.get("*/*", 0.0) * 0.99)
    return json_q > 0 and json_q > html_q


def _html(refs: References) -> str:
    groups = {kind: [r for r in refs.references if r.kind == kind] for kind in KINDS}
    return _TEMPLATES.get_template("references.html").render(
        published=groups["published"],
        study=groups["study"],
        choices=groups["product-choice"],
        inconsistencies=refs.study_inconsistencies,
        version=refs.version,
    )


@router.get(
    PAGE_PATH,
    response_class=HTMLResponse,
    summary="The sources the product cites: published sources, the source study, the product's own choices",
    responses={
        200: {
            "description": "HTML; JSON (the References schema) when the client prefers application/json",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/References"}}},
        }
    },
)
async def references_page(request: Request, state: StateDep) -> Response:
    refs = load_references(state)
    if prefers_json(request.headers.get("accept")):
        return JSONResponse(refs.model_dump(mode="json"), headers=_HEADERS)
    return HTMLResponse(_html(refs), headers=_HEADERS)


@router.get(f"{PAGE_PATH}.json", response_model=References, summary="The references page as JSON")
async def references_json(state: StateDep) -> JSONResponse:
    return JSONResponse(load_references(state).model_dump(mode="json"), headers=_HEADERS)
