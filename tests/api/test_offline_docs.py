"""``/docs`` and ``/redoc`` load every script, style sheet and icon from the app itself: no CDN, no fonts from
elsewhere (issue 19; a hospital network without internet access still gets its API docs)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "data-src", "srcset") and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # and any URL the page's inline script hands to Swagger UI (url: '...', configUrl, ...)
    parser.urls += re.findall(r"""\burl\s*:\s*['"]([^'"]+)['"]""", html)
    return parser.urls


@pytest.mark.parametrize(("page", "expected_assets"), [
    ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
    ("/redoc", {"redoc.standalone.js", "favicon.png"}),
])
def test_the_docs_pages_and_every_asset_they_reference_come_from_the_app(client, page, expected_assets):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), "the page names another host"
    assert "fonts.googleapis" not in html and "cdn." not in html
    urls = references(html)
    assert urls, "no assets found: the parser or the page changed"
    fetched = set()
    for url in urls:
        parts = urlsplit(urljoin(f"http://testserver{page}", url))
        assert parts.netloc == "testserver", f"{url} is not served by the app"
        asset = client.get(parts.path)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
        name = parts.path.rsplit("/", 1)[-1]
        suffix = name[name.rfind("."):] if "." in name else ""
        if suffix in EXPECTED_TYPES:
            assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
            fetched.add(name)
    assert fetched == expected_assets
    assert "/openapi.json" in urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_forbid_the_browser_to_load_anything_from_elsewhere(client, page):
    # ReDoc's footer asks a CDN for its logo whatever the options: the policy keeps the browser from it
    policy = client.get(page).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'" and directives["img-src"] == "'self' data:"
    assert all("http" not in value and "*" not in value for value in directives.values())


def test_the_swagger_ui_asks_no_public_validator(client):
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_assets_are_the_real_bundles_and_nothing_else_is_served_from_there(client):
    assert b"SwaggerUIBundle" in client.get("/docs/static/swagger-ui-bundle.js").content
    assert b"Redoc" in client.get("/docs/static/redoc.standalone.js").content
    assert client.get("/docs/static/../settings.py").status_code == 404
    assert client.get("/docs/static/%2e%2e/%2e%2e/pyproject.toml").status_code == 404
    assert client.get("/docs/static/nothing.js").status_code == 404


def test_the_oauth2_redirect_page_is_still_served(client):
    assert client.get("/docs/oauth2-redirect").status_code == 200
