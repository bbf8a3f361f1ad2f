"""CDS client JWT verification: the acceptance matrix, keys and JWKS caching, the jti store, the trusted-clients file.

Keys are generated here with cryptography; JWK Sets are served by a fake fetcher.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from service.auth import (
    ALLOWED_ALGORITHMS,
    AuthenticationError,
    CdsClientAuth,
    InMemoryJtiStore,
    JtiStore,
    JwksCache,
    JwtVerifier,
    TrustedClientKeys,
    load_trusted_clients,
    parse_trusted_clients,
    production_checks,
)
from service.settings import Settings, SettingsError

EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "data" / "trusted_clients.example.yaml"

PUBLIC_BASE = "https://cds.example.org"
ENDPOINT = f"{PUBLIC_BASE}/cds-services/hcc-tace-resistance"
ISS_EC = "https://ehr.example.org"
ISS_RSA = "https://rsa.example.org"
ISS_TENANT = "https://tenants.example.org"
ISS_ED = "https://ed.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
JKU_URL = "https://ehr.example.org/keys/alternate.json"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- keys and tokens ----------------------------------------------------------------------------------------------


def public_jwk(private_key: Any, kid: str, **extra: Any) -> dict:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, **extra}


def public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Keys:
    ec384: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    ec384_rotated: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    ec384_alternate: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    rsa: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ed25519: Any = field(default_factory=ed25519.Ed25519PrivateKey.generate)
    attacker: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))


_KEYS: Keys | None = None


def keys() -> Keys:
    """One set of generated keys for the test session (RSA generation is slow)."""
    global _KEYS
    if _KEYS is None:
        _KEYS = Keys()
    return _KEYS


def claims(**overrides: Any) -> dict:
    """Valid claims for ISS_EC at NOW; ``name=None`` removes a claim."""
    base = {
        "iss": ISS_EC,
        "sub": "ehr-client-1",
        "aud": ENDPOINT,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_token(
    private_key: Any = None,
    *,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    typ: str | None = "JWT",
    payload: dict | None = None,
    **headers: Any,
) -> str:
    header = {"typ": typ, "kid": kid, **headers}
    header = {k: v for k, v in header.items() if v is not None}
    private_key = private_key if private_key is not None else keys().ec384
    token = jwt.encode(payload if payload is not None else claims(), private_key, algorithm=alg, headers=header)
    if typ is None:  # PyJWT adds typ JWT by default: rebuild the header without it
        token = _with_header(token, {**header, "alg": alg}, private_key, alg)
    return token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_header(token: str, header: dict, private_key: Any, alg: str) -> str:
    payload_segment = token.split(".")[1]
    signing_input = f"{_b64(json.dumps(header).encode())}.{payload_segment}".encode()
    algorithm = jwt.get_algorithm_by_name(alg)
    return f"{signing_input.decode()}.{_b64(algorithm.sign(signing_input, private_key))}"


def hand_made_token(header: dict, payload: dict, sign: Any) -> str:
    """A token assembled by hand (for algorithms PyJWT refuses to produce)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}".encode()
    return f"{signing_input.decode()}.{_b64(sign(signing_input))}"


# --- fakes ----------------------------------------------------------------------------------------------------------


class FakeFetcher:
    """Serves JWK Sets by URL; records every fetch."""

    def __init__(self, documents: dict[str, Any] | None = None) -> None:
        self.documents: dict[str, Any] = dict(documents or {})
        self.calls: list[str] = []
        self.delay = 0.0

    async def __call__(self, url: str) -> Any:
        self.calls.append(url)
        if self.delay:
            await asyncio.sleep(self.delay)
        document = self.documents.get(url)
        if document is None:
            raise RuntimeError(f"no JWKS at {url}")
        return document


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trusted_clients_document() -> list[dict]:
    k = keys()
    return [
        {"iss": ISS_EC, "jwks_url": JWKS_URL, "jku": [JKU_URL]},
        {"iss": ISS_RSA, "jwks": {"keys": [public_jwk(k.rsa, "rsa-1")]}},
        {
            "iss": ISS_TENANT,
            "jwks": {"keys": [public_jwk(k.ec384, "ec-1", alg="ES384", use="sig")]},
            "tenants": ["hospital-a"],
        },
        {"iss": ISS_ED, "jwks": {"keys": [public_jwk(k.ed25519, "ed-1")]}},
    ]


