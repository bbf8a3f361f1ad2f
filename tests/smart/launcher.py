"""The real SMART App Launcher (smart-on-fhir/smart-launcher-v2, Node) as a test EHR and authorization server.

What it is and how it behaves is in ``docs/design/issue-23-smart-app.md`` section 1. In short:

* It runs from a copy of ``tests/vendor/smart-launcher`` (fallback: the workspace's ``shared/vendor`` copy) in
  ``.cache/smart-launcher/<hash>`` (gitignored), where ``npm ci`` runs once; later runs reuse it. A file lock keeps two
  pytest processes from installing into the same directory at once. The hash covers the lock file and the sources,
  so an edited copy gets a fresh install.
* Without ``node``/``npm`` the tests are skipped locally, and fail in CI (``CI`` set), which must run them.
* A launcher process proxies ``/v/r4/fhir`` to one upstream (``FHIR_SERVER_R4``); token lifetime is per process
  (``ACCESS_TOKEN_LIFETIME``, minutes).
* Its ``/launcher`` endpoint cannot express ``launch`` (encounter ``AUTO`` fails against sekmet), so the test builds the
  launch itself (:func:`encode_launch`, the array of ``src/isomorphic/codec.ts``) and opens the app's launch URL
  with ``iss`` and ``launch`` (:func:`launch_url`), as an EHR would.

Gaps of the launcher, worked around by the tests: ``request_expired_token``/``request_invalid_token`` do nothing to
FHIR calls in the code flow (use a launcher with a short token life); there is no ``appContext`` and no
``access_denied`` simulation; its FHIR proxy strips ``Authorization`` (sekmet runs without auth behind it) and
checks neither scope nor patient; a 403 from the FHIR side needs the fault proxy.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from tests.integration.fhir_server import free_port

REPO = Path(__file__).resolve().parents[2]
# a copy ships with the tests so a clean clone (CI) runs this tier; the workspace's shared/vendor copy is the fallback
VENDOR = next(
    (p for p in (REPO / "tests" / "vendor" / "smart-launcher", REPO.parent / "shared" / "vendor" / "smart-launcher")
     if p.is_dir()),
    REPO / "tests" / "vendor" / "smart-launcher",
)
CACHE = REPO / ".cache" / "smart-launcher"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
INSTALL_TIMEOUT_SECONDS = 900
START_TIMEOUT_SECONDS = 60
SKIPPED_IN_COPY = {"node_modules", "test", "public", ".git"}  # not needed by the backend; node_modules is ours

# src/isomorphic/codec.ts: the indexes of launch_type, client_type and pkce in the encoded array
LAUNCH_TYPES = ("provider-ehr", "patient-portal", "provider-standalone", "patient-standalone", "backend-service")
CLIENT_TYPES = ("public", "confidential-symmetric", "confidential-asymmetric", "backend-service")
PKCE_VALIDATION = ("none", "auto", "always")


class NodeMissing(RuntimeError):
    """``node`` or ``npm`` is not on PATH (skip locally, fail in CI)."""


def node_missing_reason() -> str | None:
    """Why the launcher cannot run here (``None``: node and npm are on PATH)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install nodejs npm): the SMART launcher needs Node >= 16"
    return None


# --- install ------------------------------------------------------------------------------------------------------


def _source_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not SKIPPED_IN_COPY.intersection(p.relative_to(root).parts)
    )


