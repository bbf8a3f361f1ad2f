"""The FHIR R4 ``id`` datatype, written once: every pattern for an id or a ``Type/id`` reference is built from it.

An id is 1 to 64 characters from ``A-Z a-z 0-9 - .`` (https://hl7.org/fhir/R4/datatypes.html#id).
:data:`FHIR_ID_PATTERN` is the bare pattern (no anchors) to embed; its spelling is what the OpenAPI
document shows for the routes that take an id.
"""

from __future__ import annotations

import re

FHIR_ID_PATTERN = r"[A-Za-z0-9\-\.]{1,64}"
FHIR_ID = re.compile(rf"^{FHIR_ID_PATTERN}$")
