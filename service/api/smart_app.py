"""The SMART app's pages, once launched (issue 23): ``GET /smart/app`` and ``POST /smart/app/measurements``.

The launch (``service.api.smart_launch``) leaves a server-side session: the FHIR base (``iss``), the patient of the
launch context, the user (``fhirUser``) and their access token. These pages read the patient's record LIVE through
that token — the same gathering, mapping and rules as a hook call — show the assessment (the card page's template)
and a form to record one imaging study's measurements. On save the form becomes one FHIR transaction (mCODE
resources and a Provenance naming the user: :mod:`service.smart.capture`), written through the user's token
(:mod:`service.smart.fhir_writer`); the record is then read again and assessed, and the page says what changed.

The patient comes only from the session: a card's assessment id (the launch's hint) for another patient is refused
before anything is read. Every form carries the session's CSRF token and a one-shot form id (a double submit writes
once). A refused or failed write says what was written: nothing, as the transaction is atomic.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from rules import Assessment
from service.api.page import assessment_view
from service.api.smart_launch import PAGE_CONTENT, page, smart_page_headers
from service.audit import note_audit
from service.build_info import package_version
from service.cds.services import patient_record_templates
from service.db import ExpiredAssessment
from service.deps import StateDep
from service.fhir.errors import FhirAuthError, FhirError
from service.gather import PatientMismatchError, PatientRecord, PrefetchMissingError, gather_patient_record
from service.main_state import AppState
from service.pipeline import Assessor
from service.render.assessment_json import render_assessment
from service.render.course import lesion_labels, page_course
from service.render.page_text import DECISION_TITLES, ELIGIBILITY_WORDS
from service.render.templates import TEMPLATES
from service.screening.summary import worklist_fields
from service.smart import capture
from service.smart.fhir_writer import WriteRefused, write_transaction
from service.smart.session import SmartPageError, SmartSession, SmartSessionDep, window_path

log = logging.getLogger("hcc_cds.smart")
router = APIRouter(tags=["smart-app"])

APP_NAME = "hcc-cds"
SERVICE_ID = "smart-app"  # the stored assessments' service id (the card's page link works for them too)
MAX_FORM_FIELDS = 500
MAX_FORM_BYTES = 64 * 1024
WRITE_STATUS = {"expired": 401, "forbidden": 403, "conflict": 409, "invalid": 422, "unavailable": 503, "unknown": 502}
WRITE_TITLES = {
    "expired": "Your session has expired — nothing was saved",
    "forbidden": "The EHR refused the write — nothing was saved",
    "conflict": "The record changed while the form was open — nothing was saved",
    "invalid": "The FHIR server rejected the study — nothing was saved",
    "unavailable": "The FHIR server could not be reached — nothing was saved",
    "unknown": "Not known whether the study was saved — check the record before saving again",
}
# what a clinician looks at after a save (service.screening.summary.worklist_fields names), and its words
CHANGE_FIELDS = (
    ("mrecist", "mRECIST response"),
    ("tace_resistance", "TACE resistance (JSH 2010)"),
    ("recommendation", "Recommendation"),
    ("sorafenib_eligibility", "Sorafenib after TACE: the study's criteria"),
)
STATUS_WORDS = {"met": "met", "not-met": "not met", "unknown": "unknown"}


class FormNames:
    """The form's field names as the template asks for them (:mod:`service.smart.capture` fixes them)."""

    study_date = capture.STUDY_DATE
    modality = capture.MODALITY
    vascular_invasion = capture.VASCULAR_INVASION
    form_error = capture.FORM_ERROR
    new_rows = capture.NEW_LESION_ROWS

    @staticmethod
    def size(body_structure_id: str) -> str:
        return capture.SIZE_PREFIX + body_structure_id

    @staticmethod
    def new_location(row: int) -> str:
        return f"{capture.NEW_LOCATION_PREFIX}{row}"

    @staticmethod
    def new_size(row: int) -> str:
        return f"{capture.NEW_SIZE_PREFIX}{row}"

    @staticmethod
    def extrahepatic(code: str) -> str:
        return capture.EXTRAHEPATIC_PREFIX + code

    @staticmethod
    def confirm_tace(procedure_id: str) -> str:
        return capture.CONFIRM_TACE_PREFIX + procedure_id


@dataclass
class LiveRecord:
    """The patient's record as read now through the user's token, assessed."""

    record: PatientRecord
    assessment: Assessment
    rendered: dict[str, Any]
    context: capture.CaptureContext


