"""A stand-in EHR screen for the browser test: the patient's CDS cards and an ~800 px app frame.

A real EHR shows the cards a hook returned and, when the clinician follows a card's ``smart`` link, opens the app
in a frame with ``iss`` and ``launch`` added to the link's URL. Here the test gives the page the cards and the launch
URL each ``smart`` link leads to (built by the SMART launcher helper): the link's click loads the frame, nothing else.
Served on 127.0.0.1 by the standard library (the app's CSP ``frame-ancestors`` names this origin).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.integration.fhir_server import free_port

FRAME_WIDTH = 800


def ehr_page(patient: str, cards: list[dict], launch_urls: dict[str, str]) -> str:
    """The EHR screen: ``launch_urls`` maps a smart link's URL to the URL the EHR opens in the frame."""
    items = []
    for card in cards:
        links = []
        for link in card.get("links", []):
            target = launch_urls.get(link["url"]) if link.get("type") == "smart" else link["url"]
            if target is None:
                continue
            frame = ' target="app"' if link.get("type") == "smart" else ' target="_blank" rel="noopener"'
            links.append(f'<a href="{html.escape(target)}"{frame}>{html.escape(link["label"])}</a>')
        items.append(
            f'<li class="card"><strong>{html.escape(card["summary"])}</strong> '
            f'<span class="links">{" · ".join(links)}</span></li>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>EHR</title>"
        "<style>body{font-family:sans-serif;margin:0;display:flex}aside{width:22rem;padding:.5rem}"
        f"iframe{{width:{FRAME_WIDTH}px;height:1400px;border:1px solid #888}}</style></head><body>"
        f"<aside><h1>Chart: {html.escape(patient)}</h1><ul>{''.join(items)}</ul></aside>"
        '<iframe name="app" title="hcc-cds app"></iframe></body></html>'
    )


class EhrScreen:
    """What the stand-in EHR serves at its URL: :meth:`show` replaces the page (the URL is known first, so the
    app can be configured with its origin before the cards exist)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.origin = url.rstrip("/")
        self.body = b"<!doctype html><title>EHR</title><p>no patient open"

    def show(self, page: str) -> None:
        self.body = page.encode()


@contextmanager
def served_ehr() -> Iterator[EhrScreen]:
    """Serve an :class:`EhrScreen` on ``http://127.0.0.1:<port>/`` for the duration."""
    port = free_port()
    screen = EhrScreen(f"http://127.0.0.1:{port}/")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = screen.body
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="fake-ehr")
    thread.start()
    try:
        yield screen
    finally:
        server.shutdown()
        server.server_close()
