"""Hook and REST bodies are parsed with orjson, and read exactly as the standard library would read them."""

from __future__ import annotations

import json

import pytest

from service.api.fast_json import FastJsonRequest


async def _parse(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = FastJsonRequest({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)
    return await request.json()


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1.5, "x", null, true]}',
        '{"value": NaN, "big": Infinity}',  # the standard library accepts these: so do we
        '{"n": 1e400, "m": -1e400}',  # beyond a double: orjson refuses, the standard library reads infinities
        '{"a": 1, "a": 2}',  # the last wins in both
        '"\\ud800"',  # a lone surrogate
    ],
)
def test_bodies_read_as_the_standard_library_reads_them(text):
    import anyio

    parsed = anyio.run(_parse, text.encode())
    expected = json.loads(text)
    assert json.dumps(parsed, allow_nan=True) == json.dumps(expected, allow_nan=True)


def test_an_integer_beyond_64_bits_is_read_as_the_float_of_the_same_value():
    import anyio

    text = '{"n": 100000000000000000000000000000000000000000, "i": 9223372036854775807}'
    parsed = anyio.run(_parse, text.encode())
    assert parsed == {"n": 1e41, "i": 2**63 - 1} and isinstance(parsed["n"], float)


def test_a_body_neither_parses_is_refused_as_before(client):
    response = client.post(
        "/api/v1/assessments", content=b'{"resourceType": "Bundle", ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
