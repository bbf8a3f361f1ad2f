"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the real FHIR test server.

One asyncio server in a background thread; one request per connection (``Connection: close``).
Passed-through answers have the upstream's base URL rewritten to the proxy's, so that links
(``next``, ``fullUrl``) stay on the proxy's origin as they would on a real server.

A test sets ``proxy.fault`` (a :class:`Fault`) and reads ``proxy.requests``. Faults:

=====================  ==============================================================================
``pass``               forward as is
``delay``              wait ``seconds``, then forward
``reset``              close the connection at once (RST), no answer
``status``             answer ``status`` with ``body`` / ``headers`` (500, 503, 401, 403, 404, 429...)
``flaky``              the first ``count`` requests answer ``status`` (after ``seconds``), then forward
``truncate``           forward, but only the first half of the body (a complete message: invalid JSON)
``cut``                announce the whole body, send half of it, close (a connection lost mid-body)
``drip``               send the body a few bytes at a time, ``seconds`` between chunks
``content_type``       forward with ``Content-Type: <content_type>``
``body``               answer 200 with ``body`` (HTML, a non-FHIR JSON, an OperationOutcome...)
``loop_next``          forward; a searchset Bundle gets a ``next`` link to the same URL
``next_to``            forward; a searchset Bundle gets a ``next`` link to ``location``
``redirect``           answer 302 to ``location``
``inject``             forward; a searchset Bundle gets ``resources`` added; a Patient read is
                       answered with ``patient`` instead when it is set
=====================  ==============================================================================

``only`` (a substring of the path) limits a fault to matching requests; others are forwarded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from dataclasses import dataclass, field

import httpx


@dataclass
class Fault:
    kind: str = "pass"
    seconds: float = 0.0
    status: int = 500
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    count: int = 0
    content_type: str = "application/fhir+json"
    location: str = ""
    resources: list[dict] = field(default_factory=list)
    patient: dict | None = None
    only: str | None = None


@dataclass
class SeenRequest:
    method: str
    target: str  # path and query
    headers: dict[str, str]


class FaultProxy:
    def __init__(self, upstream_base: str) -> None:
        self.upstream_base = upstream_base.rstrip("/")  # e.g. http://127.0.0.1:4001/fhir
        self.upstream_origin = self.upstream_base.rsplit("/fhir", 1)[0]
        self.fault = Fault()
        self.requests: list[SeenRequest] = []
        self._served = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop)
        self._thread.join(timeout=10)

    def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=30, trust_env=False)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            async with self._server:
                await self._server.serve_forever()
        except asyncio.CancelledError:
            pass
        finally:
            await self._client.aclose()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/fhir"

    def set(self, kind: str = "pass", **options) -> Fault:
        """Set the fault for the requests from now on; resets the request log and counters."""
        self.fault = Fault(kind=kind, **options)
        self.requests = []
        self._served = 0
        return self.fault

    # -- one connection, one request ------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        self.requests.append(SeenRequest(method, target, headers))
        fault = self.fault
        applies = fault.only is None or fault.only in target
        self._served += 1
        try:
            await self._answer(writer, method, target, headers, fault if applies else Fault(), self._served)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def _forward(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        forwarded = {k: v for k, v in headers.items() if k in ("authorization", "accept")}
        path = target[len("/fhir") :] if target.startswith("/fhir") else target
        response = await self._client.request(method, self.upstream_base + path, headers=forwarded)
        body = response.content.replace(self.upstream_origin.encode(), self.origin.encode())
        return response.status_code, {"content-type": response.headers.get("content-type", "application/fhir+json")}, body

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, headers: dict, body: bytes, *, length: int | None = None) -> None:
        reason = {200: "OK", 302: "Found"}.get(status, "Status")
        head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body) if length is None else length}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    def _edit_bundle(self, body: bytes, edit) -> bytes:
        try:
            document = json.loads(body)
        except ValueError:
            return body
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            edit(document)
            return json.dumps(document).encode()
        return body

    async def _answer(self, writer, method: str, target: str, headers: dict, fault: Fault, served: int) -> None:
        kind = fault.kind
        if kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if kind == "status" or (kind == "flaky" and served <= fault.count):
            if fault.seconds:
                await asyncio.sleep(fault.seconds)
            body = fault.body.encode() if isinstance(fault.body, str) else (fault.body or b"")
            await self._send(writer, fault.status, {"content-type": "application/fhir+json", **fault.headers}, body)
            return
        if kind == "redirect":
            await self._send(writer, 302, {"location": fault.location}, b"")
            return
        if kind == "body":
            body = fault.body.encode() if isinstance(fault.body, str) else (fault.body or b"")
            await self._send(writer, 200, {"content-type": fault.content_type}, body)
            return
        if kind == "inject" and fault.patient is not None and target.split("?", 1)[0].startswith("/fhir/Patient/"):
            await self._send(writer, 200, {"content-type": "application/fhir+json"}, json.dumps(fault.patient).encode())
            return
        if kind == "delay":
            await asyncio.sleep(fault.seconds)
        status, out_headers, body = await self._forward(method, target, headers)
        if kind == "truncate":
            await self._send(writer, status, out_headers, body[: len(body) // 2])
        elif kind == "cut":
            await self._send(writer, status, out_headers, body[: len(body) // 2], length=len(body))
        elif kind == "drip":
            await self._send(writer, status, out_headers, b"", length=len(body))
            for i in range(0, len(body), 16):
                writer.write(body[i : i + 16])
                await writer.drain()
                await asyncio.sleep(fault.seconds)
        elif kind == "content_type":
            await self._send(writer, status, {"content-type": fault.content_type}, body)
        elif kind in ("loop_next", "next_to"):
            url = f"{self.origin}{target}" if kind == "loop_next" else fault.location

            def add_next(bundle: dict) -> None:
                bundle["link"] = [link for link in bundle.get("link") or [] if link.get("relation") != "next"]
                bundle["link"].append({"relation": "next", "url": url})

            await self._send(writer, status, out_headers, self._edit_bundle(body, add_next))
        elif kind == "inject":

            def add(bundle: dict) -> None:
                bundle.setdefault("entry", []).extend({"resource": r, "search": {"mode": "match"}} for r in fault.resources)

            await self._send(writer, status, out_headers, self._edit_bundle(body, add))
        else:
            await self._send(writer, status, out_headers, body)


class Listener:
    """A plain HTTP listener on 127.0.0.1 that records every request and answers 200 ``{}``: where a
    redirect or a foreign ``next`` link would lead. A test asserts it was never called (no token sent)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers)))
                payload = b'{"resourceType": "Bundle", "type": "searchset", "entry": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="listener")

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
