"""FHIR access errors, translated once from transport or server failures.

    FhirError
    ├── FhirServerNotAllowedError   fhirServer not on HCC_FHIR_ALLOWLIST (no connection made)
    ├── FhirAuthError               the server answered 401/403 to our token
    ├── FhirNotFoundError           the patient (or another read) does not exist
    ├── FhirUnavailableError        connection failure, timeout, deadline, 5xx after retries
    └── FhirResponseError           an answer we cannot use (bad JSON, wrong type, paging loop, other origin)
"""

from __future__ import annotations


class FhirError(Exception):
    """Base class: getting the patient's data failed."""


class FhirServerNotAllowedError(FhirError):
    pass


class FhirAuthError(FhirError):
    pass


class FhirNotFoundError(FhirError):
    pass


class FhirUnavailableError(FhirError):
    pass


class FhirResponseError(FhirError):
    pass
