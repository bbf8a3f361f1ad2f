"""Checks a hook's ``fhirServer`` against ``HCC_FHIR_ALLOWLIST`` before any connection.

Scheme, host and port must match exactly (after lower-casing the host and filling
in default ports); the path must equal an allowed path or continue it after a
``/``. URLs with userinfo, a query or a fragment are refused. Never a string
prefix: ``https://ehr.org.evil.com`` does not match ``https://ehr.org``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from service.fhir.errors import FhirServerNotAllowedError

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str, *, allow_query: bool = False) -> Origin:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise FhirServerNotAllowedError(f"fhirServer is not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise FhirServerNotAllowedError("fhirServer must be an http(s) URL")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise FhirServerNotAllowedError("fhirServer must not contain user information")
        if (parts.query and not allow_query) or parts.fragment:
            raise FhirServerNotAllowedError("fhirServer must not contain a query or fragment")
        host = (parts.hostname or "").lower()
        if not host:
            raise FhirServerNotAllowedError("fhirServer has no host")
        return cls(scheme, host, port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))

    def same_origin(self, other: Origin) -> bool:
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)

    def within(self, allowed: Origin) -> bool:
        if not self.same_origin(allowed):
            return False
        return self.path == allowed.path or self.path.startswith(allowed.path + "/")


def check_fhir_server(url: str, allowlist: tuple[str, ...], *, allow_any_loopback: bool = False) -> str:
    """Return the normalised base URL if allowed; raise :class:`FhirServerNotAllowedError` otherwise."""
    candidate = Origin.parse(url)
    if allow_any_loopback and candidate.host in LOOPBACK_HOSTS:
        return url.rstrip("/")
    for entry in allowlist:
        if candidate.within(Origin.parse(entry)):
            return url.rstrip("/")
    raise FhirServerNotAllowedError("fhirServer is not on this service's allowlist (HCC_FHIR_ALLOWLIST)")
