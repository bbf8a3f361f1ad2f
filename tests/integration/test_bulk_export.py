"""export_from_fhir against the real sekmet, with SMART Backend Services, behind a fault-injecting proxy."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.cohort.load import cohort_bundles
from service.demo import as_transaction, demo_bundles
from service.screening.backend_auth import Alg, SmartBackendAuth
from service.screening.bulk_client import Level, RetryPolicy
from service.screening.sources import ExportedFiles, export_from_fhir
from service.settings import Settings
from tests.integration.fault_proxy import FaultProxy
from tests.integration.fhir_server import free_port, start_fhir_server
from tests.unit.service.screening.test_backend_auth import pem

STATIC_TOKEN = "loader-static-token"
TOKEN_LIFETIME = 3  # seconds: tokens expire during the exports, so renewals are exercised
GROUP = "hcc-cohort"


@pytest.fixture(scope="module")
def keys():
    return {"RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048), "ES384": ec.generate_private_key(ec.SECP384R1())}


@pytest.fixture(scope="module")
def loaded():
    """Every demo and cohort resource (as loaded), and the cohort patients' ids (the Group's members)."""
    bundles = demo_bundles(Settings().today())
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    cohort = [e["resource"]["id"] for b in cohort_bundles(Settings().today()) for e in b["entry"]
              if e["resource"]["resourceType"] == "Patient"]
    return bundles, resources, cohort


@pytest.fixture(scope="module")
def sekmet(tmp_path_factory, keys, loaded):
    port = free_port()
    proxy = FaultProxy(f"http://127.0.0.1:{port}").start()
    jwks = {
        "RS384": {**RSAAlgorithm.to_jwk(keys["RS384"].public_key(), as_dict=True), "alg": "RS384", "kid": "rs"},
        "ES384": {**ECAlgorithm.to_jwk(keys["ES384"].public_key(), as_dict=True), "alg": "ES384", "kid": "es"},
    }
    clients = [{"client_id": f"hcc-{alg.lower()}", "jwks": {"keys": [jwk]}, "scopes": "system/*.read"} for alg, jwk in jwks.items()]
    server = start_fhir_server(
        tmp_path_factory.mktemp("bulk"), bearer_tokens=[STATIC_TOKEN], smart_clients=clients,
        token_lifetime=TOKEN_LIFETIME, port=port, base_url=f"{proxy.url}/fhir",
    )
    bundles, _, cohort = loaded
    group = {"resourceType": "Group", "id": GROUP, "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in cohort]}
    transaction = as_transaction(bundles)
    transaction["entry"].append({"resource": group, "request": {"method": "PUT", "url": f"Group/{GROUP}"}})
    server.load(transaction, token=STATIC_TOKEN)
    yield server, proxy
    server.stop()
    proxy.stop()


@pytest.fixture
def proxy(sekmet):
    _, proxy = sekmet
    proxy.faults, proxy.log = {}, []
    return proxy


def export(sekmet, keys, dest: Path, level: Level, alg: Alg = "RS384", since: str | None = None) -> tuple[ExportedFiles, SmartBackendAuth, list[str]]:
    server, _ = sekmet
    auth = SmartBackendAuth(server.base_url, f"hcc-{alg.lower()}", pem(keys[alg]), alg=alg, key_id=alg[:2].lower())
    progress: list[str] = []
    result = asyncio.run(
        export_from_fhir(
            server.base_url, dest, level=level, group_id=GROUP if level == "group" else None, since=since, auth=auth,
            on_progress=progress.append, policy=RetryPolicy(max_wait_seconds=5),
        )
    )
    return result, auth, progress


def served(proxy: FaultProxy, method: str, fragment: str) -> list[tuple[str, str, int]]:
    """The proxy's answers to matching requests, less 401s: a 3-second token can expire in flight on a slow machine,
    and the auth then renews it and sends the request once more (test_token_expiring_mid_export_is_renewed)."""
    return [entry for entry in proxy.requests(method, fragment) if entry[2] != 401]


def exported(result: ExportedFiles) -> Counter:
    """(type, id) of every exported line; a Counter so a duplicate would show."""
    ids: Counter = Counter()
    for rtype, path in result.files:
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == rtype
            ids[(rtype, resource["id"])] += 1
    return ids


def expected(resources: list[dict], patients: set[str] | None) -> Counter:
    """What an export of ``patients`` (None: all) holds: their resources, and every BodyStructure (lesion completion)."""
    ids: Counter = Counter()
    for r in resources:
        ref = (r.get("subject") or r.get("patient") or {}).get("reference", "")
        pid = r["id"] if r["resourceType"] == "Patient" else ref.removeprefix("Patient/")
        if patients is None or pid in patients or r["resourceType"] == "BodyStructure":
            ids[(r["resourceType"], r["id"])] += 1
    return ids


def test_group_export_with_lesions_completed(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, cohort = loaded
    result, _, _ = export(sekmet, keys, tmp_path, "group")
    assert exported(result) == expected(resources, set(cohort))
    assert sum(1 for t, _ in exported(result) if t == "Patient") == 34
    assert result.notes == ("BodyStructure absent from the Group export: 117 taken from a system-level export "
                            "(only in-scope patients' are kept)",)
    assert result.errors == () and result.transaction_time and result.transaction_time.endswith("Z")
    assert len(served(proxy, "GET", f"/Group/{GROUP}/$export")) == 1 and len(served(proxy, "GET", "/fhir/$export")) == 1


def test_patient_export_with_es384(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, _ = loaded
    result, _, _ = export(sekmet, keys, tmp_path, "patient", alg="ES384")
    assert exported(result) == expected(resources, None)
    assert sorted({t for t, _ in result.files}) == ["BodyStructure", "Condition", "MedicationRequest", "Observation", "Patient", "Procedure"]


def test_system_export(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, _ = loaded
    result, _, _ = export(sekmet, keys, tmp_path, "system")
    assert exported(result) == expected(resources, None) and result.notes == ()


def test_token_expiring_mid_export_is_renewed(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, cohort = loaded
    proxy.faults = {"status": [f"202:{TOKEN_LIFETIME + 1}"]}  # the export outlives the first token
    result, auth, _ = export(sekmet, keys, tmp_path, "group")
    assert exported(result) == expected(resources, set(cohort))
    assert auth.tokens_fetched >= 2 and len(proxy.requests("POST", "/auth/token")) == auth.tokens_fetched
    assert not [entry for entry in proxy.log if entry[0] == "GET" and entry[2] == 403]


def test_429_and_503_while_polling(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, cohort = loaded
    proxy.faults = {"status": ["429:1", "503:date", "503:1"]}
    result, _, progress = export(sekmet, keys, tmp_path, "group")
    assert exported(result) == expected(resources, set(cohort))
    assert [status for _, _, status in served(proxy, "GET", "/bulk-status/")][:3] == [429, 503, 503]
    assert "the server answered 429; waiting" in progress


def test_expired_file_url_kicks_off_again(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, cohort = loaded
    proxy.faults = {"file:Condition.ndjson": ["404"]}
    result, _, progress = export(sekmet, keys, tmp_path, "group")
    assert exported(result) == expected(resources, set(cohort))
    assert len(served(proxy, "GET", f"/Group/{GROUP}/$export")) == 2
    assert any("is gone (HTTP 404): starting the export again" in p for p in progress)


def test_truncated_file_is_downloaded_again(sekmet, keys, loaded, proxy, tmp_path):
    _, resources, cohort = loaded
    proxy.faults = {"file:Observation.ndjson": ["truncate:0.6"]}
    result, _, _ = export(sekmet, keys, tmp_path, "group")
    assert exported(result) == expected(resources, set(cohort))
    assert len(served(proxy, "GET", "/Observation.ndjson")) == 2
    assert not list(tmp_path.glob("*.part"))


def test_since_exports_only_what_changed(sekmet, keys, loaded, proxy, tmp_path):
    server, _ = sekmet
    _, resources, _ = loaded
    since = datetime.now(UTC).isoformat()  # +00:00, microseconds: sent as meta.lastUpdated is written
    patient = next(r for r in resources if r["id"] == "cohort-07")
    server.load(as_transaction([{"entry": [{"resource": patient}]}]), token=STATIC_TOKEN)
    result, _, _ = export(sekmet, keys, tmp_path, "group", since=since)
    assert exported(result) == Counter({("Patient", "cohort-07"): 1})
    assert result.notes[0].startswith("BodyStructure absent from the Group export: 0 taken")
