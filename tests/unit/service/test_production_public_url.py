"""Production start-up names the real reason an HCC_PUBLIC_BASE_URL is refused (issue 19): loopback is
loopback even over https; plain http is about https."""

from __future__ import annotations

import pytest
import yaml

from service.settings import Settings, SettingsError
from service.startup import check_startable
from tests.unit.service.test_jwt_auth import keys, public_jwk


@pytest.fixture()
def production(tmp_path, monkeypatch):
    for name in ("HCC_MODE", "HCC_PUBLIC_BASE_URL", "HCC_TRUSTED_CLIENTS", "HCC_FHIR_ALLOWLIST"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "trusted.yaml"
    path.write_text(yaml.safe_dump({"clients": [
        {"iss": "https://ehr.example.org", "jwks": {"keys": [public_jwk(keys().ec384, "ec-1", alg="ES384")]}}]}))

    def start(public_base_url: str) -> str | None:
        settings = Settings(mode="production", trusted_clients=path, fhir_allowlist="https://ehr.example.org/fhir",
                            public_base_url=public_base_url)
        try:
            check_startable(settings)
        except SettingsError as exc:
            return str(exc)
        return None

    return start


@pytest.mark.parametrize("url", ["https://127.0.0.1:8443", "https://localhost", "https://[::1]:9000", "https://127.9.9.9",
                                 "http://127.0.0.1:8080", "https://LOCALHOST:443/cds"])
def test_a_loopback_public_base_url_is_refused_naming_loopback(production, url):
    message = production(url)
    assert message is not None and "HCC_PUBLIC_BASE_URL" in message
    assert "loopback" in message
    assert "must use https" not in message


@pytest.mark.parametrize("url", ["http://cds.example.org", "ftp://cds.example.org", "cds.example.org"])
def test_a_public_base_url_that_is_not_https_is_refused_naming_https(production, url):
    message = production(url)
    assert message is not None and "https" in message and "loopback" not in message


def test_an_https_host_name_starts(production):
    assert production("https://cds.example.org") is None
    assert production("https://hcc-cds.test:8443") is None
