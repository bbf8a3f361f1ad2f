"""A reverse proxy in front of sekmet that injects the faults sekmet cannot produce (429, 503, expired files, cut bodies).

Start sekmet with ``base_url`` = this proxy's ``…/fhir``: every URL sekmet hands out (status, files, token endpoint,
the token's audience) then goes through the proxy, with no rewriting. A test sets :attr:`FaultProxy.faults`, a
script consumed in order per key:

* ``"status"`` (GET on a bulk-status URL): ``"429:N"`` / ``"503:N"`` (Retry-After N seconds), ``"503:date"``
  (Retry-After as an HTTP date 1 s ahead), ``"202:N"`` (an extra "in progress" asking N seconds);
* ``"file:<Name>.ndjson"`` or ``"file:*"`` (GET on a bulk file): ``"404"`` (expired URL), ``"truncate:F"`` (only
  the first fraction F of the body);
* ``"transaction"`` (POST on the FHIR base, ``/fhir`` or ``/fhir/``: a transaction or batch): ``"403"``, ``"412"``,
  ``"422"`` or ``"500"``, answered with an OperationOutcome whose diagnostics say it is an injected fault; nothing
  is forwarded, so the server is unchanged (sekmet cannot refuse with 403 behind the SMART launcher, which strips
  ``Authorization``).

:attr:`FaultProxy.log` records ``(method, path, status)`` of every answer, faults included.
"""

from __future__ import annotations

import email.utils
import threading
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.integration.fhir_server import free_port

FHIR_BASE_PATHS = ("/fhir", "/fhir/")
# the OperationOutcome issue code of each injected transaction status
TRANSACTION_FAULTS = {"403": "forbidden", "412": "conflict", "422": "processing", "500": "exception"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")  # sekmet's root, e.g. http://127.0.0.1:PORT
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: dict[str, list[str]] = {}
        self.log: list[tuple[str, str, int]] = []
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=METHODS)])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="fault-proxy")

    def start(self) -> FaultProxy:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fault proxy did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def requests(self, method: str, fragment: str) -> list[tuple[str, str, int]]:
        return [entry for entry in self.log if entry[0] == method and fragment in entry[1]]

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        fault = self._next_fault(request.method, path)
        response = self._injected(fault) if fault else None
        if response is None:
            response = await self._forward(request)
            if fault and fault.startswith("truncate:"):
                cut = int(len(response.body) * float(fault.split(":", 1)[1]))
                kept = {"Content-Type": response.headers.get("content-type", "application/octet-stream")}
                response = Response(bytes(response.body[:cut]), status_code=response.status_code, headers=kept)
        self.log.append((request.method, path, response.status_code))
        return response

    def _next_fault(self, method: str, path: str) -> str | None:
        if method == "POST" and path in FHIR_BASE_PATHS:
            keys = ["transaction"]
        elif method != "GET":
            return None
        elif "/bulk-status/" in path:
            keys = ["status"]
        elif "/bulk-files/" in path:
            keys = [f"file:{path.rsplit('/', 1)[1]}", "file:*"]
        else:
            return None
        for key in keys:
            if self.faults.get(key):
                fault = self.faults[key].pop(0)
                if key == "transaction" and fault not in TRANSACTION_FAULTS:
                    raise ValueError(f"unknown transaction fault {fault!r}: one of {sorted(TRANSACTION_FAULTS)}")
                return fault
        return None

    @staticmethod
    def _injected(fault: str) -> Response | None:
        kind, _, arg = fault.partition(":")
        if kind in ("429", "503", "202"):
            retry_after = email.utils.formatdate(time.time() + 1, usegmt=True) if arg == "date" else arg or "1"
            headers = {"Retry-After": retry_after, **({"X-Progress": "proxy says wait"} if kind == "202" else {})}
            return Response(status_code=int(kind), headers=headers)
        if kind == "404":
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found", "diagnostics": "expired"}]}
            return JSONResponse(outcome, status_code=404)
        if kind in TRANSACTION_FAULTS:
            diagnostics = f"Injected fault: the test's fault proxy answered {kind} to this transaction; nothing was forwarded"
            outcome = {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": TRANSACTION_FAULTS[kind], "diagnostics": diagnostics}]}
            return JSONResponse(outcome, status_code=int(kind), media_type="application/fhir+json")
        return None

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = f"{self.upstream}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(request.method, url, headers=headers, content=await request.body())
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=kept)
