"""The FHIR Bulk Data ``$export`` protocol: kick-off, status polling, NDJSON downloads, error files, cancel.

One request at a time and no state beyond the connection: :mod:`service.screening.sources` decides what to
export, where files go and when to start over. What is transient (429, 502, 503, 504, a dropped connection, a
cut download) is retried here, waiting what ``Retry-After`` asks (seconds or an HTTP date) or a doubling
backoff, never longer than :attr:`RetryPolicy.max_wait_seconds`. What is not (a refused kick-off, a failed
export) raises :class:`BulkExportError` quoting the server's OperationOutcome. A status or file URL answering
404/410 raises :class:`ExportGone`: the server forgot the export (sekmet does on restart, others expire
files), and only a new kick-off helps.

Messages name the export's URLs without their query and quote only OperationOutcome text, redacted; never a
resource line, a token or a signed URL's query.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from service.observability.logging import redact
from service.screening.backend_auth import origin
from service.settings import Settings

log = logging.getLogger("hcc_cds.screening")

Level = Literal["system", "patient", "group"]
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})
NDJSON = "application/fhir+ndjson"
MAX_ERROR_MESSAGES = 100


class BulkExportError(RuntimeError):
    """The export cannot go on; the message says what the server answered."""


class ExportGone(BulkExportError):
    """The server no longer knows the export (status or file URL 404/410): kick off again."""


class _Retry(Exception):
    """A transient failure of one attempt (with the server's Retry-After, if any)."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait and how often to try; ``sleep`` is injectable so tests never really wait."""

    poll_max_seconds: float = 6 * 3600.0
    max_wait_seconds: float = 120.0
    attempts: int = 6  # one request, transient failures included
    download_attempts: int = 3  # one file, cut downloads included
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(poll_max_seconds=settings.bulk_poll_max_seconds, max_wait_seconds=settings.bulk_retry_after_max_seconds)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def format_since(value: str | datetime) -> str:
    """An instant as ``meta.lastUpdated`` is written (UTC, milliseconds, ``Z``): servers such as sekmet compare
    ``_since`` with it as text, so ``2026-12-03T08:42:02+01:00`` must become ``2026-12-03T07:42:02.000Z``."""
    try:
        when = datetime.fromisoformat(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise BulkExportError(f"_since {str(value)[:40]!r} is not an instant (e.g. 2026-12-03T07:42:02.549Z)") from None
    if when.tzinfo is None:
        raise BulkExportError("_since needs a time zone (e.g. 2026-12-03T07:42:02.549Z)")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcome_text(response: httpx.Response) -> str:
    """``: <diagnostics>`` of an OperationOutcome body (redacted), or empty: other bodies are never quoted."""
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return ""
    texts = issue_texts(body)
    return ": " + "; ".join(texts) if texts else ""


def issue_texts(outcome: Any) -> list[str]:
    """Each issue's diagnostics (or details.text) of an OperationOutcome, redacted."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    texts = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if isinstance(text, str) and text:
            severity = issue.get("severity")
            texts.append(redact(f"{severity}: {text}" if isinstance(severity, str) else text))
    return texts


def label(url: str) -> str:
    """A URL as messages show it: without its query (signed URLs carry credentials there)."""
    u = httpx.URL(url)
    return str(u.copy_with(query=None, fragment=None))


class _LineCheck:
    """Counts NDJSON lines as they stream by and keeps only the last one, to tell a whole file from a cut one."""

    def __init__(self) -> None:
        self.lines = 0
        self.last = b""
        self.tail = bytearray()  # bytes after the last newline
        self.needs_newline = False

    def feed(self, chunk: bytes) -> None:
        newlines = chunk.count(b"\n")
        if not newlines:
            self.tail += chunk
            return
        self.lines += newlines
        head, _, rest = chunk.rpartition(b"\n")
        self.last = (bytes(self.tail) + head).rsplit(b"\n", 1)[-1] if newlines == 1 else head.rsplit(b"\n", 1)[-1]
        self.tail = bytearray(rest)

    def problem(self, expected: int | None) -> str | None:
        """Why the file looks cut (None if whole). A final line without newline counts if it is whole JSON."""
        if self.tail.strip():
            if not _is_json(bytes(self.tail)):
                return "its last line is cut"
            self.lines += 1
            self.needs_newline = True
        elif self.lines and not _is_json(self.last):
            return "its last line is not JSON"
        if expected is not None and self.lines != expected:
            return f"{self.lines} lines where the manifest says {expected}"
        return None


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


class BulkClient:
    """``$export`` requests to one FHIR server, through ``http`` (the caller's client), with ``auth`` if any."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: httpx.Auth | None,
        policy: RetryPolicy | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self._progress = on_progress or (lambda _message: None)

    def kickoff_url(self, level: Level, group_id: str | None) -> str:
        if level == "group":
            if not group_id:
                raise BulkExportError("a Group export needs the Group's id")
            return f"{self.base_url}/Group/{group_id}/$export"
        return f"{self.base_url}/Patient/$export" if level == "patient" else f"{self.base_url}/$export"

    async def kickoff(self, level: Level, group_id: str | None, types: tuple[str, ...], since: str | None) -> str:
        """Starts an export; returns its absolute status URL (``Content-Location``)."""
        url = self.kickoff_url(level, group_id)
        params = {"_type": ",".join(types)} if types else {}
        if since:
            params["_since"] = format_since(since)
        headers = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
        response = await self._request("GET", url, auth=self.auth, headers=headers, params=params)
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise BulkExportError(
                f"the $export kick-off at {label(url)} was refused (HTTP {response.status_code})"
                + (outcome_text(response) or ("" if response.status_code != 202 else ": no Content-Location"))
            )
        self._progress(f"export started: {label(url)}")
        return str(response.url.join(location))

    async def poll(self, status_url: str) -> dict[str, Any]:
        """Waits for the export to finish; returns its manifest."""
        deadline = time.monotonic() + self.policy.poll_max_seconds
        polls = 0
        while True:
            response = await self._request("GET", status_url, auth=self.auth, headers={"Accept": "application/json"})
            if response.status_code == 200:
                return _manifest(response)
            if response.status_code in GONE_STATUSES:
                raise ExportGone(f"the server no longer knows the export {label(status_url)} (HTTP {response.status_code})")
            if response.status_code != 202:
                raise BulkExportError(f"the export failed (HTTP {response.status_code} from its status URL)" + outcome_text(response))
            progress = redact(response.headers.get("X-Progress", "in progress")[:80])
            self._progress(f"export {progress}")
            wait = self._wait(response.headers.get("Retry-After"), polls)
            if time.monotonic() + wait > deadline:
                raise BulkExportError(
                    f"the export did not finish within {self.policy.poll_max_seconds:g} s (last progress: {progress})"
                )
            polls += 1
            await self.policy.sleep(wait)

    async def download(self, url: str, path: Path, *, expected: int | None, requires_token: bool) -> int:
        """Streams ``url`` to ``path`` (via ``path.part``, renamed when whole); returns its line count."""
        auth = self.auth if requires_token and origin(url) == origin(self.base_url) else None
        part = path.with_name(path.name + ".part")
        reason = ""
        for attempt in range(self.policy.download_attempts):
            try:
                lines = await self._fetch_to(url, part, auth, expected)
            except _Retry as exc:
                reason = str(exc)
                if attempt + 1 < self.policy.download_attempts:
                    self._progress(f"downloading {label(url)} again: {reason}")
                    await self.policy.sleep(self._wait(exc.retry_after, attempt))
                continue
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, path)
            return lines
        part.unlink(missing_ok=True)
        raise BulkExportError(f"{label(url)} could not be downloaded whole in {self.policy.download_attempts} attempts: {reason}")

    async def _fetch_to(self, url: str, part: Path, auth: httpx.Auth | None, expected: int | None) -> int:
        check = _LineCheck()
        try:
            async with self.http.stream("GET", url, headers={"Accept": NDJSON}, auth=auth) as response:
                if response.status_code in GONE_STATUSES:
                    raise ExportGone(f"the export file {label(url)} is gone (HTTP {response.status_code})")
                if response.status_code in TRANSIENT_STATUSES:
                    raise _Retry(f"HTTP {response.status_code}", response.headers.get("Retry-After"))
                if response.status_code != 200:
                    await response.aread()
                    raise BulkExportError(f"{label(url)} was refused (HTTP {response.status_code})" + outcome_text(response))
                with part.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
                        check.feed(chunk)
                    problem = check.problem(expected)
                    if problem:
                        raise _Retry(f"the file is cut: {problem}")
                    if check.needs_newline:
                        out.write(b"\n")
        except httpx.TransportError as exc:
            raise _Retry(f"the connection failed ({exc.__class__.__name__})") from exc
        return check.lines

    async def error_messages(self, manifest: dict[str, Any]) -> list[str]:
        """The OperationOutcome texts of the manifest's ``error`` files (at most :data:`MAX_ERROR_MESSAGES`).

        Never fatal: an unreadable error file is itself a message. Streamed, and read no further than needed.
        """
        messages: list[str] = []
        use_token = bool(manifest.get("requiresAccessToken"))
        for entry in manifest.get("error") or []:
            url = entry.get("url") if isinstance(entry, dict) else None
            if isinstance(url, str) and len(messages) < MAX_ERROR_MESSAGES:
                auth = self.auth if use_token and origin(url) == origin(self.base_url) else None
                try:
                    messages += await self._error_file(url, auth, MAX_ERROR_MESSAGES - len(messages))
                except httpx.HTTPError as exc:
                    messages.append(f"the error file {label(url)} could not be read ({exc.__class__.__name__})")
        return messages[:MAX_ERROR_MESSAGES]

    async def _error_file(self, url: str, auth: httpx.Auth | None, room: int) -> list[str]:
        messages: list[str] = []
        async with self.http.stream("GET", url, headers={"Accept": NDJSON}, auth=auth) as response:
            if response.status_code != 200:
                return [f"the error file {label(url)} could not be read (HTTP {response.status_code})"]
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                try:
                    messages += issue_texts(orjson.loads(line))
                except orjson.JSONDecodeError:
                    messages.append(f"the error file {label(url)} has a line that is not JSON")
                if len(messages) >= room:
                    break
        return messages

    async def cancel(self, status_url: str) -> bool:
        """Asks the server to drop the export and its files (DELETE); best effort, True if it agreed."""
        try:
            response = await self.http.request("DELETE", status_url, auth=self.auth)
        except (httpx.HTTPError, BulkExportError) as exc:
            log.info("the FHIR server was not reached to cancel an export: %s", exc.__class__.__name__)
            return False
        if response.status_code >= 300:
            log.info("the FHIR server did not cancel an export (HTTP %s)", response.status_code)
            return False
        return True

    async def _request(
        self, method: str, url: str, *, auth: httpx.Auth | None, headers: dict[str, str], params: dict[str, str] | None = None
    ) -> httpx.Response:
        """One request, retried while the answer is transient (429/502/503/504 or a transport error)."""
        attempts = self.policy.attempts
        for attempt in range(attempts):
            try:
                response = await self.http.request(method, url, headers=headers, params=params, auth=auth)
            except httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise BulkExportError(f"{label(url)} could not be reached ({exc.__class__.__name__})") from exc
                await self.policy.sleep(self._wait(None, attempt))
                continue
            if response.status_code in TRANSIENT_STATUSES and attempt + 1 < attempts:
                self._progress(f"the server answered {response.status_code}; waiting")
                await self.policy.sleep(self._wait(response.headers.get("Retry-After"), attempt))
                continue
            if response.status_code == 401:
                raise BulkExportError(
                    (f"the FHIR server refused the access token at {label(url)} (HTTP 401)" if auth else
                     f"{label(url)} asks for authentication (HTTP 401): set HCC_BULK_CLIENT_ID and HCC_BULK_PRIVATE_KEY_FILE")
                    + outcome_text(response)
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, retry_after: str | None, attempt: int) -> float:
        asked = retry_after_seconds(retry_after)
        backoff = 0.5 * 2 ** min(attempt, 16)
        return min(self.policy.max_wait_seconds, backoff if asked is None else asked)


def _manifest(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise BulkExportError("the export's manifest is not JSON") from exc
    outputs = body.get("output") if isinstance(body, dict) else None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("type"), str) and isinstance(o.get("url"), str) for o in outputs
    ):
        raise BulkExportError("the export's manifest has no valid 'output' list (each with 'type' and 'url')")
    return body
