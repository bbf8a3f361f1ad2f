"""A FHIR server stub on 127.0.0.1 for the service to call (demo mode allows loopback fhirServers)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowFhirServer:
    """A FHIR server on 127.0.0.1 answering every GET after ``delay`` seconds: the Patient, empty searches."""

    PATIENT = "slow-patient"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.first_request = threading.Event()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                outer.first_request.set()
                time.sleep(outer.delay)
                path = self.path.split("?", 1)[0]
                if path == f"/fhir/Patient/{outer.PATIENT}":
                    body = {"resourceType": "Patient", "id": outer.PATIENT, "birthDate": "1950-01-01", "gender": "male"}
                elif path.startswith("/fhir/Patient/"):
                    self.send_error(404)
                    return
                else:
                    body = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # the service hung up (a cancelled call): expected in the shutdown tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlowFhirServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
