"""``hcc-cds serve --workers 2``: uvicorn's workers each build the app from the environment; the parent
only checks the configuration and never builds the app itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.hook_requests import SERVICE_ID
from tests.e2e.test_readme_demo import sample_request
from tests.integration.fhir_server import free_port
from tests.served import served_hcc_cds

# the app built in a process (models, value sets, demo data, benchmark tables) takes ~110 MiB resident;
# a parent that only checked the settings and runs uvicorn's supervisor stays well under this
PARENT_WITHOUT_APP_MIB = 90


def _bare_env(**values: str) -> dict[str, str]:
    """Only PATH (and PYTHONPATH, which says which tree's code runs) besides ``values``."""
    return {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}, **values}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_two_workers_serve_hooks_and_the_parent_does_not_build_the_app(tmp_path):
    with served_hcc_cds({"HCC_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.sqlite3'}"}, args=("--workers", "2")) as app:
        command = sample_request().replace("127.0.0.1:8080", f"127.0.0.1:{app.port}")
        with httpx.Client(base_url=app.base_url, timeout=30) as client:
            assert client.get("/healthz").json()["mode"] == "demo"
            for _ in range(6):  # several calls, on new connections: whichever worker takes them answers
                out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True)
                cards = httpx.Response(200, content=out.stdout.encode()).json()["cards"]
                assert len(cards) == 1 and "consider sorafenib" in cards[0]["summary"]
            assert SERVICE_ID in client.get("/cds-services").text
        workers = _children(app.process.pid)
        parent_mib = _rss_mib(app.process.pid)
    assert app.output.count("Application startup complete") == 2, app.output[-2000:]
    assert app.output.count("DEMO MODE") == 2, "each worker logs the demo warning from its own app"
    assert len(workers) >= 2
    assert parent_mib < PARENT_WITHOUT_APP_MIB, f"the parent holds {parent_mib:.0f} MiB: it built the app"


def test_a_bad_configuration_fails_in_the_parent_before_any_worker_starts():
    exe = Path(sys.executable).with_name("hcc-cds")
    env = _bare_env(HCC_MODE="production")
    result = subprocess.run(
        [str(exe), "serve", "--workers", "2", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "HCC_MODE=production cannot start" in result.stderr and "HCC_TRUSTED_CLIENTS is not set" in result.stderr
    assert "Application startup complete" not in result.stderr + result.stdout


def test_an_unreadable_clinical_overrides_file_fails_in_the_parent_with_workers(tmp_path):
    exe = Path(sys.executable).with_name("hcc-cds")
    env = _bare_env(HCC_CLINICAL_OVERRIDES=str(tmp_path / "missing.yaml"))
    result = subprocess.run(
        [str(exe), "serve", "--workers", "2", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "HCC_CLINICAL_OVERRIDES: cannot read" in result.stderr
