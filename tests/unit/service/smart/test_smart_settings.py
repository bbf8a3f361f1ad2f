"""The SMART settings at start-up: production needs session keys with a client id; keys and iss entries
must be usable; demo mode warns that sessions end with the process."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from service.settings import Settings, SettingsError
from service.startup import check_smart, check_startable


def test_production_with_a_client_id_needs_session_keys():
    settings = Settings(mode="production", smart_client_id="hcc-cds")
    with pytest.raises(SettingsError, match="HCC_SMART_SESSION_KEYS"):
        check_smart(settings)
    keyed = Settings(mode="production", smart_client_id="hcc-cds", smart_session_keys=Fernet.generate_key().decode())
    assert check_smart(keyed) == []
    assert check_smart(Settings(mode="production")) == []  # no SMART app: nothing needed


def test_demo_without_keys_warns():
    warnings = check_smart(Settings(mode="demo", smart_client_id="hcc-cds"))
    assert len(warnings) == 1 and "random key" in warnings[0]


def test_unusable_keys_and_iss_entries_are_refused():
    with pytest.raises(SettingsError, match="key 1 is not a Fernet key"):
        check_smart(Settings(smart_session_keys="short"))
    with pytest.raises(SettingsError, match="HCC_SMART_ISS_ALLOWLIST"):
        check_startable(Settings(smart_iss_allowlist="https://ehr.example.org@evil.com/fhir"))


def test_iss_list_defaults_to_the_fhir_allowlist():
    assert Settings(fhir_allowlist="https://a.example.org/fhir/").smart_iss_list == ("https://a.example.org/fhir",)
    own = Settings(fhir_allowlist="https://a.example.org/fhir", smart_iss_allowlist=" https://b.example.org/r4 ,")
    assert own.smart_iss_list == ("https://b.example.org/r4",)
