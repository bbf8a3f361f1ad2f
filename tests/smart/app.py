"""hcc-cds served for the SMART tier, and what an EHR does with it: call the hook, follow a card's smart link.

:func:`served_smart_app` starts ``hcc-cds serve`` (demo mode: any loopback ``iss``) with the SMART client id the
launcher accepts and the stand-in EHR's origin as the frame ancestor. :func:`open_app` is a browser without a
screen (httpx with a cookie jar, following redirects): the EHR launch, authorize, callback and the app's page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.api.hook_requests import SERVICE_ID, patient_view
from tests.integration.fhir_server import free_port
from tests.served import ServedApp, served_hcc_cds
from tests.smart.conftest import SmartStack

CLIENT_ID = "hcc-cds"


@contextmanager
def served_smart_app(workdir: Path, *, frame_ancestors: str = "'self'") -> Iterator[ServedApp]:
    port = free_port()
    env = {
        "HCC_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HCC_DATABASE_URL": f"sqlite:///{workdir}/hcc.sqlite3",
        "HCC_SMART_CLIENT_ID": CLIENT_ID,
        "HCC_SMART_FRAME_ANCESTORS": frame_ancestors,
        "HCC_PURGE_INTERVAL_MINUTES": "0",
    }
    with served_hcc_cds(env, port=port) as app:
        yield app


def patient_view_cards(app: ServedApp, patient: str, fhir_server: str) -> list[dict]:
    """The cards of a patient-view hook call reading ``fhir_server`` (no token: sekmet through the proxy)."""
    answer = httpx.post(f"{app.base_url}/cds-services/{SERVICE_ID}", json=patient_view(patient, fhir_server=fhir_server),
                        timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["cards"]


def smart_link(cards: list[dict]) -> dict:
    links = [link for card in cards for link in card.get("links", []) if link.get("type") == "smart"]
    assert links, f"no smart link on the cards: {cards}"
    return links[0]


def open_app(stack: SmartStack, link_url: str, patient: str, **options: str) -> tuple[httpx.Client, httpx.Response]:
    """Launch the app as the EHR would (``iss`` and ``launch`` added to the link's URL) in a cookie-keeping client
    that follows the redirects; the client (to post the form with the session's cookie) and the last answer."""
    browser = httpx.Client(follow_redirects=True, timeout=30)
    return browser, browser.get(stack.launch_url(link_url, patient=patient, **options))


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name} on the page"
    return match.group(1)
