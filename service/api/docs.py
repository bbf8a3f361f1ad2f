"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with every script, style sheet and icon served by the app itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from Google): a hospital network
without internet access would show a blank page, and every visit would tell a third party who reads the API
docs. The dist files come from the pinned PyPI package ``fastapi-offline`` (Swagger UI and ReDoc under their own
licences, listed in its LICENSE) and are served read-only under ``/docs/static``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PATH = "/docs/static"
# The pages may load nothing from elsewhere: ReDoc's footer still asks a CDN for its logo (no option turns that
# off), which this policy blocks in the browser. Inline script and styles: Swagger UI's start-up script, ReDoc's
# styled components; blob: for ReDoc's search worker.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def asset_directory() -> Path:
    folder = Path(str(resources.files("fastapi_offline").joinpath("static")))
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:  # a changed package layout must fail at start-up, not as a blank page
        raise RuntimeError(f"fastapi-offline ships no {', '.join(missing)} in {folder}")
    return folder


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Mount the assets and add the two pages (the app must be built with ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC_PATH, StaticFiles(directory=asset_directory()), name="docs-static")
    router = APIRouter(include_in_schema=False)
    oauth2_redirect_url = f"{docs_url}/oauth2-redirect"

    def static(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{STATIC_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    def self_only(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page

    @router.get(docs_url)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return self_only(get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=static(request, "swagger-ui-bundle.js"),
            swagger_css_url=static(request, "swagger-ui.css"),
            swagger_favicon_url=static(request, "favicon.png"),
            oauth2_redirect_url=f"{request.scope.get('root_path', '')}{oauth2_redirect_url}",
            # no badge fetched from the public validator
            swagger_ui_parameters={"validatorUrl": None},
        ))

    @router.get(oauth2_redirect_url)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(redoc_url)
    async def redoc(request: Request) -> HTMLResponse:
        return self_only(get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=static(request, "redoc.standalone.js"),
            redoc_favicon_url=static(request, "favicon.png"),
            with_google_fonts=False,
        ))

    app.include_router(router)
