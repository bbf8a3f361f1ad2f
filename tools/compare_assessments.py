"""Every embedded patient's assessment JSON (demo and cohort), for comparing two trees' answers.

    PYTHONPATH=. python tools/compare_assessments.py write before.json     # on the old tree
    PYTHONPATH=. python tools/compare_assessments.py compare before.json   # on the new tree: exit 1 on a difference

Each patient's record is posted as a Bundle to ``POST /api/v1/assessments`` (demo mode, in-process) with
a fixed ``as_of`` and demo day; the cards of ``patient-view`` with full prefetch are compared as well.
Volatile fields (ids of stored assessments, timestamps, links, card uuids) are left out.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path

DAY = date(2026, 11, 28)
VOLATILE = frozenset({"assessment_id", "id", "created_at", "generated_at", "timestamp", "links", "uuid", "url",
                      "expires_at", "hookInstance", "build"})  # build: the commit the answer came from


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def answers() -> dict[str, dict]:
    from fastapi.testclient import TestClient

    from service.cohort.load import cohort_bundles
    from service.demo import demo_bundles
    from service.main import create_app
    from service.settings import Settings
    from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view

    settings = Settings(mode="demo", fhir_base_url=None, fhir_allowlist="", trusted_clients=None,
                        clinical_overrides=None, database_url=f"sqlite:///{tempfile.mkdtemp()}/compare.sqlite3")
    out: dict[str, dict] = {}
    with TestClient(create_app(settings, demo_day=DAY)) as client:
        for bundle in [*demo_bundles(DAY), *cohort_bundles(DAY)]:
            resources = [e["resource"] for e in bundle["entry"]]
            patient = next(r for r in resources if r["resourceType"] == "Patient")
            rest = client.post("/api/v1/assessments", params={"as_of": DAY.isoformat()}, json=bundle)
            others = [r for r in resources if r["resourceType"] != "Patient"]
            hook = client.post(f"/cds-services/{SERVICE_ID}",
                               json=patient_view(patient["id"], prefetch=full_prefetch(others, patient)))
            out[patient["id"]] = {"rest_status": rest.status_code, "assessment": _strip(rest.json()),
                                  "hook_status": hook.status_code, "cards": _strip(hook.json())}
    return out


def main(argv: list[str]) -> int:
    command, path = argv[0], Path(argv[1])
    now = answers()
    if command == "write":
        path.write_text(json.dumps(now, indent=1, sort_keys=True))
        print(f"{len(now)} patients written to {path}")
        return 0
    before = json.loads(path.read_text())
    now = json.loads(json.dumps(now, sort_keys=True))
    differ = sorted(p for p in before.keys() | now.keys() if before.get(p) != now.get(p))
    print(f"{len(now)} patients; {len(differ)} differ" + (f": {differ}" if differ else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
