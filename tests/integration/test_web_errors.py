"""Every failure answers with the one error body, including aiohttp's own and unexpected ones."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
import yarl
from aiohttp import web

from ops.app import Hub
from ops.http.roles import PUBLIC
from ops.http.routes import Api, install
from ops.web.app import Served, create_app
from tests.fixtures.hub import HOST, WebClient, client_of

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

LOGIN = "/api/v1/auth/login"


async def _error(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    error: dict[str, Any] = body["error"]
    return error


async def test_non_json_body_is_400_invalid_json(web_client: WebClient) -> None:
    async with web_client.post(
        LOGIN, data=b"username=budi&password=x", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert await _error(response) == {
            "code": "invalid_json",
            "message": "the body is not valid JSON",
            "field": None,
        }


async def test_non_json_content_type_is_415(web_client: WebClient) -> None:
    async with web_client.post(LOGIN, data={"username": "budi", "password": "x"}) as response:
        assert response.status == 415
        assert (await _error(response))["code"] == "unsupported_media_type"


async def test_too_large_body_is_413(hub: Hub, web_client: WebClient) -> None:
    padding = "x" * (hub.config.web.max_body_bytes + 1)
    body = io.BytesIO(json.dumps({"username": "budi", "password": padding}).encode())
    async with web_client.post(
        LOGIN, data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await _error(response))["code"] == "body_too_large"


async def test_missing_field_is_400_naming_it(web_client: WebClient) -> None:
    async with web_client.post(LOGIN, json={"username": "budi"}) as response:
        assert response.status == 400
        assert await _error(response) == {
            "code": "missing_field",
            "message": "password is required",
            "field": "password",
        }


async def test_wrong_type_is_400_naming_the_field(web_client: WebClient) -> None:
    async with web_client.post(LOGIN, json={"username": 12345, "password": "x"}) as response:
        assert response.status == 400
        error = await _error(response)
    assert error["code"] == "invalid_field"
    assert error["field"] == "username"


async def test_unknown_field_is_400_naming_it(web_client: WebClient) -> None:
    async with web_client.post(
        LOGIN, json={"username": "budi", "password": "x", "remember": True}
    ) as response:
        assert response.status == 400
        error = await _error(response)
    assert error["code"] == "unknown_field"
    assert error["field"] == "remember"


async def test_a_body_that_is_not_an_object_is_400(web_client: WebClient) -> None:
    async with web_client.post(LOGIN, json=["budi", "x"]) as response:
        assert response.status == 400
        assert (await _error(response))["code"] == "invalid_body"


async def test_validation_errors_never_echo_the_password(web_client: WebClient) -> None:
    secret = "p" * 2000  # over the length limit
    async with web_client.post(LOGIN, json={"username": "budi", "password": secret}) as response:
        assert response.status == 400
        assert secret not in await response.text()


async def test_unknown_route_is_404_json(web_client: WebClient) -> None:
    async with web_client.get("/api/v1/no-such-thing") as response:
        assert response.status == 404
        assert await _error(response) == {
            "code": "not_found",
            "message": "no such resource",
            "field": None,
        }


@pytest.mark.parametrize(
    "path", ["/static/js/nothing.js", "/static/js/%2E%2E/%2E%2E/app.py", "/static/..%2Fapp.py"]
)
async def test_missing_or_escaping_static_asset_is_404_json(
    web_client: WebClient, path: str
) -> None:
    async with web_client.get(yarl.URL(path, encoded=True)) as response:
        assert response.status == 404
        assert (await _error(response))["code"] == "not_found"


async def test_wrong_method_is_405_json_with_allow(web_client: WebClient) -> None:
    async with web_client.get(LOGIN) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        error = await _error(response)
    assert error["code"] == "method_not_allowed"
    assert "POST" in error["message"]


@pytest.mark.allow_error_log(match=["unhandled error in GET /api/v1/crash"])
async def test_unexpected_exception_is_500_without_details(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """A crashing handler (a route declared only for this test) leaks nothing to the client."""
    api = Api("test")

    @api.get("/api/v1/crash", roles=PUBLIC, summary="Crashes.")
    async def crash(request: web.Request) -> web.Response:
        del request
        raise RuntimeError("secret internal detail")

    app = create_app(hub)
    install(app, api)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        async with client_of(Served(HOST, port)) as client, client.get("/api/v1/crash") as response:
            assert response.status == 500
            text = await response.text()
            error = await _error(response)
    finally:
        await runner.cleanup()
    assert error == {"code": "internal_error", "message": "internal error", "field": None}
    assert "secret" not in text
    assert "Traceback" not in text
    assert "secret internal detail" in caplog.text  # the log has it for the people who fix it


async def test_security_headers(web_client: WebClient) -> None:
    async with web_client.get("/") as response:
        assert response.status == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with web_client.get("/static/js/main.js") as response:
        assert response.status == 200
        assert response.content_type in {"text/javascript", "application/javascript"}