def source_hash(vendor: Path = VENDOR) -> str:
    """A short hash of the lock file and every source file: the cache directory's name."""
    digest = hashlib.sha256()
    for path in _source_files(vendor):
        digest.update(str(path.relative_to(vendor)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _copy_writable(vendor: Path, target: Path) -> None:
    """Copy the sources (the shared folder is read-only; the copy must take node_modules)."""
    for path in _source_files(vendor):
        dest = target / path.relative_to(vendor)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        dest.chmod(dest.stat().st_mode | stat.S_IWUSR)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def installed_launcher(vendor: Path = VENDOR, cache: Path = CACHE) -> Path:
    """The launcher's directory with its dependencies installed (``npm ci`` on the first call only).

    Raises :class:`NodeMissing` without node/npm, ``FileNotFoundError`` without the vendored sources and
    ``RuntimeError`` (with npm's output) when the install fails.
    """
    if reason := node_missing_reason():
        raise NodeMissing(reason)
    if not (vendor / "package-lock.json").is_file():
        raise FileNotFoundError(f"the SMART launcher sources are missing ({vendor})")
    target = cache / source_hash(vendor)
    done = target / ".installed"
    with _locked(cache / f"{target.name}.lock"):
        if done.is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)  # a half-done install of a killed run
        _copy_writable(vendor, target)
        with open(target / "npm-ci.log", "wb") as log:
            result = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=target, stdout=log, stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT_SECONDS, check=False,
            )
        if result.returncode != 0:
            tail = (target / "npm-ci.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"npm ci failed in {target} (exit {result.returncode}):\n{tail}")
        done.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return target


# --- process ------------------------------------------------------------------------------------------------------


@dataclass
class Launcher:
    """One running launcher process; ``base_url`` is its root, ``iss`` the R4 FHIR base apps are launched with."""

    base_url: str
    upstream: str
    process: subprocess.Popen
    log_path: Path

    @property
    def iss(self) -> str:
        return f"{self.base_url}/v/r4/fhir"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the whole process group (ts-node may leave a child on the port otherwise)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_launcher(
    directory: Path, upstream: str, log_path: Path, *, token_lifetime_minutes: float | None = None,
) -> Launcher:
    """Start a launcher on a free port proxying R4 to ``upstream`` (a FHIR base); wait until it answers.

    ``token_lifetime_minutes`` sets ``ACCESS_TOKEN_LIFETIME`` (default: the launcher's 60); 0.05 gives 3-second tokens.
    """
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("ACCESS_TOKEN_LIFETIME", "FHIR_SERVER_R4")},
        "PORT": str(port), "HOST": "127.0.0.1", "NODE_ENV": "production",
        "FHIR_SERVER_R4": upstream.rstrip("/"), "FHIR_SERVER_R2": "", "FHIR_SERVER_R3": "",
    }
    if token_lifetime_minutes is not None:
        env["ACCESS_TOKEN_LIFETIME"] = str(token_lifetime_minutes)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["node", "node_modules/.bin/ts-node", "--skipProject", "--transpile-only", "backend/index.ts"],
            cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    launcher = Launcher(f"http://127.0.0.1:{port}", upstream, process, log_path)
    try:
        _wait_until_up(launcher)
    except BaseException:
        launcher.stop()
        raise
    return launcher


def _wait_until_up(launcher: Launcher) -> None:
    url = f"{launcher.iss}/.well-known/smart-configuration"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if launcher.process.poll() is not None:
            raise RuntimeError(f"the SMART launcher exited ({launcher.process.returncode}):\n{launcher.log_tail()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the SMART launcher did not answer {url} within {START_TIMEOUT_SECONDS} s:\n{launcher.log_tail()}")


# --- launch -------------------------------------------------------------------------------------------------------


def encode_launch(
    *, patient: str, provider: str = "example", auth_error: str = "", fhir_server: str = "", scope: str = "",
    client_id: str = "",
) -> str:
    """The launcher's ``launch`` value for a provider EHR launch, encoded as ``src/isomorphic/codec.ts`` does.

    Fixed: encounter ``NONE`` (no encounter picker; ``AUTO`` fails on sekmet), skip_login and skip_auth (no screens),
    no simulated EHR frame, a public client, PKCE ``always``. ``provider`` must be one id (it becomes the id_token's
    ``fhirUser`` = ``Practitioner/<id>``, and no login screen is shown); ``patient`` one id (no patient picker).
    ``scope``/``client_id`` empty: the launcher accepts what the app asks for.
    """
    options = [
        LAUNCH_TYPES.index("provider-ehr"), patient, provider, "NONE", 1, 1, 0, scope, "", client_id, "",
        auth_error, "", "", CLIENT_TYPES.index("public"), PKCE_VALIDATION.index("always"), fhir_server,
    ]
    raw = json.dumps(options, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_launch(launch: str) -> list:
    """The option array inside a ``launch`` value (for assertions)."""
    return json.loads(base64.urlsafe_b64decode(launch + "=" * (-len(launch) % 4)))


def launch_iss(launcher_base: str, launch: str, *, fhir_server: str = "") -> str:
    """The ``iss`` of a launch: the launcher's R4 base, or with ``fhir_server`` the per-launch ``sim`` form whose FHIR
    calls go to that upstream instead of the process's ``FHIR_SERVER_R4``."""
    base = launcher_base.rstrip("/")
    return f"{base}/v/r4/sim/{launch}/fhir" if fhir_server else f"{base}/v/r4/fhir"


def launch_url(
    app_launch_url: str, launcher_base: str, *, patient: str, provider: str = "example", auth_error: str = "",
    fhir_server: str = "", scope: str = "", client_id: str = "",
) -> str:
    """The URL the EHR opens: ``<app launch url>?iss=<launcher FHIR base>&launch=<encoded options>``.

    ``app_launch_url`` may already carry a query (a deep link, e.g. ``?assessment=…``); ``iss`` and ``launch`` are
    appended to it.
    """
    launch = encode_launch(patient=patient, provider=provider, auth_error=auth_error, fhir_server=fhir_server,
                           scope=scope, client_id=client_id)
    query = urlencode({"iss": launch_iss(launcher_base, launch, fhir_server=fhir_server), "launch": launch})
    return f"{app_launch_url}{'&' if '?' in app_launch_url else '?'}{query}"
