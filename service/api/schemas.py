"""Response models shared by the routes (error bodies, health)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ErrorMessage(BaseModel):
    """Every 4xx/5xx answer other than a FHIR OperationOutcome."""

    detail: str


class OperationOutcomeIssue(BaseModel):
    severity: str
    code: str
    diagnostics: str | None = None


class OperationOutcome(BaseModel):
    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]


class Health(BaseModel):
    status: Literal["ok"]
    mode: Literal["demo", "production"]
    version: str
    build: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The request cannot be used (the message says why)"},
    422: {"model": ErrorMessage, "description": "The request body or a parameter is malformed"},
}
