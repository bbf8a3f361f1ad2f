"""Fixtures of the SMART tier: sekmet behind a fault proxy, behind two real SMART launchers.

::

    sekmet (no auth)  <-  FaultProxy (/fhir)  <-  launcher A (60-minute tokens)
                                              <-  launcher B (3-second tokens: the expired-token tests)

sekmet advertises the proxy's ``/fhir`` (the launchers' ``FHIR_SERVER_R4``), so every URL in a body goes through the
launcher's rewriting. ``smart_stack.load(bundle)`` posts straight to sekmet (not through the proxy); the per-test
``smart_proxy`` fixture clears the proxy's faults and log.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.fault_proxy import FaultProxy
from tests.integration.fhir_server import FhirServer, free_port, start_fhir_server
from tests.smart.launcher import IN_CI, Launcher, NodeMissing, installed_launcher, launch_url, start_launcher

SHORT_TOKEN_MINUTES = 0.05  # the launcher's ACCESS_TOKEN_LIFETIME for launcher B: expires_in 3 s


@dataclass
class SmartStack:
    sekmet: FhirServer  # ``direct_url``: sekmet itself; ``base_url``: through the proxy
    proxy: FaultProxy
    launcher: Launcher  # A: the launcher's default 60-minute tokens
    short_launcher: Launcher  # B: 3-second tokens

    def load(self, bundle: dict) -> dict:
        """Load a transaction Bundle into sekmet directly (no proxy, no launcher); sekmet's transaction-response."""
        return self.sekmet.load(bundle)

    def launch_url(self, app_launch_url: str, *, patient: str, short: bool = False, **options: str) -> str:
        """:func:`tests.smart.launcher.launch_url` on launcher A (B with ``short``)."""
        launcher = self.short_launcher if short else self.launcher
        return launch_url(app_launch_url, launcher.base_url, patient=patient, **options)

    def logs(self) -> list[tuple[str, str]]:
        """(title, tail) of each process's log, for a failure report."""
        tails = [(f"SMART launcher {name} log", launcher.log_tail())
                 for name, launcher in (("A", self.launcher), ("B", self.short_launcher))]
        server_log = self.sekmet.workdir / "server.log"
        tails.append(("sekmet log", server_log.read_text(errors="replace")[-3000:] if server_log.exists() else ""))
        return tails


@pytest.fixture(scope="session")
def launcher_dir() -> Path:
    """The installed launcher (``npm ci`` once, cached in ``.cache/smart-launcher``). Skipped locally without
    node/npm; a failure in CI, which must run these tests."""
    try:
        return installed_launcher()
    except NodeMissing as missing:
        if IN_CI:
            pytest.fail(f"CI must run the SMART tests: {missing}")
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def smart_stack(launcher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartStack]:
    workdir = tmp_path_factory.mktemp("smart")
    port = free_port()
    proxy = FaultProxy(f"http://127.0.0.1:{port}").start()
    started: list[Launcher] = []
    sekmet = None
    try:
        sekmet = start_fhir_server(workdir / "sekmet", port=port, base_url=f"{proxy.url}/fhir")
        upstream = f"{proxy.url}/fhir"
        started.append(start_launcher(launcher_dir, upstream, workdir / "launcher-a.log"))
        started.append(start_launcher(launcher_dir, upstream, workdir / "launcher-b.log",
                                      token_lifetime_minutes=SHORT_TOKEN_MINUTES))
        yield SmartStack(sekmet, proxy, started[0], started[1])
    finally:
        for launcher in started:
            launcher.stop()
        if sekmet is not None:
            sekmet.stop()
        proxy.stop()


@pytest.fixture
def smart_proxy(smart_stack: SmartStack) -> FaultProxy:
    """The stack's fault proxy with no faults scripted and an empty log."""
    smart_stack.proxy.faults, smart_stack.proxy.log = {}, []
    return smart_stack.proxy


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used the stack gets the launchers' and sekmet's log tails in its report."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("smart_stack")
    if report.failed and isinstance(stack, SmartStack):
        for title, tail in stack.logs():
            report.sections.append((title, tail))
    return report
