"""CDS Hooks 2.0 wire models (https://cds-hooks.hl7.org/2.0/).

camelCase on the wire through aliases; snake_case in Python. Optional fields
with no value are omitted from responses (the spec forbids null and empty
values except ``cards: []``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from service.fhir.ids import FHIR_ID_PATTERN

SUMMARY_MAX_CHARS = 139  # "<140 characters"


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class FhirAuthorization(WireModel):
    """The OAuth 2.0 bearer token the CDS client grants for ``fhirServer``."""

    access_token: str = Field(min_length=1, alias="access_token")
    token_type: Literal["Bearer"] = Field(alias="token_type")
    expires_in: int = Field(alias="expires_in")
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"FhirAuthorization(subject={self.subject!r}, scope={self.scope!r})"

    __str__ = __repr__


class HookContext(WireModel):
    """Context fields common to patient-view, order-select and order-sign."""

    user_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1, pattern=rf"^{FHIR_ID_PATTERN}$")
    encounter_id: str | None = None
    selections: list[str] | None = None
    draft_orders: dict[str, Any] | None = None


class HookRequest(WireModel):
    """``POST /cds-services/{id}`` body."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    hook: str = Field(min_length=1)
    hook_instance: str = Field(min_length=1, max_length=100)
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> HookRequest:
        if self.fhir_authorization is not None and not self.fhir_server:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self


class Coding(WireModel):
    system: str
    code: str
    display: str | None = None


class Source(WireModel):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Link(WireModel):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    app_context: str | None = None


class Action(WireModel):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resource_id: list[str] | str | None = None


class Suggestion(WireModel):
    label: str = Field(min_length=1)
    uuid: str | None = None
    is_recommended: bool | None = None
    actions: list[Action] | None = Field(default=None, min_length=1)


class Card(WireModel):
    """A CDS Hooks card; its validators enforce the spec's rules."""

    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX_CHARS)
    detail: str | None = Field(default=None, min_length=1)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[Coding] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)
    # CDS Hooks 2.0 extensions on a Card: hcc-cds puts the versions of its rules and data here
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> Card:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if self.override_reasons and any(not r.display for r in self.override_reasons):
            raise ValueError("every override reason needs a display")
        return self

    @field_validator("summary")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("summary must be one line")
        return value


class CardsResponse(WireModel):
    cards: list[Card]
    system_actions: list[Action] | None = None


class ServiceDescription(WireModel):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usage_requirements: str | None = None


class DiscoveryResponse(WireModel):
    services: list[ServiceDescription]
