"""The $export protocol (service.screening.bulk_client) against a scripted server: waits, faults, downloads."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time

import httpx
import pytest

from service.screening.bulk_client import (
    BulkClient,
    BulkExportError,
    ExportGone,
    RetryPolicy,
    format_since,
    retry_after_seconds,
)
from tests.unit.service.screening.fake_bulk import BASE, BUCKET, DATA, TOKEN, FakeBulk, Sleeps, StaticAuth


def outcome(text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": text}]}


def run(server: FakeBulk, scenario, *, sleeps: Sleeps | None = None, **policy):
    async def main():
        async with httpx.AsyncClient(transport=server.transport()) as http:
            client = BulkClient(http, BASE, StaticAuth(), RetryPolicy(sleep=sleeps or Sleeps(), **policy), progress.append)
            return await scenario(client)

    progress: list[str] = []
    return asyncio.run(main()), progress


async def export_manifest(client: BulkClient) -> dict:
    return await client.poll(await client.kickoff("group", "g1", ("Patient", "Condition"), "2026-01-01T00:00:00.000Z"))


def test_kickoff_request_and_status_url():
    server = FakeBulk()
    status_url, _ = run(server, lambda c: c.kickoff("group", "g1", ("Patient", "Condition"), "2026-01-01T00:00:00.000Z"))
    assert status_url == f"{BASE}/bulk-status/0"
    assert server.requests[0] == ("GET", f"{BASE}/Group/g1/$export", f"Bearer {TOKEN}")
    assert server.jobs[0] == {"level": "group", "types": ["Patient", "Condition"], "since": "2026-01-01T00:00:00.000Z", "alive": True}


def test_kickoff_headers_and_relative_content_location():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(202, headers={"Content-Location": "bulk-status/7"})

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await BulkClient(http, BASE, None).kickoff("patient", None, ("Patient",), None)

    assert asyncio.run(main()) == f"{BASE}/Patient/bulk-status/7"
    assert seen["prefer"] == "respond-async" and seen["accept"] == "application/fhir+json"


def test_kickoff_refused_quotes_the_operation_outcome():
    server = FakeBulk()
    server.kickoff = [httpx.Response(400, json=outcome("Bulk export requires the header 'Prefer: respond-async'"))]
    with pytest.raises(BulkExportError, match=r"kick-off at .*Group/g1/\$export was refused \(HTTP 400\): error: Bulk export requires"):
        run(server, lambda c: c.kickoff("group", "g1", ("Patient",), None))


def test_polling_honours_retry_after_in_seconds_and_as_a_date():
    server = FakeBulk()
    in_20s = email.utils.formatdate(time.time() + 20, usegmt=True)
    server.status = [
        httpx.Response(202, headers={"X-Progress": "collecting", "Retry-After": "1"}),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": in_20s}),
        httpx.Response(202, headers={"X-Progress": "writing"}),
    ]
    sleeps = Sleeps()
    manifest, progress = run(server, export_manifest, sleeps=sleeps)
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Condition"]
    assert sleeps.waits[:2] == [1.0, 3.0] and 18 <= sleeps.waits[2] <= 20
    assert "export collecting" in progress and "export writing" in progress


def test_waits_are_capped():
    server = FakeBulk()
    server.status = [httpx.Response(503, headers={"Retry-After": "86400"}), httpx.Response(202, headers={"Retry-After": "9999"})]
    sleeps = Sleeps()
    run(server, export_manifest, sleeps=sleeps, max_wait_seconds=5)
    assert sleeps.waits == [5, 5]


def test_502_504_and_transport_errors_are_transient():
    server = FakeBulk()
    server.status = [httpx.Response(502), httpx.Response(504)]
    failures = iter([httpx.ConnectError("refused")])

    def flaky(request: httpx.Request) -> httpx.Response:
        if "/bulk-status/" in str(request.url):
            error = next(failures, None)
            if error:
                raise error
        return server(request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(flaky)) as http:
            return await export_manifest(BulkClient(http, BASE, StaticAuth(), RetryPolicy(sleep=Sleeps())))

    assert asyncio.run(main())["output"]


def test_too_many_transient_failures_fail_clearly():
    server = FakeBulk()
    server.status = [httpx.Response(503) for _ in range(10)]
    with pytest.raises(BulkExportError, match=r"the export failed \(HTTP 503"):
        run(server, export_manifest, attempts=3)


@pytest.mark.parametrize("status", [400, 500])
def test_a_failed_export_quotes_its_outcome(status):
    server = FakeBulk()
    server.status = [httpx.Response(status, json=outcome("disk full while writing Observation.ndjson"))]
    with pytest.raises(BulkExportError, match=rf"HTTP {status} from its status URL\): error: disk full"):
        run(server, export_manifest)


def test_a_forgotten_export_is_gone():
    server = FakeBulk()

    async def scenario(client):
        status_url = await client.kickoff("system", None, ("Patient",), None)
        server.forget_jobs()
        return await client.poll(status_url)

    with pytest.raises(ExportGone, match="no longer knows the export"):
        run(server, scenario)


def test_polling_gives_up_after_its_deadline():
    server = FakeBulk()
    server.status = [httpx.Response(202, headers={"Retry-After": "30", "X-Progress": "collecting"})]
    with pytest.raises(BulkExportError, match=r"did not finish within 10 s \(last progress: collecting\)"):
        run(server, export_manifest, poll_max_seconds=10)


def download(server: FakeBulk, tmp_path, name="Condition", url=None, **policy):
    async def scenario(client):
        manifest = await export_manifest(client)
        entry = next(o for o in manifest["output"] if o["type"] == name) if url is None else {"url": url, "count": 3}
        return await client.download(entry["url"], tmp_path / f"{name}-1.ndjson", expected=entry["count"],
                                     requires_token=manifest["requiresAccessToken"])

    return run(server, scenario, **policy)


@pytest.mark.parametrize("fault", ["cut", "short", "503"])
def test_a_cut_or_short_file_is_downloaded_again(tmp_path, fault):
    server = FakeBulk()
    server.files = {"Condition.ndjson": [fault]}
    (lines, progress) = download(server, tmp_path)
    path = tmp_path / "Condition-1.ndjson"
    assert lines == 3 and [json.loads(line) for line in path.read_text().splitlines()] == DATA["Condition"]
    assert not list(tmp_path.glob("*.part"))
    assert any("downloading" in p and "again" in p for p in progress)
    assert sum(1 for r in server.requests if r[1].endswith("Condition.ndjson")) == 2


def test_a_file_that_stays_cut_fails_after_the_attempts(tmp_path):
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["cut", "cut", "cut"]}
    with pytest.raises(BulkExportError, match=r"could not be downloaded whole in 3 attempts: the file is cut: its last line is cut"):
        download(server, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_gone_file_is_export_gone(tmp_path):
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["404"]}
    with pytest.raises(ExportGone, match="Condition.ndjson is gone"):
        download(server, tmp_path)


def test_a_last_line_without_newline_is_whole_when_it_is_json(tmp_path):
    body = b'{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":"b"}'

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))) as http:
            return await BulkClient(http, BASE, None).download(f"{BASE}/f", tmp_path / "P.ndjson", expected=2, requires_token=False)

    assert asyncio.run(main()) == 2
    assert (tmp_path / "P.ndjson").read_bytes() == body + b"\n"


def file_auth(server: FakeBulk) -> list[str | None]:
    return [auth for method, url, auth in server.requests if url.endswith(".ndjson")]


def test_token_sent_for_files_only_when_required_and_on_the_servers_origin(tmp_path):
    server = FakeBulk()
    download(server, tmp_path)
    assert file_auth(server) == [f"Bearer {TOKEN}"]

    open_server = FakeBulk(requires_token=False)
    download(open_server, tmp_path)
    assert file_auth(open_server) == [None]

    bucket = FakeBulk(file_base=BUCKET)
    download(bucket, tmp_path)
    assert file_auth(bucket) == [None]


def test_error_files_are_reported():
    server = FakeBulk()
    server.errors = [outcome("Ignored unsupported parameters: ['_elements']"), {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "details": {"text": "Observation/x skipped"}}]}]

    async def scenario(client):
        return await client.error_messages(await export_manifest(client))

    messages, _ = run(server, scenario)
    assert messages == ["error: Ignored unsupported parameters: ['_elements']", "warning: Observation/x skipped"]


def test_cancel_is_best_effort():
    server = FakeBulk()
    agreed, _ = run(server, lambda c: c.cancel(f"{BASE}/bulk-status/0"))
    assert agreed is False and server.requests[-1][0] == "DELETE"


def test_retry_after_values():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert 59 <= retry_after_seconds(email.utils.formatdate(1_000_060, usegmt=True), now=1_000_000) <= 60
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_since_is_sent_as_meta_last_updated_is_written():
    server = FakeBulk()
    run(server, lambda c: c.kickoff("system", None, ("Patient",), "2026-12-03T08:42:02+01:00"))
    assert server.jobs[0]["since"] == "2026-12-03T07:42:02.000Z"
    assert format_since("2026-12-03T07:42:02.549Z") == "2026-12-03T07:42:02.549Z"
    with pytest.raises(BulkExportError, match="needs a time zone"):
        format_since("2026-12-03T07:42:02")
    with pytest.raises(BulkExportError, match="is not an instant"):
        format_since("last week")


def test_401_without_credentials_says_what_to_configure():
    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(401))) as http:
            return await BulkClient(http, BASE, None).kickoff("system", None, ("Patient",), None)

    with pytest.raises(BulkExportError, match="asks for authentication .* set HCC_BULK_CLIENT_ID"):
        asyncio.run(main())


def test_no_token_in_logs_or_progress(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["cut"]}
    server.status = [httpx.Response(429, headers={"Retry-After": "1"})]
    _, progress = download(server, tmp_path)
    assert caplog.records and progress
    assert not [r for r in caplog.records if TOKEN in r.getMessage()] and not [p for p in progress if TOKEN in p]
