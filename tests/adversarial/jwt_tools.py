"""Client JWTs for production-mode tests: a trusted client's key, its trusted-clients file, tokens and forgeries.

Keys come from tests/unit/service/test_jwt_auth.py (generated once per session).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.unit.service.test_jwt_auth import hand_made_token, keys, make_token, public_jwk, public_pem

KID = "ec-1"
ALG = "ES384"


def trusted_clients_file(folder: Path, iss: str, **client: Any) -> Path:
    """A trusted-clients YAML file with one client ``iss`` whose inline JWKS holds the session's P-384 key.

    The client is an operator unless ``role`` says otherwise: the attack matrix reaches every route."""
    entry = {"iss": iss, "jwks": {"keys": [public_jwk(keys().ec384, KID, alg=ALG)]}, "role": "operator", **client}
    path = folder / "trusted_clients.yaml"
    path.write_text(yaml.safe_dump({"clients": [entry]}))
    return path


def claims_for(iss: str, aud: str, **overrides: Any) -> dict:
    """Valid claims now; ``name=None`` removes a claim."""
    now = int(time.time())
    base = {"iss": iss, "sub": "ehr-client", "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def client_token(claims: dict, **headers: Any) -> str:
    """Signed by the trusted client's key (kid ec-1, ES384) unless ``headers`` say otherwise."""
    return make_token(payload=claims, **headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict) -> str:
    """``alg: none`` with an empty signature."""
    header = {"alg": "none", "typ": "JWT", "kid": KID}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the client's public key (PEM)."""
    pem = public_pem(keys().ec384)
    return hand_made_token(
        {"alg": "HS256", "typ": "JWT", "kid": KID},
        claims,
        lambda signing_input: hmac.new(pem, signing_input, "sha256").digest(),
    )


def attacker_token(claims: dict, **headers: Any) -> str:
    """Signed by a key the service does not trust, under the trusted client's kid."""
    return make_token(keys().attacker, payload=claims, **headers)


def embedded_jwk_token(claims: dict) -> str:
    """Signed by the attacker, who also puts the attacker's public key in the header (``jwk``)."""
    return make_token(keys().attacker, payload=claims, jwk=public_jwk(keys().attacker, KID))
