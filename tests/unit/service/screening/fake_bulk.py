"""A scripted Bulk Data server for httpx.MockTransport: kick-off, status, files, faults on demand."""

from __future__ import annotations

import json
from collections.abc import Generator

import httpx

BASE = "https://fhir.example.org/fhir"
BUCKET = "https://bucket.example.net/exports"
TOKEN = "static-token-value"


def ndjson(resources: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


PATIENTS = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(3)]
CONDITIONS = [{"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": f"Patient/p{i}"}} for i in range(3)]
LESIONS = [{"resourceType": "BodyStructure", "id": f"b{i}", "patient": {"reference": f"Patient/p{i}"}} for i in range(5)]
DATA: dict[str, list[dict]] = {"Patient": PATIENTS, "Condition": CONDITIONS, "BodyStructure": LESIONS}


class StaticAuth(httpx.Auth):
    """Adds the bearer token to every request it is given (the client decides where it goes)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        yield request


class FakeBulk:
    """Every kick-off is a new job; ``status`` / ``files`` / ``kickoff`` scripts are consumed in order."""

    def __init__(self, *, requires_token: bool = True, file_base: str | None = None, lesions_in_scope: bool = False):
        self.requires_token = requires_token
        self.file_base = file_base or f"{BASE}/files"
        self.lesions_in_scope = lesions_in_scope
        self.jobs: list[dict] = []
        self.status: list[httpx.Response] = []  # answered before the job's real status
        self.files: dict[str, list[str]] = {}  # file name (or "*") -> faults: "404", "503", "cut", "short"
        self.kickoff: list[httpx.Response] = []
        self.errors: list[dict] = []  # OperationOutcomes of the manifest's error file
        self.requests: list[tuple[str, str, str | None]] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(query=None)
        self.requests.append((request.method, str(url), request.headers.get("Authorization")))
        path = str(url)
        if path.endswith("$export"):
            return self._kickoff(request)
        if "/bulk-status/" in path:
            if request.method == "DELETE":
                return httpx.Response(403)
            return self.status.pop(0) if self.status else self._status(int(path.rsplit("/", 1)[1]))
        return self._file(path)

    def _kickoff(self, request: httpx.Request) -> httpx.Response:
        if self.kickoff:
            return self.kickoff.pop(0)
        path = request.url.path
        level = "group" if "/Group/" in path else "patient" if "/Patient/" in path else "system"
        types = request.url.params.get("_type", "").split(",")
        self.jobs.append({"level": level, "types": types, "since": request.url.params.get("_since"), "alive": True})
        return httpx.Response(202, headers={"Content-Location": f"{BASE}/bulk-status/{len(self.jobs) - 1}"})

    def _status(self, job_id: int) -> httpx.Response:
        if job_id >= len(self.jobs) or not self.jobs[job_id]["alive"]:
            return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found", "diagnostics": "No export"}]})
        job = self.jobs[job_id]
        output = []
        for rtype, resources in DATA.items():
            if rtype not in job["types"]:
                continue
            if rtype == "BodyStructure" and job["level"] != "system" and not self.lesions_in_scope:
                continue
            output.append({"type": rtype, "url": f"{self.file_base}/{job_id}/{rtype}.ndjson", "count": len(resources)})
        error = [{"type": "OperationOutcome", "url": f"{self.file_base}/{job_id}/errors.ndjson"}] if self.errors else []
        manifest = {
            "transactionTime": f"2026-12-03T07:42:0{job_id}.000Z",
            "request": "…",
            "requiresAccessToken": self.requires_token,
            "output": output,
            "error": error,
        }
        return httpx.Response(200, json=manifest)

    def _file(self, path: str) -> httpx.Response:
        job_id, name = path.rsplit("/", 2)[1:]
        if self.requires_token and path.startswith(BASE) and self.requests[-1][2] != f"Bearer {TOKEN}":
            return httpx.Response(401)
        faults = self.files.get(name) or self.files.get("*") or []
        fault = faults.pop(0) if faults else None
        if fault == "404" or not self.jobs[int(job_id)]["alive"]:
            return httpx.Response(404)
        if fault == "503":
            return httpx.Response(503, headers={"Retry-After": "2"})
        if name == "errors.ndjson":
            return httpx.Response(200, content=ndjson(self.errors))
        body = ndjson(DATA[name.removesuffix(".ndjson")])
        if fault == "cut":
            body = body[: len(body) * 6 // 10]
        if fault == "short":  # whole lines, one missing
            body = b"".join(body.splitlines(keepends=True)[:-1])
        return httpx.Response(200, content=body, headers={"Content-Type": "application/fhir+ndjson"})

    def forget_jobs(self) -> None:
        """What a sekmet restart does: every job's status and files answer 404."""
        for job in self.jobs:
            job["alive"] = False


class Sleeps:
    """An injected sleep: records the waits asked, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
