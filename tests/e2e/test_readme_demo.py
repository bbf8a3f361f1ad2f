"""README's sample request against the installed ``hcc-cds serve`` running as its own process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.fhir_server import free_port
from tests.served import served_hcc_cds

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def sample_request() -> str:
    block = README.split("<!-- sample-request -->", 1)[1].split("<!-- /sample-request -->", 1)[0]
    return re.search(r"```sh\n(.*?)```", block, re.S).group(1)


def test_readme_has_exactly_two_set_up_commands():
    setup = README.split("## Set up", 1)[1].split("With the demo running", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [c.split("#")[0].strip() for c in commands] == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.fixture(scope="module")
def served_demo():
    with served_hcc_cds() as app:
        yield app.port
    assert "DEMO MODE" in app.output, "the demo start-up warning is logged"


def test_readme_sample_request_returns_a_card(served_demo):
    command = sample_request().replace("127.0.0.1:8080", f"127.0.0.1:{served_demo}")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    body = httpx.Response(200, content=out.encode()).json()
    assert len(body["cards"]) == 1 and "consider sorafenib" in body["cards"][0]["summary"]


def test_healthz_says_demo_mode(served_demo):
    assert httpx.get(f"http://127.0.0.1:{served_demo}/healthz").json()["mode"] == "demo"


def test_production_mode_without_trusted_clients_refuses_to_start_with_a_clear_message():
    exe = Path(sys.executable).with_name("hcc-cds")
    env = {"HCC_MODE": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(exe), "serve", "--port", str(free_port())], capture_output=True, text=True, env=env,
                            timeout=30)
    assert result.returncode == 2
    assert "HCC_MODE=production cannot start" in result.stderr and "HCC_TRUSTED_CLIENTS is not set" in result.stderr
