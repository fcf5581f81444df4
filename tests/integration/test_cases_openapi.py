"""Real answers of the case and public routes fit their OpenAPI schemas."""

from __future__ import annotations

from typing import Any

import pytest

from ops.app import Hub
from ops.users import Role
from tests.fixtures.hub import LoginAs, WebClient
from tests.integration.test_openapi import _spec, _validate

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


async def test_case_answers_fit_their_schemas(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    spec = await _spec(web_client)
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)

    async def check(client: WebClient, method: str, path: str, template: str, **kw: Any) -> Any:
        async with client.request(method, path, **kw) as response:
            body = await response.json()
            _validate(spec, method, template, response.status, body)
            return response.status, body

    status, case = await check(
        operator,
        "POST",
        "/api/v1/cases",
        "/api/v1/cases",
        json={"category": "fire", "description": "Api", "lat": -6.2, "lon": 106.8},
    )
    assert status == 201
    one = f"/api/v1/cases/{case['id']}"
    assert (await check(operator, "GET", "/api/v1/cases?limit=2", "/api/v1/cases"))[0] == 200
    assert (await check(operator, "GET", one, "/api/v1/cases/{id}"))[0] == 200
    assert (await check(operator, "PATCH", one, "/api/v1/cases/{id}", json={"title": "Api besar"}))[
        0
    ] == 200
    transitions = "/api/v1/cases/{id}/transitions"
    assert (
        await check(operator, "POST", f"{one}/transitions", transitions, json={"to": "closed"})
    )[0] == 409
    assert (
        await check(operator, "POST", f"{one}/transitions", transitions, json={"to": "triaged"})
    )[0] == 200
    assert (
        await check(
            operator, "POST", f"{one}/notes", "/api/v1/cases/{id}/notes", json={"body": "n"}
        )
    )[0] == 201
    assert (await check(operator, "GET", f"{one}/events", "/api/v1/cases/{id}/events"))[0] == 200
    assert (await check(operator, "DELETE", f"{one}/parent", "/api/v1/cases/{id}/parent"))[0] == 200
    assert (
        await check(
            supervisor,
            "PUT",
            f"{one}/agency",
            "/api/v1/cases/{id}/agency",
            json={"agency": "bpbd", "reason": "r"},
        )
    )[0] == 200
    for path in ("/api/v1/case-categories", "/api/v1/agencies", "/api/v1/routing-rules"):
        assert (await check(operator, "GET", path, path))[0] == 200
    assert (await check(operator, "GET", "/api/v1/cases/999999999", "/api/v1/cases/{id}"))[0] == 404

    public = "/api/v1/public/reports"
    status, receipt = await check(
        web_client, "POST", public, public, json={"category": "other", "description": "Lampu"}
    )
    assert status == 201
    code = receipt["tracking_code"]
    assert (await check(web_client, "GET", f"{public}/{code}", "/api/v1/public/reports/{code}"))[
        0
    ] == 200
    whistle = "/api/v1/public/whistleblower"
    status, secret = await check(
        web_client, "POST", whistle, whistle, json={"category": "other", "description": "x"}
    )
    assert status == 201
    notes = "/api/v1/public/reports/{code}/notes"
    assert (
        await check(
            web_client,
            "POST",
            f"{public}/{secret['follow_up_code']}/notes",
            notes,
            json={"body": "more"},
        )
    )[0] == 201
    assert (
        await check(web_client, "GET", "/api/v1/public/categories", "/api/v1/public/categories")
    )[0] == 200