def _message(state: AppState, error: SmartPageError, *, back: str | None = None) -> HTMLResponse:
    """A page saying why the app cannot go on; ``back``: this window's app page, to link to."""
    link = (back, "Back to the assessment") if back else None
    return page(state.settings, error.status, error.title, error.message, link=link)


async def _check_hint(state: AppState, session: SmartSession) -> None:
    """The card the app was opened from must be this patient's: its assessment id is a hint, never authority."""
    if not session.assessment_hint:
        return
    stored = await state.db.assessments.get_assessment(session.assessment_hint)
    if stored is None or isinstance(stored, ExpiredAssessment):
        return  # an unknown or expired card link: the live record is read all the same
    if stored.patient_ref != f"Patient/{session.patient_id}":
        raise SmartPageError(
            403,
            "This card is for another patient",
            "The card the app was opened from belongs to another patient than the one open in the EHR. Nothing was "
            "read. Open the app again from the card in this patient's chart.",
        )


async def _read_live(state: AppState, session: SmartSession) -> LiveRecord:
    """Gather the launch patient's record through the user's token (as a hook call would) and assess it."""
    source = state.hook_source(session.iss, session.access_token.get_secret_value())
    as_of = state.settings.today()
    try:
        record = await gather_patient_record(
            session.patient_id,
            patient_record_templates(state.knowledge),
            None,
            source,
            deadline_seconds=state.settings.fhir_deadline_seconds,
        )
    except FhirAuthError as exc:
        raise SmartPageError(
            401, "Your session has expired", f"The EHR's FHIR server refused the app's access ({exc}). Open the app "
            "again from the patient's chart.",
        ) from exc
    except (FhirError, PrefetchMissingError, PatientMismatchError) as exc:
        raise SmartPageError(502, "The patient's record could not be read", str(exc)) from exc
    assessment = await anyio.to_thread.run_sync(Assessor.of(state), record, as_of)
    rendered = render_assessment(assessment, state.knowledge, state.benchmarks)
    context = capture.capture_context(
        session.patient_id, record.resources, as_of, state.knowledge, snapshot=assessment.snapshot
    )
    return LiveRecord(record, assessment, rendered, context)


def record_fingerprint(record: PatientRecord) -> str:
    """A digest of the record as read (every resource, canonical JSON): the form carries the one it was shown
    with, and a save whose fresh read differs is stopped before anything is written — the values the clinician
    typed were based on a record someone else has changed meanwhile (a study, a Procedure's coding)."""
    digest = hashlib.sha256()
    for resource in sorted([record.patient, *record.resources], key=lambda r: (str(r.get("resourceType")), str(r.get("id")))):
        digest.update(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:32]


def _same(typed: str, expected: str) -> bool:
    """Constant-time comparison of a form value (any text: compared as UTF-8 bytes, never a TypeError)."""
    return hmac.compare_digest(typed.encode(), expected.encode())


def patient_banner(patient: dict) -> dict[str, str | None]:
    """Who the record is (name, birth date, sex, id), as the EHR's patient banner shows it: the app is opened per
    chart, and a clinician checks the patient before recording anything (SMART's need_patient_banner)."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    text = chosen.get("text") or " ".join(
        [*(g for g in chosen.get("given") or [] if isinstance(g, str)), *([chosen["family"]] if isinstance(chosen.get("family"), str) else [])]
    )
    return {"name": text.strip() or None, "birth_date": patient.get("birthDate"), "sex": patient.get("gender"),
            "id": str(patient.get("id"))}


def _new_form_id() -> str:
    """A form's one-shot id: the save consumes it (``db.smart.consume_form_id``), so a double submit writes once."""
    return secrets.token_urlsafe(18)


