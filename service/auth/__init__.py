"""CDS client authentication (CDS Hooks 2.0 "Trusting CDS Clients"): signed client JWTs.

- :mod:`service.auth.trusted_clients`: the ``HCC_TRUSTED_CLIENTS`` file, ``production_checks``.
- :mod:`service.auth.keys`: JWK parsing, the rate-limited JWKS cache, the production fetcher.
- :mod:`service.auth.jwt_verifier`: the pure verifier, ``ClientIdentity``, the ``JtiStore`` protocol.
- :mod:`service.auth.dependency`: ``CdsClientAuth`` and the FastAPI dependency ``CdsClientDep``.
"""

from service.auth.dependency import (
    CdsClientAuth,
    CdsClientDep,
    endpoint_path,
    get_client_auth,
    require_cds_client,
)
from service.auth.jwt_verifier import (
    ANONYMOUS_CLIENT,
    LEEWAY_SECONDS,
    MAX_TOKEN_LIFETIME_SECONDS,
    AuthenticationError,
    ClientIdentity,
    InMemoryJtiStore,
    JtiStore,
    JwtVerifier,
)
from service.auth.keys import (
    ALLOWED_ALGORITHMS,
    JwksCache,
    JwksFetcher,
    JwksFetchError,
    VerificationKey,
    httpx_jwks_fetcher,
)
from service.auth.trusted_clients import (
    KeySource,
    TrustedClient,
    TrustedClientKeys,
    TrustedClients,
    load_trusted_clients,
    parse_trusted_clients,
    production_checks,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "ANONYMOUS_CLIENT",
    "LEEWAY_SECONDS",
    "MAX_TOKEN_LIFETIME_SECONDS",
    "AuthenticationError",
    "CdsClientAuth",
    "CdsClientDep",
    "ClientIdentity",
    "InMemoryJtiStore",
    "JtiStore",
    "JwksCache",
    "JwksFetchError",
    "JwksFetcher",
    "JwtVerifier",
    "KeySource",
    "TrustedClient",
    "TrustedClientKeys",
    "TrustedClients",
    "VerificationKey",
    "endpoint_path",
    "get_client_auth",
    "httpx_jwks_fetcher",
    "load_trusted_clients",
    "parse_trusted_clients",
    "production_checks",
    "require_cds_client",
]
