"""fhirServer against HCC_FHIR_ALLOWLIST: exact scheme/host/port, path by segment prefix, no look-alikes."""

from __future__ import annotations

import pytest

from service.fhir.allowlist import Origin, check_fhir_server, parse_allowlist
from service.fhir.errors import FhirServerNotAllowedError

ALLOW = ("https://ehr.org/fhir",)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://ehr.org/fhir", "https://ehr.org/fhir"),
        ("https://ehr.org/fhir/", "https://ehr.org/fhir"),
        ("https://ehr.org/fhir/r4", "https://ehr.org/fhir/r4"),
        ("https://EHR.ORG/fhir", "https://ehr.org/fhir"),
        ("HTTPS://ehr.org/fhir", "https://ehr.org/fhir"),
        ("https://ehr.org:443/fhir", "https://ehr.org/fhir"),
    ],
)
def test_allowed_urls_come_back_normalised(url, normalised):
    assert check_fhir_server(url, ALLOW) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.org.evil.com/fhir",  # the allowed host as a prefix of another
        "https://evil-ehr.org/fhir",
        "https://ehr.org@evil.com/fhir",  # user information: the host is evil.com
        "https://ehr.org:pw@evil.com/fhir",
        "https://evil.com#@ehr.org/fhir",  # a fragment hiding the real host
        "https://evil.com/fhir#https://ehr.org/fhir",
        "https://evil.com\\@ehr.org/fhir",  # backslash: parsers disagree on the host
        "https://ehr.org:8443/fhir",  # another port
        "http://ehr.org/fhir",  # http vs https
        "https://ehr.org/fhirx",  # a string prefix of the path, not a segment prefix
        "https://ehr.org/fhi",
        "https://ehr.org/",
        "https://ehr.org",
        "https://ehr.org/fhir/../admin",  # dot segments: httpx would send /admin
        "https://ehr.org/fhir/%2e%2e/admin",
        "https://ehr.org/fhir?x=1",  # a query
        "https://ehr.org/ fhir",
        "https://ehr.org/fhir\n",
        "ftp://ehr.org/fhir",
        "ehr.org/fhir",
        "//ehr.org/fhir",
        "https:///fhir",
        "https://ehr%2Eorg/fhir",  # a percent-encoded host
        "https://еhr.org/fhir",  # a Cyrillic "е"
        "https://ehr.org:99999/fhir",
        "",
    ],
)
def test_look_alikes_and_ambiguous_urls_are_refused(url):
    with pytest.raises(FhirServerNotAllowedError):
        check_fhir_server(url, ALLOW)


def test_an_allowlist_entry_with_a_trailing_slash_or_upper_case_host_still_matches():
    assert check_fhir_server("https://ehr.org/fhir/r4", ("HTTPS://EHR.ORG/fhir/",)) == "https://ehr.org/fhir/r4"


def test_an_allowlist_entry_without_a_path_admits_every_path_of_that_origin_only():
    allow = ("https://ehr.org",)
    assert check_fhir_server("https://ehr.org/anything/fhir", allow) == "https://ehr.org/anything/fhir"
    with pytest.raises(FhirServerNotAllowedError):
        check_fhir_server("https://ehr.org.evil.com/fhir", allow)


def test_the_default_port_written_in_the_allowlist_matches_the_url_without_it():
    assert check_fhir_server("https://ehr.org/fhir", ("https://ehr.org:443/fhir",)) == "https://ehr.org/fhir"
    assert check_fhir_server("http://ehr.org:8080/fhir", ("http://ehr.org:8080",)) == "http://ehr.org:8080/fhir"


def test_an_empty_allowlist_refuses_everything_outside_demo_loopback():
    with pytest.raises(FhirServerNotAllowedError, match="allowlist"):
        check_fhir_server("https://ehr.org/fhir", ())
    with pytest.raises(FhirServerNotAllowedError):
        check_fhir_server("http://127.0.0.1:8080/fhir", ())


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://127.0.0.1:8080/fhir", "http://127.0.0.1:8080/fhir"),
        ("http://127.0.0.2/fhir", "http://127.0.0.2/fhir"),
        ("http://localhost:5000/", "http://localhost:5000"),
        ("http://LOCALHOST:5000/fhir", "http://localhost:5000/fhir"),
        ("http://[::1]:8080/fhir", "http://[::1]:8080/fhir"),
    ],
)
def test_demo_mode_admits_any_loopback_host(url, normalised):
    assert check_fhir_server(url, (), allow_any_loopback=True) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.evil.com/fhir",
        "http://127.0.0.1.evil.com/fhir",
        "http://127.0.0.1@evil.com/fhir",
        "http://evil.com#@127.0.0.1/fhir",
        "http://[::2]/fhir",
        "http://10.0.0.1/fhir",
    ],
)
def test_demo_mode_admits_no_loopback_look_alike(url):
    with pytest.raises(FhirServerNotAllowedError):
        check_fhir_server(url, (), allow_any_loopback=True)


def test_an_unusable_allowlist_entry_matches_nothing_and_is_logged(caplog):
    assert parse_allowlist(["not a url", "https://ehr.org/fhir"]) == (Origin("https", "ehr.org", 443, "/fhir"),)
    assert "ignored" in caplog.text
    with pytest.raises(FhirServerNotAllowedError):
        check_fhir_server("https://ehr.org/fhir", ("https://ehr.org@x/fhir",))


def test_next_links_may_carry_a_query_but_nothing_else_ambiguous():
    assert Origin.parse("https://ehr.org/fhir?page=2", allow_query=True).path == "/fhir"
    with pytest.raises(FhirServerNotAllowedError):
        Origin.parse("https://ehr.org/fhir?page=2#x", allow_query=True)


def test_same_origin_compares_scheme_host_and_port_only():
    base = Origin.parse("https://ehr.org/fhir")
    assert Origin.parse("https://EHR.org:443/other").same_origin(base)
    assert not Origin.parse("https://ehr.org:8443/fhir").same_origin(base)
    assert not Origin.parse("http://ehr.org/fhir").same_origin(base)
