"""Runs the real FHIR test server (sekmet-fhir 0.1.1, in its own venv) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = ROOT / ".venv-fhir" / "bin" / "sekmet"
START_TIMEOUT_SECONDS = 90


def sekmet_binary() -> Path:
    path = Path(os.environ.get("HCC_TEST_SEKMET", DEFAULT_BIN))
    if not path.exists():
        raise FileNotFoundError(
            f"the FHIR test server is not installed at {path}: run `make test` (it creates .venv-fhir with "
            "sekmet-fhir==0.1.1) or set HCC_TEST_SEKMET"
        )
    return path


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out by itself (to outgoing connections and to ``bind(("", 0))``)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOWEST_PORT = 10000
_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 for a test server to bind a moment later.

    Asking the kernel for "any free port" and releasing it races: the kernel may hand the same port to the next such
    request (a proxy started just after the server it fronts, as CI once saw) or to an outgoing connection before the
    server binds. So the port comes from below the kernel's ephemeral range, which neither of those ever takes, is
    never handed out twice in this process, and is free when handed out. The scan starts at an offset derived from
    the process id so that two test runs on one machine rarely probe the same ports.
    """
    span = _ephemeral_low() - _LOWEST_PORT
    start = (os.getpid() * 7919) % span
    for step in range(span):
        port = _LOWEST_PORT + (start + step) % span
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 between {_LOWEST_PORT} and {_LOWEST_PORT + span}")


@dataclass
class FhirServer:
    base_url: str  # what the server advertises (a fault proxy's URL when one stands in front)
    process: subprocess.Popen
    workdir: Path
    direct_url: str = ""  # the server itself, bypassing any proxy

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/fhir")

    def load(self, transaction: dict, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = httpx.post(self.direct_url or self.base_url, json=transaction, headers=headers, timeout=60)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_fhir_server(
    workdir: Path,
    *,
    bearer_tokens: list[str] | None = None,
    smart_clients: list[dict] | None = None,
    token_lifetime: int | None = None,
    port: int | None = None,
    base_url: str | None = None,
) -> FhirServer:
    """sekmet on ``port`` (default: a free one), advertising ``base_url`` (default: itself).

    ``smart_clients`` (sekmet's ``{client_id, jwks | jwks_url | public_key_path, scopes}``) turn on SMART Backend
    Services next to the static ``bearer_tokens`` (so a test can still load data with a static token);
    ``token_lifetime`` is the access tokens' life in seconds. ``base_url`` lets a proxy stand in front: sekmet then
    names the proxy in every URL it hands out (status, files, token endpoint, token audience).
    """
    port = port or free_port()
    direct_url = f"http://127.0.0.1:{port}/fhir"
    base_url = base_url or direct_url
    config: dict = {
        "base_url": base_url,
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "data"),
        "simulator": {"enabled": False},
        "log_inbound": False,
        "own_private_key_path": str(workdir / "keys" / "sekmet_private.pem"),
    }
    auth: dict = {}
    if bearer_tokens:
        auth = {"types": ["bearer"], "tokens": bearer_tokens}
    if smart_clients:
        auth = {"types": ["smart", *auth.get("types", [])], "tokens": bearer_tokens or [], "smart_clients": smart_clients}
    if auth and token_lifetime:
        auth["token_lifetime"] = token_lifetime
    if auth:
        config["server_auth"] = auth
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "settings.yaml").write_text(yaml.safe_dump(config))
    log = open(workdir / "server.log", "wb")
    process = subprocess.Popen(
        [str(sekmet_binary()), "serve", "--config", str(workdir / "settings.yaml")],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")},
    )
    headers = {"Authorization": f"Bearer {bearer_tokens[0]}"} if bearer_tokens else {}
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"FHIR test server exited: {(workdir / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{direct_url}/metadata", headers=headers, timeout=2).status_code == 200:
                return FhirServer(base_url, process, workdir, direct_url)
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"FHIR test server did not start within {START_TIMEOUT_SECONDS} s")


def transaction_of(resources: list[dict]) -> dict:
    """A transaction Bundle that PUTs each resource by its id."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ],
    }


def load_resources(server: FhirServer, resources: list[dict], token: str | None = None) -> dict:
    """Load ``resources`` into ``server`` in one transaction (PUT by id)."""
    return server.load(transaction_of(resources), token=token)


def search_bundle(server: FhirServer, path: str, token: str | None = None) -> dict:
    """One page of a search, straight from the server (for building paginated prefetch)."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = httpx.get(f"{server.base_url}/{path}", headers=headers, timeout=30)
    r.raise_for_status()
    return r.json()
