"""CDS Hooks service calls: ``POST /cds-services/{service_id}``."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from rules import Assessment, review_sorafenib_order, review_tace_order
from service.api.fast_json import FastJsonRoute
from service.api.schemas import ERROR_RESPONSES, ErrorMessage
from service.audit import note_audit
from service.auth.dependency import writer_scope
from service.cds.draft_orders import DraftOrders, DraftOrdersError, read_draft_orders
from service.cds.models import Card, CardsResponse, HookRequest, Link
from service.deps import StateDep
from service.errors import ApiError, to_api_error
from service.fhir.allowlist import check_fhir_server
from service.fhir.errors import FhirError
from service.gather import PatientMismatchError, PrefetchInvalidError, PrefetchMissingError
from service.main_state import AppState
from service.pipeline import assess_patient
from service.render.assessment_json import render_assessment
from service.render.cards import render_patient_view_cards
from service.render.course import page_course
from service.render.order_cards import render_order_card
from service.settings import Settings

router = APIRouter(tags=["cds-hooks"], route_class=FastJsonRoute)

ORDER_HOOKS = frozenset({"order-select", "order-sign"})
HOOK_ERRORS = {
    **ERROR_RESPONSES,
    404: {
        "model": ErrorMessage,
        "description": "No CDS service with this id (ErrorMessage), or an unknown patient (OperationOutcome)",
        "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
    },
    412: {"model": ErrorMessage, "description": "Data needed is neither prefetched nor fetchable"},
    502: {"model": ErrorMessage, "description": "The FHIR server's answer could not be used"},
    503: {
        "model": ErrorMessage,
        "description": "The FHIR server is down or too slow, or too many FHIR requests are in flight "
        "(HCC_FHIR_MAX_CONCURRENT_PER_ORIGIN; then with Retry-After)",
    },
}


def _draft_orders(request: HookRequest, state: AppState) -> DraftOrders:
    context = request.context
    if context.draft_orders is None:
        raise ApiError(422, f"context.draftOrders is required for {request.hook}")
    if request.hook == "order-select" and context.selections is None:
        raise ApiError(422, "context.selections is required for order-select")
    try:
        return read_draft_orders(context.draft_orders, context.selections, state.knowledge)
    except DraftOrdersError as exc:
        raise ApiError(422, str(exc)) from exc


def _order_cards(assessment: Assessment, drafts: DraftOrders, state: AppState) -> list[Card]:
    alerts = [a for d in drafts.sorafenib for a in review_sorafenib_order(assessment, d, state.knowledge)]
    alerts += [a for d in drafts.tace for a in review_tace_order(assessment, d, state.knowledge)]
    base = state.settings.public_base_url
    return [render_order_card(a, assessment, drafts.resources, state.knowledge, base) for a in alerts]


@router.post(
    "/cds-services/{service_id}",
    response_model=CardsResponse,
    response_model_exclude_none=True,
    response_model_by_alias=True,
    responses=HOOK_ERRORS,
    summary="Call a CDS service",
)
async def call_service(service_id: str, request: HookRequest, state: StateDep, http: Request) -> CardsResponse:
    note_audit(
        http,
        service_id=service_id,
        hook_instance=request.hook_instance,
        patient_ref=f"Patient/{request.context.patient_id}",
    )
    service = state.services.get(service_id)
    if service is None:
        raise ApiError(404, f"no CDS service '{service_id}'; see GET /cds-services")
    if request.hook != service.hook:
        raise ApiError(400, f"service '{service_id}' answers the '{service.hook}' hook, not '{request.hook}'")
    drafts = _draft_orders(request, state) if service.hook in ORDER_HOOKS else None
    if drafts is not None and not drafts.sorafenib and not drafts.tace:
        return CardsResponse(cards=[])  # nothing this service reviews was ordered
    source = None
    try:
        if request.fhir_server:
            base = check_fhir_server(
                request.fhir_server,
                state.settings.allowlist,
                allow_any_loopback=state.settings.is_demo,
            )
            token = request.fhir_authorization.access_token if request.fhir_authorization else None
            source = state.hook_source(base, token)
        assessment = await assess_patient(
            state,
            request.context.patient_id,
            templates=service.prefetch,
            prefetch=request.prefetch,
            source=source,
            as_of=state.settings.today(),
        )
    except (FhirError, PrefetchMissingError, PatientMismatchError, PrefetchInvalidError) as exc:
        raise to_api_error(exc, "hook") from exc
    note_audit(http, rules_version=assessment.versions["rules"])
    if not assessment.has_hcc:
        return CardsResponse(cards=[])
    cards = (
        render_patient_view_cards(assessment, state.settings.public_base_url)
        if drafts is None
        else _order_cards(assessment, drafts, state)
    )
    if state.metrics is not None:
        state.metrics.observe_cards(service_id, cards)
    if cards:
        cards = await _store_and_link(assessment, cards, service_id, request.hook_instance, state, writer_scope(http))
    return CardsResponse(cards=cards)


def smart_links(settings: Settings, stored_id: str) -> list[Link]:
    """The SMART app's launch link (issue 23), when a SMART client id is configured: the EHR adds ``iss`` and
    ``launch`` to the URL. The card's assessment id travels twice, as ``appContext`` (for EHRs that pass it in the
    token response) and in the URL (for those that do not); the app treats it as a hint, never as authority."""
    if not settings.smart_client_id:
        return []
    return [
        Link(
            label="Record tumour measurements (opens the app)",
            url=f"{settings.public_base_url}/smart/launch?assessment={stored_id}",
            type="smart",
            app_context=json.dumps({"assessment": stored_id}),
        )
    ]


async def _store_and_link(
    assessment: Assessment,
    cards: list[Card],
    service_id: str,
    hook_instance: str,
    state: AppState,
    scope: tuple[str, str | None] | None = None,
) -> list[Card]:
    """Keep this call's assessment behind an unguessable, expiring id; link every card to its page.

    The assessment and the issued cards are committed together before the cards are returned: the link
    works the moment the EHR shows it (:meth:`~service.db.Database.save_assessment_with_cards`: on SQLite one
    worker-thread hop for both statements).
    """
    db = state.db
    rendered = render_assessment(assessment, state.knowledge, state.benchmarks)
    row = db.assessments.new_row(
        patient_ref=f"Patient/{assessment.patient_id}",
        service_id=service_id,
        rules_version=assessment.versions["rules"],
        assessment=rendered,
        page=page_course(assessment, state.knowledge),
        hook_instance=hook_instance[:100],
    )
    stored_id = row["id"]
    link = Link(
        label="Full assessment, reasons and survival curves",
        url=f"{state.settings.public_base_url}/assessments/{stored_id}",
        type="absolute",
    )
    links = [link, *smart_links(state.settings, stored_id)]
    linked = [card.model_copy(update={"links": [*(card.links or []), *links]}) for card in cards]
    card_rows = db.feedback.card_rows(
        service_id,
        [c.model_dump(by_alias=True, exclude_none=True) for c in linked],
        assessment_id=stored_id,
        scope=scope,
    )
    await db.save_assessment_with_cards(row, card_rows)
    return linked
