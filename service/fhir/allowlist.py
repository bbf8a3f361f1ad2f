"""Checks a hook's ``fhirServer`` against ``HCC_FHIR_ALLOWLIST`` before any connection.

Scheme, host and port must match exactly (after lower-casing the host and filling
in default ports); the path must equal an allowed path or continue it after a
``/``. Never a string prefix: ``https://ehr.org.evil.com`` does not match
``https://ehr.org`` and ``https://ehr.org/fhirx`` does not match
``https://ehr.org/fhir``.

A URL is refused outright when it could mean different things to different
parsers: user information (``https://ehr.org@evil.com``), a fragment, a query
(except on ``next`` links), backslashes, whitespace or control characters,
percent-encoded or non-ASCII hosts, and ``.``/``..`` path segments (httpx would
resolve ``/fhir/../admin`` to ``/admin``). The URL is also parsed the way httpx
will send it, and must come out the same.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from service.fhir.errors import FhirServerNotAllowedError

log = logging.getLogger("hcc_cds.fhir")

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = frozenset({"localhost"})
_FORBIDDEN_CHARACTERS = frozenset("\\ \t\r\n\x0b\x0c")


def _refuse(reason: str) -> FhirServerNotAllowedError:
    return FhirServerNotAllowedError(f"fhirServer {reason}")


def _check_characters(url: str) -> None:
    if any(ch in _FORBIDDEN_CHARACTERS or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _refuse("contains whitespace, control characters or backslashes")
    if not url.isascii():
        raise _refuse("must be ASCII (write an internationalised host in its xn-- form)")


def _check_path(path: str) -> None:
    segments = unquote(path).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise _refuse("must not contain '.' or '..' path segments")


@dataclass(frozen=True)
class Origin:
    """A parsed http(s) URL: the parts that decide where a request goes."""

    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash

    @classmethod
    def parse(cls, url: str, *, allow_query: bool = False) -> Origin:
        """Parse ``url`` strictly; raise :class:`FhirServerNotAllowedError` when it is ambiguous or unusable."""
        if not isinstance(url, str) or not url:
            raise _refuse("is not a URL")
        _check_characters(url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _refuse(f"is not a valid URL ({exc})") from exc
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise _refuse("must be an http(s) URL")
        if "@" in parts.netloc:
            raise _refuse("must not contain user information")
        if parts.fragment or "#" in url:
            raise _refuse("must not contain a fragment")
        if parts.query and not allow_query:
            raise _refuse("must not contain a query")
        host = (parts.hostname or "").lower()
        if not host or "%" in host:
            raise _refuse("has no usable host")
        _check_path(parts.path)
        origin = cls(scheme, host, port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))
        origin._check_httpx_agrees(url)
        return origin

    def _check_httpx_agrees(self, url: str) -> None:
        """httpx, which sends the request, must read the same scheme, host, port and path."""
        try:
            seen = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise _refuse("is not a valid URL") from exc
        sent = (seen.scheme, seen.host.lower(), seen.port or DEFAULT_PORTS.get(seen.scheme), seen.path.rstrip("/"))
        if sent != (self.scheme, self.host, self.port, self.path):
            raise _refuse("is ambiguous (it would not be sent where it appears to point)")

    @property
    def is_loopback(self) -> bool:
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def base_url(self) -> str:
        """The normalised URL: lower-case scheme and host, no default port, no trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def same_origin(self, other: Origin) -> bool:
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)

    def within(self, allowed: Origin) -> bool:
        """Same origin, and the path equals the allowed path or continues it after a ``/``."""
        if not self.same_origin(allowed):
            return False
        return self.path == allowed.path or self.path.startswith(allowed.path + "/")


def parse_allowlist(entries: Iterable[str]) -> tuple[Origin, ...]:
    """The usable allowlist entries; an unusable one is logged and matches nothing.

    Parsed once per list (the settings' list is the same on every call: parsing it took 0.1-0.25 ms a hook
    call with fhirServer, and logged a bad entry on every call); the cache holds lists of settings, not data.
    """
    return _parsed_allowlist(tuple(entries))


@functools.lru_cache(maxsize=16)
def _parsed_allowlist(entries: tuple[str, ...]) -> tuple[Origin, ...]:
    origins = []
    for entry in entries:
        try:
            origins.append(Origin.parse(entry))
        except FhirServerNotAllowedError as exc:
            log.warning("HCC_FHIR_ALLOWLIST entry %r ignored: %s", entry, exc)
    return tuple(origins)


def check_fhir_server(url: str, allowlist: Iterable[str], *, allow_any_loopback: bool = False) -> str:
    """Return the normalised base URL if allowed; raise :class:`FhirServerNotAllowedError` otherwise.

    ``allow_any_loopback`` (demo mode) admits any loopback host (``localhost``,
    ``127.0.0.0/8``, ``::1``) on any port and path.
    """
    candidate = Origin.parse(url)
    if allow_any_loopback and candidate.is_loopback:
        return candidate.base_url
    if any(candidate.within(allowed) for allowed in parse_allowlist(allowlist)):
        return candidate.base_url
    raise FhirServerNotAllowedError("fhirServer is not on this service's allowlist (HCC_FHIR_ALLOWLIST)")
