"""Keys pinned for a listed ``jku`` (``jku_keys``): a token naming that jku with a pinned ``kid`` is verified
without fetching the URL; the jku list still guards every fetch (issue 19)."""

from __future__ import annotations

import asyncio

import pytest

from service.auth.jwt_verifier import AuthenticationError, InMemoryJtiStore, JwtVerifier
from service.auth.keys import JwksCache
from service.auth.trusted_clients import TrustedClientKeys, parse_trusted_clients
from service.settings import SettingsError
from tests.unit.service.test_jwt_auth import (
    ENDPOINT,
    ISS_EC,
    NOW,
    FakeFetcher,
    MonotonicClock,
    keys,
    make_token,
    public_jwk,
)

JKU = "https://ehr.example.org/.well-known/jwks.json"
OTHER_JKU = "https://ehr.example.org/keys/other.json"


def client(**extra):
    document = {"iss": ISS_EC, "jku": [JKU, OTHER_JKU],
                "jku_keys": {JKU: {"keys": [public_jwk(keys().ec384, "pinned-1", alg="ES384")]}}}
    document.update(extra)
    return document


def verify(document, token, fetcher=None):
    fetcher = fetcher or FakeFetcher()
    verifier = JwtVerifier(parse_trusted_clients([document]), TrustedClientKeys(JwksCache(fetcher, clock=MonotonicClock())),
                           InMemoryJtiStore(clock=lambda: NOW), clock=lambda: NOW)
    try:
        return asyncio.run(verifier.verify(token, ENDPOINT)), fetcher
    except AuthenticationError as exc:
        return exc.category, fetcher


def test_a_pinned_kid_for_a_listed_jku_is_verified_without_a_fetch():
    identity, fetcher = verify(client(), make_token(kid="pinned-1", jku=JKU))
    assert identity.iss == ISS_EC and fetcher.calls == []


def test_an_unpinned_kid_is_fetched_from_the_jku_as_before():
    fetcher = FakeFetcher({JKU: {"keys": [public_jwk(keys().ec384_alternate, "rotated-2")]}})
    identity, fetcher = verify(client(), make_token(keys().ec384_alternate, kid="rotated-2", jku=JKU), fetcher)
    assert identity.iss == ISS_EC and fetcher.calls == [JKU]


def test_an_unreachable_jku_without_the_kid_pinned_is_refused():
    category, fetcher = verify(client(), make_token(kid="unknown", jku=JKU))
    assert category == "unknown_key" and fetcher.calls == [JKU]


def test_a_pinned_key_answers_only_for_its_own_jku():
    # the kid is pinned for JKU, the token names OTHER_JKU: fetched from there, never the pin
    category, fetcher = verify(client(), make_token(kid="pinned-1", jku=OTHER_JKU))
    assert category == "unknown_key" and fetcher.calls == [OTHER_JKU]


def test_a_token_signed_by_another_key_under_a_pinned_kid_is_refused():
    category, _ = verify(client(), make_token(keys().ec384_alternate, kid="pinned-1", jku=JKU))
    assert category == "signature"


def test_a_jku_not_listed_is_refused_even_with_a_pinned_kid_and_nothing_is_fetched():
    category, fetcher = verify(client(), make_token(kid="pinned-1", jku="https://evil.example/jwks.json"))
    assert category == "jku" and fetcher.calls == []


def test_the_pinned_key_is_not_used_without_a_jku_header():
    # without jku the client's inline jwks / jwks_url apply; this client has neither
    category, fetcher = verify(client(), make_token(kid="pinned-1"))
    assert category == "unknown_key" and fetcher.calls == []


@pytest.mark.parametrize(("change", "message"), [
    ({"jku_keys": {"https://ehr.example.org/unlisted.json": {"keys": [public_jwk(keys().ec384, "k", alg="ES384")]}}},
     "not one of this client's jku URLs"),
    ({"jku_keys": {JKU: {"keys": []}}}, "empty"),
    ({"jku_keys": {JKU: {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}}}, "jku_keys"),
    ({"jku_keys": {JKU: {"keys": [{**public_jwk(keys().ec384, "k", alg="ES384"), "d": "private"}]}}}, "jku_keys"),
])
def test_bad_pins_stop_start_up_saying_what_to_fix(change, message):
    with pytest.raises(SettingsError, match=message):
        parse_trusted_clients([client(**change)])


def test_the_cds_hooks_sandbox_key_can_be_pinned_for_its_jku():
    import json
    from pathlib import Path

    jwks_file = Path(__file__).resolve().parents[4] / "shared" / "vendor" / "cds-hooks-sandbox" / "build" / ".well-known" / "jwks.json"
    if not jwks_file.is_file():
        pytest.skip(f"the CDS Hooks sandbox is not beside the repository ({jwks_file})")
    sandbox_jku = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    clients = parse_trusted_clients([{"iss": "https://sandbox.cds-hooks.org", "jku": [sandbox_jku],
                                      "jku_keys": {sandbox_jku: json.loads(jwks_file.read_text())}}])
    key = clients.get("https://sandbox.cds-hooks.org").pinned_key(sandbox_jku, "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f")
    assert key is not None and key.algorithms == {"ES384"}