@dataclass
class Harness:
    verifier: JwtVerifier
    fetcher: FakeFetcher
    clock: MonotonicClock
    store: InMemoryJtiStore

    def verify(self, token: str, endpoint: str = ENDPOINT):
        return asyncio.run(self.verifier.verify(token, endpoint))

    def category(self, token: str, endpoint: str = ENDPOINT) -> str:
        with pytest.raises(AuthenticationError) as info:
            self.verify(token, endpoint)
        assert str(info.value) == info.value.category  # the message is the category, never the token
        return info.value.category


def make_harness(store: InMemoryJtiStore | None = None, fetcher: FakeFetcher | None = None) -> Harness:
    k = keys()
    if fetcher is None:
        fetcher = FakeFetcher(
            {
                JWKS_URL: {"keys": [public_jwk(k.ec384, "ec-1")]},
                JKU_URL: {"keys": [public_jwk(k.ec384_alternate, "alt-1")]},
            }
        )
    clock = MonotonicClock()
    store = store if store is not None else InMemoryJtiStore(clock=lambda: NOW)
    verifier = JwtVerifier(
        parse_trusted_clients(trusted_clients_document()),
        TrustedClientKeys(JwksCache(fetcher, clock=clock)),
        store,
        clock=lambda: NOW,
    )
    return Harness(verifier, fetcher, clock, store)


@pytest.fixture()
def harness() -> Harness:
    return make_harness()


# --- the matrix: accepted ---------------------------------------------------------------------------------------------


def test_valid_es384_token_is_accepted(harness):
    payload = claims(tenant="anything")
    identity = harness.verify(make_token(payload=payload))
    assert (identity.iss, identity.sub, identity.jti, identity.tenant) == (
        ISS_EC,
        "ehr-client-1",
        payload["jti"],
        "anything",
    )
    assert not identity.is_anonymous
    assert harness.fetcher.calls == [JWKS_URL]


def test_valid_rs384_token_is_accepted(harness):
    token = make_token(keys().rsa, alg="RS384", kid="rsa-1", payload=claims(iss=ISS_RSA))
    assert harness.verify(token).iss == ISS_RSA
    assert harness.fetcher.calls == []  # inline keys


@pytest.mark.parametrize("alg", ["RS256", "RS512", "PS256", "PS384", "PS512"])
def test_an_rsa_key_without_alg_verifies_every_rsa_algorithm(harness, alg):
    token = make_token(keys().rsa, alg=alg, kid="rsa-1", payload=claims(iss=ISS_RSA))
    assert harness.verify(token).iss == ISS_RSA


def test_eddsa_token_is_accepted(harness):
    token = make_token(keys().ed25519, alg="EdDSA", kid="ed-1", payload=claims(iss=ISS_ED))
    assert harness.verify(token).iss == ISS_ED


def test_aud_may_be_an_array_containing_the_endpoint(harness):
    token = make_token(payload=claims(aud=["https://other.example.org/x", ENDPOINT]))
    assert harness.verify(token).iss == ISS_EC


def test_allowed_jku_takes_the_keys_from_that_url(harness):
    token = make_token(keys().ec384_alternate, kid="alt-1", jku=JKU_URL)
    assert harness.verify(token).iss == ISS_EC
    assert harness.fetcher.calls == [JKU_URL]


def test_times_within_the_leeway_are_accepted(harness):
    iat = int((NOW + timedelta(seconds=50)).timestamp())  # slightly ahead of our clock
    exp = int((NOW - timedelta(seconds=50)).timestamp()) + 100
    harness.verify(make_token(payload=claims(iat=iat, exp=exp)))
    just_expired = claims(
        iat=int((NOW - timedelta(minutes=10)).timestamp()), exp=int((NOW - timedelta(seconds=30)).timestamp())
    )
    harness.verify(make_token(payload=just_expired))


def test_tenant_on_the_clients_list_is_accepted(harness):
    token = make_token(payload=claims(iss=ISS_TENANT, tenant="hospital-a"))
    assert harness.verify(token).tenant == "hospital-a"


