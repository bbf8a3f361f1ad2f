"""Where a screening's NDJSON comes from: a FHIR server's ``$export``, or NDJSON files already exported.

Both entry points return :class:`ExportedFiles`: complete local NDJSON files with their resource type, ready
for the partitioner. A FHIR export is resumable: ``dest/export.json`` keeps each export's status URL, its
manifest and the files already downloaded (a file is recorded only once it is whole and renamed), so calling
again on the same ``dest`` downloads only what is missing, or kicks off again when the server forgot the
export (sekmet does on restart; others let file URLs expire).

**Lesion completion.** Some servers cannot put BodyStructure in a Patient or Group export (sekmet indexes no
search parameter for it, so its patient compartment never holds one). Without lesions, mRECIST and TACE
resistance would be ``unknown`` for everyone. So when a Patient/Group export asked for BodyStructure and has
none, one system-level ``$export?_type=BodyStructure`` is added, and a note says so; the partitioner keeps only
in-scope patients' lesions.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from service.mapping import R4B_MODELS
from service.screening.bulk_client import BulkClient, BulkExportError, ExportGone, RetryPolicy, issue_texts, label

STATE_FILE = "export.json"
STATE_VERSION = 1
DOWNLOADS_IN_FLIGHT = 4
KICKOFFS_PER_EXPORT = 2  # the first one and one more when the server forgot the export
LESION_TYPE = "BodyStructure"
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]+$")
_FOLDER_FILE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)(?:[^A-Za-z][^/]*)?\.ndjson(?P<gz>\.gz)?$")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportedFiles:
    files: tuple[tuple[str, Path], ...]  # (resourceType, complete local NDJSON file), by type then name
    transaction_time: str | None  # the manifest's transactionTime (the next run's _since)
    notes: tuple[str, ...]  # what was done beyond the plain export, e.g. lesion completion
    errors: tuple[str, ...]  # messages of the manifest's error files (OperationOutcome NDJSON)


def export_types() -> tuple[str, ...]:
    """The resource types the mapping reads: what ``_type`` asks for."""
    return tuple(R4B_MODELS)


class _State:
    """``dest/export.json``: the request it belongs to and, per export (main, lesions), how far it got."""

    def __init__(self, dest: Path, request: dict[str, Any], progress: Progress) -> None:
        self.path = dest / STATE_FILE
        self.dest = dest
        saved = _read_json(self.path)
        if saved.get("version") == STATE_VERSION and saved.get("request") == request:
            self.exports: dict[str, dict[str, Any]] = saved.get("exports") or {}
            if self.exports:
                progress("resuming the export recorded in export.json")
        else:
            if saved:
                progress("export.json belongs to another request: starting afresh")
                for entry in (saved.get("exports") or {}).values():
                    self.forget_files(entry)
            self.exports = {}
        self.request = request

    def save(self) -> None:
        tmp = self.path.with_name(STATE_FILE + ".part")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "request": self.request, "exports": self.exports}, indent=1))
        os.replace(tmp, self.path)

    def forget_files(self, entry: dict[str, Any]) -> None:
        for done in (entry.get("files") or {}).values():
            (self.dest / done["name"]).unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class _Done:
    files: list[tuple[str, Path, int]]  # (type, path, lines)
    manifest: dict[str, Any]
    errors: list[str]


class _Export:
    """One export (kick-off, poll, downloads, error files) recorded in the state under ``key``."""

    def __init__(self, client: BulkClient, state: _State, progress: Progress) -> None:
        self.client = client
        self.state = state
        self.progress = progress

    async def run(self, key: str, start: Callable[[], Awaitable[str]] | None, file_suffix: str = "") -> _Done:
        """``start()`` kicks off and returns the status URL; None: the saved status URL is all there is."""
        entry = self.state.exports.setdefault(key, {})
        kickoffs = 0
        while True:
            try:
                if not entry.get("status_url"):
                    if start is None:
                        raise BulkExportError("no status URL to read the export from")
                    entry["status_url"] = await start()
                    kickoffs += 1
                    self.state.save()
                return await self._finish(entry, file_suffix)
            except asyncio.CancelledError:  # the run was stopped: the server need not finish the export
                if start is not None and entry.get("status_url"):
                    await asyncio.shield(self.client.cancel(entry["status_url"]))
                raise
            except ExportGone as exc:
                if start is None or kickoffs >= KICKOFFS_PER_EXPORT:
                    raise BulkExportError(f"{exc}; giving up after {kickoffs} kick-off(s)") from exc
                self.progress(f"{exc}: starting the export again")
                self.state.forget_files(entry)
                entry.clear()
                self.state.save()

    async def _finish(self, entry: dict[str, Any], file_suffix: str) -> _Done:
        if entry.get("manifest") is None:
            entry["manifest"] = await self.client.poll(entry["status_url"])
            entry["files"] = {}
            self.state.save()
        manifest = entry["manifest"]
        files = await self._download_all(entry, file_suffix)
        if entry.get("errors") is None:
            entry["errors"] = await self.client.error_messages(manifest)
            self.state.save()
        return _Done(files, manifest, list(entry["errors"]))

    async def _download_all(self, entry: dict[str, Any], suffix: str) -> list[tuple[str, Path, int]]:
        manifest, done = entry["manifest"], entry.setdefault("files", {})
        requires_token = bool(manifest.get("requiresAccessToken"))
        gate = asyncio.Semaphore(DOWNLOADS_IN_FLIGHT)

        async def one(rtype: str, output: dict[str, Any], name: str) -> tuple[str, Path, int]:
            path = self.state.dest / name
            if output["url"] in done and done[output["url"]]["name"] == name and path.is_file():
                return rtype, path, done[output["url"]]["lines"]
            count = output.get("count")
            async with gate:
                lines = await self.client.download(
                    output["url"], path, expected=count if isinstance(count, int) else None, requires_token=requires_token
                )
            done[output["url"]] = {"name": name, "lines": lines}
            self.state.save()
            self.progress(f"downloaded {name} ({lines} resources)")
            return rtype, path, lines

        results = await asyncio.gather(*(one(*item) for item in _file_names(manifest, suffix)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:  # a forgotten export first: it is the one a new kick-off cures
            raise next((f for f in failures if isinstance(f, ExportGone)), failures[0])
        return [r for r in results if not isinstance(r, BaseException)]


def _file_names(manifest: dict[str, Any], suffix: str) -> list[tuple[str, dict[str, Any], str]]:
    """(type, output entry, local file name ``<Type>-<suffix>N.ndjson``) of each manifest output."""
    numbered: dict[str, int] = {}
    items = []
    for output in manifest["output"]:
        rtype = output["type"]
        if not _TYPE_NAME.match(rtype):
            raise BulkExportError(f"the export's manifest names an unexpected resource type {rtype[:60]!r}")
        numbered[rtype] = numbered.get(rtype, 0) + 1
        items.append((rtype, output, f"{rtype}-{suffix}{numbered[rtype]}.ndjson"))
    return items


async def export_from_fhir(
    base_url: str,
    dest: Path,
    *,
    level: Literal["system", "patient", "group"],
    group_id: str | None,
    since: str | None,
    auth: httpx.Auth | None,
    on_progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    types: tuple[str, ...] | None = None,
    complete_lesions: bool = True,
    policy: RetryPolicy | None = None,
    timeout_seconds: float = 60.0,
) -> ExportedFiles:
    """Exports ``types`` (default: :func:`export_types`) at ``level`` into ``dest``; resumable (module docstring)."""
    types = tuple(types or export_types())
    progress = on_progress or (lambda _message: None)
    dest.mkdir(parents=True, exist_ok=True)
    request = {"base_url": base_url.rstrip("/"), "level": level, "group_id": group_id, "since": since, "types": list(types)}
    state = _State(dest, request, progress)
    async with httpx.AsyncClient(transport=transport, timeout=timeout_seconds, follow_redirects=False) as http:
        client = BulkClient(http, base_url, auth, policy, progress)
        export = _Export(client, state, progress)
        main = await export.run("main", lambda: client.kickoff(level, group_id, types, since))
        files, notes, errors = list(main.files), [], list(main.errors)
        if complete_lesions and level != "system" and LESION_TYPE in types and not _has(files, LESION_TYPE):
            lesions = await export.run("lesions", lambda: client.kickoff("system", None, (LESION_TYPE,), since), "system-")
            files += lesions.files
            errors += lesions.errors
            found = sum(lines for _type, _path, lines in lesions.files)
            notes.append(
                f"BodyStructure absent from the {level.title()} export: {found} taken from a system-level export "
                "(only in-scope patients' are kept)"
            )
        await _release(client, state)
    return ExportedFiles(
        files=tuple(sorted(((t, p) for t, p, _lines in files), key=lambda f: (f[0], f[1].name))),
        transaction_time=main.manifest.get("transactionTime"),
        notes=tuple(notes),
        errors=tuple(errors),
    )


def _has(files: list[tuple[str, Path, int]], rtype: str) -> bool:
    return any(t == rtype for t, _path, _lines in files)


async def _release(client: BulkClient, state: _State) -> None:
    """Tells the server the files are fetched (DELETE, best effort: a read-only scope may not allow it)."""
    for entry in state.exports.values():
        if entry.get("status_url") and not entry.get("released"):
            await client.cancel(entry["status_url"])
            entry["released"] = True
    state.save()


async def files_from_ndjson(
    location: str,
    dest: Path,
    *,
    auth: httpx.Auth | None = None,
    on_progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
    timeout_seconds: float = 60.0,
) -> ExportedFiles:
    """NDJSON already exported: a local folder, or the http(s) URL of a Bulk Data manifest (``manifest.json``).

    A folder's ``<Type>.ndjson`` / ``<Type><non-letter>….ndjson`` files are used in place (the type is the name's
    leading letters), ``….ndjson.gz`` ones are decompressed into ``dest`` and ``OperationOutcome`` files are read
    as error files. A manifest URL is read like a finished export's status URL: its ``output`` files are
    downloaded into ``dest`` (resumable, the token only on the manifest's origin when ``requiresAccessToken``).
    """
    progress = on_progress or (lambda _message: None)
    if location.startswith(("http://", "https://")):
        return await _files_from_manifest(location, dest, auth, progress, transport, policy, timeout_seconds)
    return _files_from_folder(Path(location), dest, progress)


async def _files_from_manifest(
    url: str,
    dest: Path,
    auth: httpx.Auth | None,
    progress: Progress,
    transport: httpx.AsyncBaseTransport | None,
    policy: RetryPolicy | None,
    timeout_seconds: float,
) -> ExportedFiles:
    dest.mkdir(parents=True, exist_ok=True)
    state = _State(dest, {"manifest_url": label(url)}, progress)
    state.exports.setdefault("main", {})["status_url"] = url
    async with httpx.AsyncClient(transport=transport, timeout=timeout_seconds, follow_redirects=False) as http:
        client = BulkClient(http, url.rsplit("/", 1)[0], auth, policy, progress)
        done = await _Export(client, state, progress).run("main", None)
    return ExportedFiles(
        files=tuple(sorted(((t, p) for t, p, _lines in done.files), key=lambda f: (f[0], f[1].name))),
        transaction_time=done.manifest.get("transactionTime"),
        notes=(),
        errors=tuple(done.errors),
    )


def _files_from_folder(folder: Path, dest: Path, progress: Progress) -> ExportedFiles:
    if not folder.is_dir():
        raise BulkExportError(f"{folder} is not a folder of NDJSON files")
    files, errors, skipped = [], [], []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        match = _FOLDER_FILE.match(path.name)
        if not path.is_file() or not match:
            skipped.append(path.name)
            continue
        if match["gz"]:
            path = _gunzip(path, dest, progress)
        if match["type"] == "OperationOutcome":
            errors += _folder_errors(path)
        else:
            files.append((match["type"], path))
    if not files:
        raise BulkExportError(f"no <Type>.ndjson files in {folder}")
    notes = (f"{len(skipped)} entries of {folder} skipped (not <Type>….ndjson): {', '.join(skipped[:10])}",) if skipped else ()
    return ExportedFiles(tuple(sorted(files, key=lambda f: (f[0], f[1].name))), None, notes, tuple(errors))


def _gunzip(path: Path, dest: Path, progress: Progress) -> Path:
    """``dest/<name without .gz>``, decompressed once (via ``.part``, so a present file is whole)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / path.name[: -len(".gz")]
    if not target.is_file():
        part = target.with_name(target.name + ".part")
        try:
            with gzip.open(path, "rb") as src, part.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, EOFError) as exc:
            part.unlink(missing_ok=True)
            raise BulkExportError(f"{path.name} is not a whole gzip file ({exc.__class__.__name__})") from exc
        os.replace(part, target)
        progress(f"decompressed {path.name}")
    return target


def _folder_errors(path: Path) -> list[str]:
    messages = []
    with path.open("rb") as lines:
        for line in lines:
            try:
                messages += issue_texts(json.loads(line))
            except ValueError:
                messages.append(f"{path.name} has a line that is not JSON")
    return messages
