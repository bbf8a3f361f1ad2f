"""FHIR access errors, translated once (in ``service.fhir``) from transport or server failures.

    FhirError
    ├── FhirServerNotAllowedError   fhirServer not on HCC_FHIR_ALLOWLIST, or an ambiguous URL (no connection made)
    ├── FhirAuthError               the server answered 401/403 to our token, or the token cannot be sent
    ├── FhirNotFoundError           a read found nothing (404/410): for the Patient, an unknown patient
    ├── FhirUnavailableError        connection failure, timeout, deadline, 429/5xx after the retries
    └── FhirResponseError           an answer we cannot use: bad JSON, wrong type, a redirect, a search the
                                    server rejects or does not serve, a paging loop, a next link elsewhere

Messages are for the API caller: they never carry the access token (server text
quoted in them is redacted by the client) and never a full URL with its query.
"""

from __future__ import annotations


class FhirError(Exception):
    """Base class: getting the patient's data failed.

    ``outcome`` is the request's label in the metrics (``service.fhir.outcomes``): each class has its
    own, and the client gives a more precise one (``timeout``) where it translates the transport error.
    """

    outcome = "error"

    def __init__(self, *args: object, outcome: str | None = None) -> None:
        super().__init__(*args)
        if outcome is not None:
            self.outcome = outcome


class FhirServerNotAllowedError(FhirError):
    """The FHIR server URL is refused before any connection."""


class FhirAuthError(FhirError):
    """The FHIR server refused our credentials (or they could not be sent)."""


class FhirNotFoundError(FhirError):
    """A read of one resource found nothing."""


class FhirUnavailableError(FhirError):
    """The FHIR server is down, too slow, or overloaded."""

    outcome = "unreachable"


class FhirResponseError(FhirError):
    """The FHIR server answered, but not with something we can use."""

    outcome = "bad_response"