# --- the matrix: refused ---------------------------------------------------------------------------------------------


def test_wrong_aud_is_refused(harness):
    assert harness.category(make_token(payload=claims(aud=f"{PUBLIC_BASE}/cds-services/other-service"))) == "audience"
    assert harness.category(make_token(payload=claims(aud=ENDPOINT + "/"))) == "audience"
    assert harness.category(make_token(payload=claims(aud=[f"{PUBLIC_BASE}/cds-services"]))) == "audience"
    assert harness.category(make_token(payload=claims(aud=None))) == "audience"


def test_aud_naming_the_host_header_is_refused(harness):
    # what a service deriving its URL from the request's Host header would accept
    for host_derived in (
        "http://testserver/cds-services/hcc-tace-resistance",
        "https://attacker.example/cds-services/hcc-tace-resistance",
    ):
        assert harness.category(make_token(payload=claims(aud=host_derived))) == "audience"


def test_expired_token_is_refused(harness):
    payload = claims(
        iat=int((NOW - timedelta(minutes=10)).timestamp()), exp=int((NOW - timedelta(seconds=61)).timestamp())
    )
    assert harness.category(make_token(payload=payload)) == "expired"


def test_future_iat_is_refused(harness):
    iat = int((NOW + timedelta(seconds=120)).timestamp())
    assert harness.category(make_token(payload=claims(iat=iat, exp=iat + 300))) == "not_yet_valid"


def test_future_nbf_is_refused(harness):
    nbf = int((NOW + timedelta(seconds=120)).timestamp())
    assert harness.category(make_token(payload=claims(nbf=nbf))) == "not_yet_valid"


def test_too_long_a_lifetime_is_refused(harness):
    iat = int(NOW.timestamp())
    assert harness.category(make_token(payload=claims(iat=iat, exp=iat + 3601))) == "lifetime"
    harness.verify(make_token(payload=claims(iat=iat, exp=iat + 3600)))


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_missing_times_are_refused(harness, claim):
    assert harness.category(make_token(payload=claims(**{claim: None}))) == "times"


@pytest.mark.parametrize("value", ["1767268800", True, 1e400])
def test_non_numeric_exp_is_refused(harness, value):
    payload = claims()
    payload["exp"] = value
    assert harness.category(make_token(payload=payload)) == "times"


def test_unknown_iss_is_refused_without_fetching_keys(harness):
    assert harness.category(make_token(payload=claims(iss="https://unknown.example.org"))) == "issuer"
    assert harness.category(make_token(payload=claims(iss=None))) == "issuer"
    assert harness.fetcher.calls == []


def test_disallowed_jku_is_refused_without_fetching_it(harness):
    evil = "https://attacker.example/jwks.json"
    harness.fetcher.documents[evil] = {"keys": [public_jwk(keys().attacker, "ec-1")]}
    assert harness.category(make_token(keys().attacker, jku=evil)) == "jku"
    # the configured jwks_url is not implicitly an allowed jku
    assert harness.category(make_token(jku=JWKS_URL)) == "jku"
    assert harness.fetcher.calls == []


def test_unknown_kid_refreshes_once_then_is_refused(harness):
    harness.verify(make_token())  # the first fetch fills the cache
    assert harness.fetcher.calls == [JWKS_URL]
    harness.clock.now += 61  # past the minimum interval between fetches of one URL
    assert harness.category(make_token(keys().ec384_rotated, kid="rotated")) == "unknown_key"
    assert harness.fetcher.calls == [JWKS_URL, JWKS_URL]  # one refresh for the unknown kid
    for _ in range(5):
        assert harness.category(make_token(keys().ec384_rotated, kid="rotated")) == "unknown_key"
    assert harness.fetcher.calls == [JWKS_URL, JWKS_URL]  # rate-limited: no fetch per request
    harness.verify(make_token())  # a known kid is served from the cache
    assert len(harness.fetcher.calls) == 2


def test_unknown_kid_on_an_empty_cache_fetches_once(harness):
    for _ in range(3):
        assert harness.category(make_token(keys().ec384_rotated, kid="rotated")) == "unknown_key"
    assert harness.fetcher.calls == [JWKS_URL]