def _app_page(
    state: AppState,
    session: SmartSession,
    live: LiveRecord,
    here: str,
    *,
    form_id: str,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = datetime.now(UTC)
    html = TEMPLATES.get_template("smart_app.html").render(
        **assessment_view(state, live.rendered, page_course(live.assessment, state.knowledge), now, None),
        session=session,
        ctx=live.context,
        names=FormNames,
        form_id=form_id,
        record_version=record_fingerprint(live.record),
        lesion_letters=lesion_labels(live.assessment),  # the letters the course chart and its table use
        patient=patient_banner(live.record.patient),
        errors=dict(errors or {}),
        values=dict(values or {}),
        today=live.context.today.isoformat(),
        here=here,
    )
    return HTMLResponse(html, status_code=status, headers=smart_page_headers(state.settings))


_PAGE = PAGE_CONTENT
_SESSION: dict[int | str, dict[str, Any]] = {
    401: {"description": "No session (no cookie, or it ended with its token): launch the app again", **_PAGE},
    404: {"description": "The SMART app is not configured (HCC_SMART_CLIENT_ID)", **_PAGE},
}
_READ: dict[int | str, dict[str, Any]] = {
    401: {"description": "No session, or the FHIR server refused the user's token", **_PAGE},
    403: {"description": "The card the app was opened from is another patient's (nothing read)", **_PAGE},
    502: {"description": "The patient's record could not be read", **_PAGE},
}


WindowPath = Annotated[str, Path(min_length=1, max_length=40, description="the launch's window (from the callback)")]


@router.get(
    "/smart/app/{window}",
    response_class=HTMLResponse,
    summary="The SMART app: the live assessment and the form (HTML)",
    responses={**_SESSION, **_READ},
)
async def smart_app(request: Request, state: StateDep, session: SmartSessionDep, window: WindowPath) -> HTMLResponse:
    try:
        await _check_hint(state, session)
        live = await _read_live(state, session)
    except SmartPageError as error:
        return _message(state, error)
    note_audit(request, rules_version=live.assessment.versions["rules"])
    return _app_page(state, session, live, window_path(window), form_id=_new_form_id())


async def _form_fields(request: Request) -> dict[str, str]:
    """The urlencoded form (the page's only enctype); a field given twice keeps its first value."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise SmartPageError(415, "The form could not be read", "The form must be sent as the page sends it.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise SmartPageError(413, "The form is too large", f"At most {MAX_FORM_BYTES // 1024} KiB.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SmartPageError(400, "The form could not be read", "The form's data is malformed.") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value.strip())
    return fields


async def _check_form(state: AppState, session: SmartSession, fields: Mapping[str, str]) -> None:
    if not session.can_write:
        raise SmartPageError(
            403, "This launch cannot write to the record",
            "The EHR granted the app read access only (or did not say who you are), so nothing can be recorded.",
        )
    if not _same(fields.get("csrf_token", ""), session.csrf_token):
        raise SmartPageError(403, "The form was not sent from this app", "Reload the app and enter the study again.")
    form_id = fields.get("form_id", "")
    if not form_id or not await state.db.smart.consume_form_id(session, form_id):
        raise SmartPageError(
            409, "This form was already sent",
            "A study is saved once per form: reload the app to see what the record now holds.",
        )


def _worded(key: str, token: str | None) -> str:
    if token is None:
        return "not evaluable" if key == "mrecist" else "unknown"
    words = {"tace_resistance": STATUS_WORDS, "recommendation": DECISION_TITLES, "sorafenib_eligibility": ELIGIBILITY_WORDS}
    return words.get(key, {}).get(token, token)


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Before and after the save, for what a tumour board acts on, in words."""
    old, new = worklist_fields(dict(before)), worklist_fields(dict(after))
    return [
        {"label": label, "before": _worded(key, old.get(key)), "after": _worded(key, new.get(key)),
         "changed": old.get(key) != new.get(key)}
        for key, label in CHANGE_FIELDS
    ]


async def _store(state: AppState, session: SmartSession, live: LiveRecord) -> str:
    assessments = state.db.assessments
    return await assessments.save_assessment(assessments.new_row(
        patient_ref=f"Patient/{session.patient_id}",
        service_id=SERVICE_ID,
        rules_version=live.assessment.versions["rules"],
        assessment=live.rendered,
        page=page_course(live.assessment, state.knowledge),
    ))


@router.post(
    "/smart/app/{window}/measurements",
    response_class=HTMLResponse,
    summary="The SMART app: record one imaging study's measurements (urlencoded form; HTML)",
    responses={
        **_SESSION,
        **_READ,
        400: {"description": "The form's data is malformed", **_PAGE},
        403: {"description": "Another patient's card, no CSRF token, a read-only launch, or the EHR refused the write",
              **_PAGE},
        409: {"description": "The form was already sent, or the record changed (since the form was shown, or during "
              "the write): nothing written", **_PAGE},
        413: {"description": "The form is larger than 64 KiB", **_PAGE},
        415: {"description": "Not an urlencoded form", **_PAGE},
        422: {"description": "Values refused (each field's reason on the form shown again), or the FHIR server "
              "rejected the transaction: nothing written", **_PAGE},
        502: {"description": "The patient's record could not be read; or the FHIR server's answer to the save was lost "
              "or unusable: whether anything was written is not known (the page says so, and what the server named)",
              **_PAGE},
        503: {"description": "The FHIR server could not be reached: nothing written", **_PAGE},
    },
)
async def record_measurements(
    request: Request, state: StateDep, session: SmartSessionDep, window: WindowPath
) -> HTMLResponse:
    here = window_path(window)
    try:
        fields = await _form_fields(request)
        await _check_form(state, session, fields)
        await _check_hint(state, session)
        before = await _read_live(state, session)
    except SmartPageError as error:
        return _message(state, error, back=here)
    if not _same(fields.get("record_version", ""), record_fingerprint(before.record)):
        changed = {capture.FORM_ERROR: "The patient's record changed since the form was shown (another user or system "
                   "wrote to it). Nothing was saved: check your values against the record below and save again."}
        return _app_page(state, session, before, here, form_id=_new_form_id(), errors=changed, values=fields, status=409)
    parsed = capture.read_form(fields, before.context)
    if isinstance(parsed, capture.CaptureErrors):
        return _app_page(
            state, session, before, here, form_id=_new_form_id(),
            errors=parsed.errors, values=parsed.values, status=422,
        )
    try:
        bundle = _build(state, session, parsed, before)
        written = await _write_once(state, session, fields["record_version"], bundle)
    except SmartPageError as error:
        return _message(state, error, back=here)
    return await _saved_page(state, session, before, bundle, written, here)


def _build(state: AppState, session: SmartSession, parsed: capture.CaptureInput, before: LiveRecord) -> dict:
    """The transaction Bundle; a resource fhir.resources refuses is a page, never sent."""
    assert session.fhir_user is not None  # can_write
    try:
        return capture.build_transaction(
            parsed, before.context, author=session.fhir_user, app_name=APP_NAME, app_version=_app_version(state),
            now=datetime.now(UTC),
        )
    except capture.CaptureBuildError as exc:
        log.warning("a SMART app save could not be built: %s", type(exc).__name__)
        raise SmartPageError(
            422, "The study could not be turned into valid FHIR — nothing was saved",
            "The app could not build resources the FHIR standard accepts from this form and this record, so nothing "
            "was sent. Report it to the service's operators; record the study in the EHR meanwhile.") from None


async def _write_once(state: AppState, session: SmartSession, record_version: str, bundle: dict) -> tuple[str, ...]:
    """Write the transaction once per record state and session: two windows (or replicas) saving the same record as
    they both read it cannot both write (the second would duplicate the study). A refusal that wrote nothing frees
    the state again, so the clinician may retry; an unknown outcome keeps it taken until the record is read again."""
    record_key = f"record:{record_version}"
    if not await state.db.smart.consume_form_id(session, record_key):
        raise SmartPageError(
            409, "This record is already being saved from another window",
            "A save of the record as it was shown is already under way or done. Reload the app: if the study is not "
            "in the record, open the app again from the patient's chart.")
    assert state.fhir.client is not None, "the HTTP client is opened by the app's lifespan"
    try:
        result = await write_transaction(
            state.fhir.client, session.iss, session.access_token.get_secret_value(), bundle,
            timeout=state.settings.fhir_timeout_seconds,
        )
    except WriteRefused as refused:
        log.info("a SMART app write was refused (%s, HTTP %s)", refused.kind, refused.status)
        if refused.kind == "expired":
            await state.db.smart.end_session(session)
        elif refused.kind != "unknown" and not refused.written:
            await state.db.smart.release_form_id(session, record_key)
        raise SmartPageError(WRITE_STATUS[refused.kind], WRITE_TITLES[refused.kind], _written(refused)) from None
    return result.written


def _written(refused: WriteRefused) -> str:
    if refused.written:
        return f"{refused.message} The FHIR server named these as written: {', '.join(refused.written)}."
    return refused.message


def _app_version(state: AppState) -> str:
    return f"{package_version()} ({state.build})"


async def _saved_page(
    state: AppState, session: SmartSession, before: LiveRecord, bundle: dict, written: tuple[str, ...], here: str
) -> HTMLResponse:
    try:
        after = await _read_live(state, session)
    except SmartPageError as error:
        error.title = "Saved; the record could not be read again"
        error.message = f"The study was written ({', '.join(written)}), but re-reading the record failed: {error.message}"
        return _message(state, error, back=here)
    stored_id = await _store(state, session, after)
    html = TEMPLATES.get_template("smart_result.html").render(
        patient_id=session.patient_id,
        as_of=after.rendered["as_of"],
        changes=_changes(before.rendered, after.rendered),
        writes=capture.describe_writes(bundle),
        written=written,
        author=session.fhir_user,
        stored_url=f"/assessments/{stored_id}",
        here=here,
    )
    return HTMLResponse(html, headers=smart_page_headers(state.settings))
