"""What every answer of the service must be: a documented status, content type and body.

``assert_documented(response, method, template)`` checks one real response against
``openapi.yaml`` (status code listed for the operation, content type listed for that status, body
valid against its schema); a 200 assessment is also checked against ``spec/assessment.schema.json``
(the OpenAPI gives the assessment no schema). The adversarial tests call it on every answer they
provoke, so an undocumented status (a 500, a 401 or 413 the OpenAPI omits) fails where it appears.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
ASSESSMENT_SCHEMA = json.loads((ROOT / "spec" / "assessment.schema.json").read_text())
ASSESSMENT_ROUTES = {("GET", "/api/v1/patients/{patient_id}/assessment"), ("POST", "/api/v1/assessments")}


@cache
def openapi() -> dict:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def documented_statuses(method: str, template: str) -> set[int]:
    """The statuses openapi.yaml lists for the operation; {405} for a method the path does not have."""
    operation = openapi()["paths"][template].get(method.lower())
    if operation is None:
        return {405}
    return {int(code) for code in operation["responses"] if code.isdigit()}


def _media_type(response) -> str:
    return (response.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def contract_problems(response, method: str, template: str) -> list[str]:
    """Why ``response`` (to ``method template``) is not what openapi.yaml documents; empty when it is."""
    operation = openapi()["paths"][template].get(method.lower())
    status = response.status_code
    if operation is None:  # a method the path does not have
        return [] if status == 405 else [f"{method} {template}: answered {status}, not 405 Method Not Allowed"]
    documented = operation["responses"].get(str(status))
    if documented is None:
        return [f"{method} {template}: status {status} is not documented (documented: "
                f"{sorted(documented_statuses(method, template))}); body: {response.text[:200]!r}"]
    content = documented.get("content")
    if not content:
        return []
    media = _media_type(response)
    if media not in content:
        return [f"{method} {template}: {status} answered {media!r}, documented {sorted(content)}"]
    problems: list[str] = []
    schema = content[media].get("schema")
    if media.endswith("json"):
        try:
            body: Any = response.json()
        except ValueError:
            return [f"{method} {template}: {status} {media} body is not JSON: {response.text[:200]!r}"]
        if schema:
            rooted = {**schema, "components": openapi()["components"]}
            for error in jsonschema.Draft202012Validator(rooted).iter_errors(body):
                problems.append(f"{method} {template}: {status} body violates its schema: {error.message[:200]}")
        if status == 200 and media == "application/json" and (method, template) in ASSESSMENT_ROUTES:
            for error in jsonschema.Draft202012Validator(ASSESSMENT_SCHEMA).iter_errors(body):
                problems.append(f"{method} {template}: assessment violates assessment.schema.json: {error.message[:200]}")
    return problems


def assert_documented(response, method: str, template: str) -> None:
    problems = contract_problems(response, method, template)
    assert not problems, "\n".join(problems)


def known_answer_problems(response, method: str, template: str) -> list[str]:
    """:func:`contract_problems`, except for a known, not yet fixed gap (known_defects.py), which is reproduced
    and tracked by its own strict-xfail test."""
    from tests.adversarial.known_defects import known_gap

    if known_gap(method, template, response.status_code):
        return []
    return contract_problems(response, method, template)