def test_key_rotation_is_picked_up_after_the_refresh_interval(harness):
    harness.verify(make_token())
    harness.fetcher.documents[JWKS_URL] = {
        "keys": [public_jwk(keys().ec384, "ec-1"), public_jwk(keys().ec384_rotated, "rotated")]
    }
    harness.clock.now += 30  # within the minimum refresh interval of the last fetch
    assert harness.category(make_token(keys().ec384_rotated, kid="rotated")) == "unknown_key"
    assert len(harness.fetcher.calls) == 1
    harness.clock.now += 31
    assert harness.verify(make_token(keys().ec384_rotated, kid="rotated")).iss == ISS_EC
    assert len(harness.fetcher.calls) == 2


def test_replayed_jti_is_refused(harness):
    token = make_token()
    harness.verify(token)
    assert harness.category(token) == "replay"
    # a new token reusing the jti is a replay too
    payload = claims()
    harness.verify(make_token(payload=payload))
    assert harness.category(make_token(payload={**payload, "iat": payload["iat"] + 1})) == "replay"


def test_replayed_jti_is_refused_across_verifiers_sharing_a_store():
    store = InMemoryJtiStore(clock=lambda: NOW)
    first, second = make_harness(store), make_harness(store)
    token = make_token()
    first.verify(token)
    assert second.category(token) == "replay"


def test_same_jti_from_two_issuers_is_not_a_replay(harness):
    jti = str(uuid.uuid4())
    harness.verify(make_token(payload=claims(jti=jti)))
    harness.verify(make_token(keys().rsa, alg="RS384", kid="rsa-1", payload=claims(iss=ISS_RSA, jti=jti)))


def test_a_refused_token_does_not_burn_its_jti(harness):
    payload = claims()
    assert harness.category(make_token(keys().attacker, payload=payload)) == "signature"
    harness.verify(make_token(payload=payload))


@pytest.mark.parametrize(
    ("build", "category"),
    [
        (lambda: make_token(payload=claims(jti=None)), "jti"),
        (lambda: make_token(payload=claims(jti="")), "jti"),
        (lambda: make_token(payload=claims(jti=12345)), "jti"),
        (lambda: make_token(payload=claims(jti="x" * 256)), "jti"),
        (lambda: make_token(kid=None), "kid"),
        (lambda: make_token(kid=""), "kid"),
        (lambda: make_token(typ=None), "typ"),
        (lambda: make_token(typ="at+jwt"), "typ"),
    ],
    ids=["no-jti", "empty-jti", "numeric-jti", "long-jti", "no-kid", "empty-kid", "no-typ", "other-typ"],
)
def test_missing_or_bad_required_fields_are_refused(harness, build, category):
    assert harness.category(build()) == category


def test_alg_none_is_refused(harness):
    token = hand_made_token({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims(), lambda _: b"")
    assert harness.category(token) == "algorithm"
    token = jwt.encode(claims(), None, algorithm="none", headers={"kid": "ec-1"})
    assert harness.category(token) == "algorithm"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_is_refused(harness, alg):
    """The algorithm-confusion attack: HMAC keyed with the client's public key, which anyone can fetch."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    for secret in (public_pem(keys().rsa), json.dumps(public_jwk(keys().rsa, "rsa-1")).encode()):
        token = hand_made_token(
            {"alg": alg, "typ": "JWT", "kid": "rsa-1"},
            claims(iss=ISS_RSA),
            lambda signing_input, secret=secret: hmac.new(secret, signing_input, digest).digest(),
        )
        assert harness.category(token) == "algorithm"
    assert not {a for a in ALLOWED_ALGORITHMS if a.startswith("HS") or a == "none"}


def test_signature_by_another_key_is_refused(harness):
    assert harness.category(make_token(keys().attacker)) == "signature"
    token = make_token(keys().attacker, alg="ES384", kid="ec-1", payload=claims(iss=ISS_TENANT, tenant="hospital-a"))
    assert harness.category(token) == "signature"


def test_tampered_payload_is_refused(harness):
    header, _, signature = make_token().split(".")
    forged = _b64(json.dumps(claims(sub="someone-else")).encode())
    assert harness.category(f"{header}.{forged}.{signature}") == "signature"


def test_algorithm_the_key_does_not_allow_is_refused(harness):
    # the ISS_TENANT key is declared alg ES384; the RSA key may not verify ES*
    ec_key_p256 = ec.generate_private_key(ec.SECP256R1())
    token = make_token(ec_key_p256, alg="ES256", payload=claims(iss=ISS_TENANT, tenant="hospital-a"))
    assert harness.category(token) == "key_algorithm"
    token = make_token(keys().ec384, alg="ES384", kid="rsa-1", payload=claims(iss=ISS_RSA))
    assert harness.category(token) == "key_algorithm"


def test_tenant_not_on_the_clients_list_is_refused(harness):
    assert harness.category(make_token(payload=claims(iss=ISS_TENANT, tenant="hospital-b"))) == "tenant"
    assert harness.category(make_token(payload=claims(iss=ISS_TENANT))) == "tenant"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "a.b.c.d", "x" * 20_000, "eyJhbGciOiJFUzM4NCJ9.bm90IGpzb24.c2ln"],
)
def test_malformed_tokens_are_refused(harness, token):
    assert harness.category(token) == "malformed"


def test_crit_header_is_refused(harness):
    assert harness.category(make_token(crit=["exp"])) in {"header", "malformed"}


def test_errors_carry_the_claimed_ids_but_never_the_token(harness):
    payload = claims(aud="https://elsewhere.example/x")
    token = make_token(payload=payload)
    with pytest.raises(AuthenticationError) as info:
        harness.verify(token)
    error = info.value
    assert (error.iss, error.kid, error.jti) == (ISS_EC, "ec-1", payload["jti"])
    assert token not in repr(error.args) and token not in str(error)


# --- the JWKS cache ----------------------------------------------------------------------------------------------------


def test_jwks_cache_refetches_after_the_ttl_and_keeps_keys_when_a_refresh_fails():
    fetcher = FakeFetcher({JWKS_URL: {"keys": [public_jwk(keys().ec384, "ec-1")]}})
    clock = MonotonicClock()
    cache = JwksCache(fetcher, ttl_seconds=300, min_refresh_interval_seconds=60, max_stale_seconds=3600, clock=clock)

    async def get():
        return await cache.get(JWKS_URL, "ec-1")

    assert asyncio.run(get()) is not None
    clock.now += 299
    assert asyncio.run(get()) is not None and len(fetcher.calls) == 1
    clock.now += 2
    del fetcher.documents[JWKS_URL]  # the client's JWKS endpoint is down
    assert asyncio.run(get()) is not None  # stale keys still serve
    assert len(fetcher.calls) == 2
    assert asyncio.run(get()) is not None and len(fetcher.calls) == 2  # failed fetch is rate-limited too
    clock.now += 3600  # beyond the maximum staleness
    assert asyncio.run(get()) is None
    assert len(fetcher.calls) == 3


def test_jwks_cache_shares_one_fetch_between_concurrent_requests():
    fetcher = FakeFetcher({JWKS_URL: {"keys": [public_jwk(keys().ec384, "ec-1")]}})
    fetcher.delay = 0.05
    cache = JwksCache(fetcher)

    async def main():
        return await asyncio.gather(*(cache.get(JWKS_URL, "ec-1") for _ in range(10)))

    assert all(key is not None for key in asyncio.run(main()))
    assert fetcher.calls == [JWKS_URL]


def test_fetched_jwks_skips_unusable_and_duplicate_keys(caplog):
    k = keys()
    oct_key = {"kty": "oct", "kid": "hmac", "k": _b64(b"secret")}
    private = {**public_jwk(k.ec384, "private"), "d": "AAAA"}
    weak = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "weak")
    document = {
        "keys": [
            oct_key,
            private,
            weak,
            public_jwk(k.ec384, "dup"),
            public_jwk(k.rsa, "dup"),
            public_jwk(k.ec384, "good"),
            {"kid": "no-kty"},
            "not an object",
        ]
    }
    cache = JwksCache(FakeFetcher({JWKS_URL: document}))
    with caplog.at_level(logging.WARNING, logger="hcc_cds.auth"):
        found = {kid: asyncio.run(cache.get(JWKS_URL, kid)) for kid in ("hmac", "private", "weak", "dup", "good")}
    assert [kid for kid, key in found.items() if key is not None] == ["good"]
    assert "symmetric" in caplog.text and "private key material" in caplog.text and "1024 bits" in caplog.text


def test_httpx_fetcher_reads_json_and_refuses_redirects_and_errors():
    import httpx

    from service.auth import JwksFetchError, httpx_jwks_fetcher

    document = {"keys": [public_jwk(keys().ec384, "ec-1")]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jwks.json":
            return httpx.Response(200, json=document)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "https://attacker.example/jwks.json"})
        if request.url.path == "/big":
            return httpx.Response(200, content=b"[" + b"0," * 200_000 + b"0]")
        return httpx.Response(200, content=b"<html>")

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            fetch = httpx_jwks_fetcher(lambda: client)
            results = [await fetch("https://ehr.example.org/jwks.json")]
            for path in ("/moved", "/big", "/html"):
                with pytest.raises(JwksFetchError):
                    await fetch(f"https://ehr.example.org{path}")
            return results

    assert asyncio.run(main()) == [document]


# --- the jti store ---------------------------------------------------------------------------------------------------


def test_in_memory_jti_store_forgets_expired_ids():
    now = [NOW]
    store = InMemoryJtiStore(clock=lambda: now[0])
    assert isinstance(store, JtiStore)

    async def remember(jti: str, minutes: int) -> bool:
        return await store.remember(ISS_EC, jti, NOW + timedelta(minutes=minutes))

    assert asyncio.run(remember("a", 5)) is True
    assert asyncio.run(remember("a", 5)) is False
    assert asyncio.run(remember("b", 60)) is True
    assert len(store) == 2
    now[0] = NOW + timedelta(minutes=6)
    assert asyncio.run(remember("c", 70)) is True
    assert len(store) == 2  # "a" dropped
    assert asyncio.run(remember("a", 70)) is True


def test_jti_is_remembered_until_exp_plus_leeway(harness):
    payload = claims()
    harness.verify(make_token(payload=payload))
    (expires_at,) = harness.store._expiry.values()
    assert expires_at == datetime.fromtimestamp(payload["exp"] + 60, UTC)


# --- the trusted-clients file --------------------------------------------------------------------------------------


def test_example_file_loads():
    clients = load_trusted_clients(EXAMPLE_FILE)
    assert len(clients) == 3
    ehr = clients.get("https://ehr.example.org")
    assert ehr.jwks_url and ehr.jku == (ehr.jwks_url,) and ehr.tenants == ("hospital-a", "hospital-b")
    assert ehr.role == "cds-client"
    sandbox = clients.get("https://sandbox.example.net")
    assert sandbox.inline_keys["ehr-2026-01"].algorithms == {"ES384"} and sandbox.role == "cds-client"
    assert clients.get("https://integration.hospital-a.example.org").role == "operator"


def test_json_file_and_clients_mapping_load(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": trusted_clients_document()}))
    clients = load_trusted_clients(path)
    assert clients.get(ISS_RSA).inline_keys["rsa-1"].algorithms == {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
    }


def _client(**fields: Any) -> dict:
    return {"iss": ISS_EC, "jwks_url": JWKS_URL, **fields}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "clients"),
        ({"client": []}, "clients"),
        ("just a string", "expected a list of clients"),
        ([{"iss": ISS_EC}], "needs a key source"),
        ([_client(iss="")], "iss"),
        ([_client(), _client()], "listed twice"),
        ([_client(jwks_url="http://ehr.example.org/jwks.json")], "must use https"),
        ([_client(jwks_url="ftp://ehr.example.org/jwks.json")], "not an absolute http(s) URL"),
        ([_client(jwks_url="https://user:pw@ehr.example.org/jwks.json")], "credentials"),
        ([_client(jku=["http://attacker.example/jwks.json"])], "must use https"),
        ([_client(tenants=[])], "tenants"),
        ([_client(unknown_field=1)], "unknown_field"),
        ([_client(jwks={"keys": []})], "empty"),
        ([_client(jwks={"not": "a set"})], "JWK Set"),
        ([_client(jwks={"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]})], "symmetric"),
        ([_client(jwks={"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]})], "kid"),
    ],
)
def test_bad_documents_are_clear_settings_errors(document, message):
    with pytest.raises(SettingsError) as info:
        parse_trusted_clients(document, "HCC_TRUSTED_CLIENTS file 'x.yaml'")
    assert message in str(info.value)


def test_inline_private_or_weak_keys_are_refused():
    private_jwk = json.loads(ECAlgorithm.to_jwk(keys().ec384))
    with pytest.raises(SettingsError, match="private key material"):
        parse_trusted_clients([_client(jwks={"keys": [{**private_jwk, "kid": "p"}]})])
    weak = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "weak")
    with pytest.raises(SettingsError, match="at least 2048"):
        parse_trusted_clients([_client(jwks={"keys": [weak]})])
    with pytest.raises(SettingsError, match="'alg' 'HS256' is not allowed"):
        parse_trusted_clients([_client(jwks={"keys": [public_jwk(keys().rsa, "r", alg="HS256")]})])
    with pytest.raises(SettingsError, match="appears more than once"):
        parse_trusted_clients([_client(jwks={"keys": [public_jwk(keys().rsa, "r"), public_jwk(keys().ec384, "r")]})])


def test_loopback_http_jwks_url_is_allowed_for_local_development():
    clients = parse_trusted_clients([_client(jwks_url="http://127.0.0.1:9000/jwks.json", jku=["http://localhost/j"])])
    assert clients.get(ISS_EC).jwks_url == "http://127.0.0.1:9000/jwks.json"


def test_unreadable_or_unparsable_files_are_clear_settings_errors(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        load_trusted_clients(tmp_path / "missing.yaml")
    bad_yaml = tmp_path / "clients.yaml"
    bad_yaml.write_text("- iss: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_trusted_clients(bad_yaml)
    bad_json = tmp_path / "clients.json"
    bad_json.write_text("{")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_trusted_clients(bad_json)
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("- iss: https://x.example\n")
    with pytest.raises(SettingsError) as info:
        load_trusted_clients(invalid)
    assert "HCC_TRUSTED_CLIENTS file" in str(info.value) and "clients.0" in str(info.value)


# --- production start-up checks ----------------------------------------------------------------------------------------


def production_settings(**overrides: Any) -> Settings:
    values = {
        "mode": "production",
        "trusted_clients": EXAMPLE_FILE,
        "fhir_allowlist": "https://ehr.example.org/fhir",
        "public_base_url": PUBLIC_BASE,
        **overrides,
    }
    return Settings(**values)


def test_production_checks_pass_with_clients_allowlist_and_https_base_url():
    production_checks(production_settings())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trusted_clients": None}, "HCC_TRUSTED_CLIENTS is not set"),
        ({"trusted_clients": Path("/nonexistent/clients.yaml")}, "cannot be read"),
        ({"fhir_allowlist": ""}, "HCC_FHIR_ALLOWLIST is empty"),
        ({"public_base_url": "http://cds.example.org"}, "HCC_PUBLIC_BASE_URL"),
        ({"public_base_url": "https://127.0.0.1:8080"}, "HCC_PUBLIC_BASE_URL"),
    ],
)
def test_production_checks_refuse_an_incomplete_configuration(overrides, message):
    with pytest.raises(SettingsError) as info:
        production_checks(production_settings(**overrides))
    assert message in str(info.value)
    assert str(info.value).startswith("HCC_MODE=production cannot start")


def test_client_auth_from_settings_is_off_in_demo_and_on_in_production():
    fetcher = FakeFetcher()
    store = InMemoryJtiStore()
    demo = CdsClientAuth.from_settings(Settings(mode="demo"), fetcher=fetcher, jti_store=store)
    assert not demo.enabled
    production = CdsClientAuth.from_settings(production_settings(), fetcher=fetcher, jti_store=store)
    assert production.enabled
    assert production.endpoint_url("/cds-services/x") == f"{PUBLIC_BASE}/cds-services/x"
