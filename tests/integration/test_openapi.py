"""The served OpenAPI document is valid 3.1, matches the router exactly, and real answers fit it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
from openapi_spec_validator import OpenAPIV31SpecValidator

from db import alarms as alarm_rows
from ops.app import Hub
from ops.http.roles import PUBLIC
from ops.http.routes import declared, served
from ops.users import Role
from ops.web.app import create_app
from tests.fixtures.hub import (
    ConfigFactory,
    LoginAs,
    WebClient,
    client_of,
    create_user,
    start_web_hub,
    unique_name,
    wait_ready,
)
from tests.integration.test_devices_health import simulated, state, until
from tests.integration.test_web_auth import PROBES, Probe

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SPEC_URI = "urn:posko:openapi"
#: (method, template, status) of every real answer validated against the document so far.
VALIDATED: set[tuple[str, str, int]] = set()
JSON = "application/json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


async def _spec(client: WebClient) -> dict[str, Any]:
    async with client.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        spec: dict[str, Any] = await response.json()
        return spec


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _validate(spec: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """Validate ``body`` against the spec's JSON schema for that operation's answer."""
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    VALIDATED.add((method.upper(), path, status))
    if JSON not in response.get("content", {}):
        return  # a page, a file or no body: only its status is documented
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
    else:
        pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    pointer += "/content/application~1json/schema"
    resource = referencing.Resource.from_contents(
        spec, default_specification=referencing.jsonschema.DRAFT202012
    )
    registry = referencing.Registry().with_resource(SPEC_URI, resource)
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(body)


async def test_the_document_is_valid_openapi_3_1(web_client: WebClient) -> None:
    spec = await _spec(web_client)
    assert spec["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(spec).validate()


async def test_the_document_describes_exactly_the_routes(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    app = create_app(hub)
    assert documented - served(app) == set(), "described but not served"
    assert served(app) - documented == set(), "served but not described"


async def test_security_follows_the_declarations(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    assert spec["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "posko_session",
        "description": spec["components"]["securitySchemes"]["sessionCookie"]["description"],
    }
    assert spec["security"] == [{"sessionCookie": []}]
    for (method, path), route in declared(create_app(hub)).items():
        access = route.access
        operation = spec["paths"][path][method.lower()]
        if access == PUBLIC:
            assert operation["security"] == [], (method, path)
        else:
            assert "security" not in operation, (method, path)
            assert operation["x-posko-roles"] == sorted(role.value for role in access)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
        assert "500" in operation["responses"]


async def test_real_answers_fit_their_schemas(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    spec = await _spec(web_client)
    await wait_ready(hub)

    async def check(client: WebClient, method: str, path: str, **kwargs: Any) -> int:
        template = kwargs.pop("template", path)
        async with client.request(method, path, **kwargs) as response:
            _validate(spec, method, template, response.status, await response.json())
            return response.status

    assert await check(web_client, "GET", "/healthz") == 200
    assert await check(web_client, "GET", "/readyz") == 200
    user, password = await create_user(hub, Role.SUPERVISOR, display_name="Sari")
    login = {"username": user.username, "password": password}
    assert await check(web_client, "POST", "/api/v1/auth/login", json=login) == 200
    assert await check(web_client, "GET", "/api/v1/auth/me") == 200
    assert await check(web_client, "GET", "/api/v1/hub/status") == 200
    assert await check(web_client, "GET", "/api/v1/audit", params={"limit": "3"}) == 200
    # Error answers fit the shared Error schema too.
    wrong = {"username": user.username, "password": "not it at all"}
    assert await check(web_client, "POST", "/api/v1/auth/login", json=wrong) == 401
    assert await check(web_client, "POST", "/api/v1/auth/login", json={}) == 400
    assert await check(web_client, "GET", "/api/v1/audit", params={"limit": "0"}) == 400
    viewer = await login_as(Role.VIEWER)
    assert await check(viewer, "GET", "/api/v1/audit") == 403
    async with client_of(web_client.served) as anonymous:
        assert await check(anonymous, "GET", "/api/v1/hub/status") == 401


async def test_readiness_503_fits_its_schema(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    await wait_ready(hub)
    await hub.supervisor.stop("mqtt")
    async with web_client.get("/readyz") as response:
        assert response.status == 503
        _validate(spec, "GET", "/readyz", 503, await response.json())


async def _walk_probes(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    """Each route, called by a role it admits, answers with a status and body it documents."""
    table = declared(create_app(hub))
    clients = {role: await login_as(role) for role in Role}
    later: list[tuple[tuple[str, str], Probe]] = []
    for (method, template), probe in sorted(PROBES.items()):
        if template == "/api/v1/auth/logout":
            later.append(((method, template), probe))
            continue
        access = table[(method, template)].access
        client = web_client if access == PUBLIC else clients[min(access)]
        if probe.ok == 101:
            async with client.ws_connect(probe.path) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
            _validate(spec, method, template, 101, None)
            continue
        async with client.request(method, probe.path, json=probe.body) as response:
            assert response.status == probe.ok, (method, template)
            body = await response.json() if response.content_type == JSON else None
            _validate(spec, method, template, response.status, body)
    for (method, template), probe in later:
        async with clients[Role.VIEWER].request(method, probe.path) as response:
            _validate(spec, method, template, response.status, None)


Check = Callable[..., Awaitable[Any]]


def _checker(spec: dict[str, Any]) -> Check:
    """A call that asserts its status and validates its answer against the document."""

    async def check(client: WebClient, method: str, path: str, template: str, **kw: Any) -> Any:
        expect = kw.pop("expect", 200)
        async with client.request(method, path, **kw) as response:
            body = await response.json() if response.content_type == JSON else None
            assert response.status == expect, (method, path, body)
            _validate(spec, method, template, response.status, body)
            return body

    return check


async def _new_case(check: Check, client: WebClient) -> dict[str, Any]:
    new = {"category": "fire", "description": "Api", "lat": -6.2, "lon": 106.8}
    case: dict[str, Any] = await check(
        client, "POST", "/api/v1/cases", "/api/v1/cases", json=new, expect=201
    )
    return case


async def _walk_sign_in_and_cases(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    check = _checker(spec)
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)
    # Sign-in with real credentials.
    user, password = await create_user(hub, Role.VIEWER)
    async with client_of(web_client.served) as fresh:
        login = {"username": user.username, "password": password}
        await check(fresh, "POST", "/api/v1/auth/login", "/api/v1/auth/login", json=login)

    # Cases: one case through its life, a duplicate linked and unlinked, a new category.
    cases, case_t = "/api/v1/cases", "/api/v1/cases/{id}"
    case = await _new_case(check, operator)
    other = await _new_case(check, operator)
    one, two = f"{cases}/{case['id']}", f"{cases}/{other['id']}"
    await check(operator, "GET", one, case_t)
    await check(operator, "PATCH", one, case_t, json={"title": "Api besar"})
    await check(
        operator, "POST", f"{one}/transitions", f"{case_t}/transitions", json={"to": "triaged"}
    )
    await check(operator, "POST", f"{one}/notes", f"{case_t}/notes", json={"body": "n"}, expect=201)
    await check(operator, "GET", f"{one}/events", f"{case_t}/events")
    parent = {"parent_id": case["id"]}
    await check(operator, "PUT", f"{two}/parent", f"{case_t}/parent", json=parent)
    await check(operator, "DELETE", f"{two}/parent", f"{case_t}/parent")
    agency = {"agency": "bpbd", "reason": "r"}
    await check(supervisor, "PUT", f"{one}/agency", f"{case_t}/agency", json=agency)
    category = {"label_id": "Uji", "label_en": "Test", "default_priority": "low"}
    code = unique_name("cat")[:32].replace("-", "_")
    category_t = "/api/v1/case-categories/{code}"
    path = f"/api/v1/case-categories/{code}"
    await check(supervisor, "PUT", path, category_t, json=category, expect=201)
    await check(supervisor, "PUT", path, category_t, json=category)


async def _walk_public(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    check = _checker(spec)
    del hub, login_as
    # The public doors: a report tracked, an anonymous one followed up.
    public = "/api/v1/public/reports"
    receipt = await check(
        web_client,
        "POST",
        public,
        public,
        json={"category": "fire", "description": "x"},
        expect=201,
    )
    await check(web_client, "GET", f"{public}/{receipt['tracking_code']}", f"{public}/{{code}}")
    whistle = "/api/v1/public/whistleblower"
    secret = await check(
        web_client,
        "POST",
        whistle,
        whistle,
        json={"category": "fire", "description": "x"},
        expect=201,
    )
    notes = f"{public}/{secret['follow_up_code']}/notes"
    await check(
        web_client, "POST", notes, f"{public}/{{code}}/notes", json={"body": "more"}, expect=201
    )


async def _walk_units_and_dispatch(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    check = _checker(spec)
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)
    case = await _new_case(check, operator)
    # Units and dispatch: two units, one order acknowledged, another cancelled.
    units, unit_t = "/api/v1/units", "/api/v1/units/{unit_id}"
    unit_ids = []
    for _ in range(2):
        unit_id = unique_name("u")
        spec_body = {
            "id": unit_id,
            "callsign": unit_id.replace("_", "-")[:16],
            "name": f"Unit {unit_id}",
            "kind": "fire",
            "channels": [{"channel": "mqtt", "address": unit_id}],
        }
        await check(supervisor, "POST", units, units, json=spec_body, expect=201)
        unit_ids.append(unit_id)
    first = f"{units}/{unit_ids[0]}"
    await check(operator, "GET", first, unit_t)
    await check(operator, "GET", f"{first}/positions", f"{unit_t}/positions")
    await check(operator, "POST", f"{first}/status", f"{unit_t}/status", json={"on_duty": True})
    recommend = "/api/v1/units/recommend"
    await check(operator, "GET", f"{recommend}?case={case['id']}", recommend)
    dispatches, order_t = "/api/v1/dispatches", "/api/v1/dispatches/{order_id}"
    orders = []
    for unit_id in unit_ids:
        body = {"case": case["id"], "unit": unit_id, "message": "Go"}
        orders.append(await check(operator, "POST", dispatches, dispatches, json=body, expect=201))
    order = f"{dispatches}/{orders[0]['id']}"
    await check(operator, "GET", order, order_t)
    ack = {"unit": unit_ids[0], "via": "phone"}
    await check(operator, "POST", f"{order}/acknowledge", f"{order_t}/acknowledge", json=ack)
    cancel = f"{dispatches}/{orders[1]['id']}/cancel"
    await check(operator, "POST", cancel, f"{order_t}/cancel", json={"reason": "not needed"})


async def _walk_devices_and_alarms(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    check = _checker(spec)
    technician = await login_as(Role.TECHNICIAN)
    # Devices: one registered, one simulated that answers a command, an alarm acked and cleared.
    devices, device_t = "/api/v1/devices", "/api/v1/devices/{id}"
    registered = unique_name("dev")
    body = {"id": registered, "kind": "mqtt_sensor"}
    await check(technician, "POST", devices, devices, json=body, expect=201)
    await check(technician, "PATCH", f"{devices}/{registered}", device_t, json={"site": "Kudus"})
    await check(technician, "GET", f"{devices}/{registered}", device_t)
    await check(technician, "GET", f"{devices}/{registered}/health", f"{device_t}/health")
    device = simulated(hub, interval=None)
    await device.start()
    try:
        await device.send_telemetry()
        await until(lambda: state(hub, device.device_id) == "online")
        path = f"{devices}/{device.device_id}"
        command = {"command": "ping", "args": {}}
        await check(technician, "POST", f"{path}/commands", f"{device_t}/commands", json=command)
    finally:
        await device.stop()
    async with hub.pool.acquire() as conn:
        alarm, _ = await alarm_rows.raise_alarm(
            conn, device_id=registered, code="restart_storm", severity="warning", message="test"
        )
    alarm_path = f"/api/v1/alarms/{alarm.id}"
    await check(technician, "POST", f"{alarm_path}/ack", "/api/v1/alarms/{id}/ack")
    await check(technician, "POST", f"{alarm_path}/clear", "/api/v1/alarms/{id}/clear")


async def _walk_walls(
    hub: Hub, web_client: WebClient, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    check = _checker(spec)
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)
    case = await _new_case(check, operator)
    # Walls: created and reshaped, a tile pushed, a preset saved, recalled and removed, a screen
    # paired, signed in and watching, then unpaired; the wall removed.
    name = unique_name("w")[:60].lower().replace("_", "-")
    wall, wall_t = f"/api/v1/walls/{name}", "/api/v1/walls/{name}"
    layout = {"rows": 1, "columns": 2, "tiles": []}
    await check(supervisor, "PUT", wall, wall_t, json=layout, expect=201)
    await check(supervisor, "PUT", wall, wall_t, json={**layout, "title": "Main"})
    await check(operator, "GET", wall, wall_t)
    tile = {"kind": "case", "case_id": case["id"]}
    await check(operator, "PUT", f"{wall}/tiles/0", f"{wall_t}/tiles/{{index}}", json=tile)
    presets = f"{wall}/presets"
    await check(operator, "POST", presets, f"{wall_t}/presets", json={"name": "day"}, expect=201)
    await check(operator, "POST", presets, f"{wall_t}/presets", json={"name": "day"})
    await check(operator, "GET", presets, f"{wall_t}/presets")
    preset_t = f"{wall_t}/presets/{{preset}}"
    await check(operator, "POST", f"{presets}/day/recall", f"{preset_t}/recall")
    await check(supervisor, "DELETE", f"{presets}/day", preset_t, expect=204)
    screens = f"{wall}/screens"
    paired = await check(
        supervisor, "POST", screens, f"{wall_t}/screens", json={"screen": "left"}, expect=201
    )
    await check(supervisor, "GET", screens, f"{wall_t}/screens")
    screen_t = f"{wall_t}/screens/{{screen}}"
    async with client_of(web_client.served) as screen:
        token = {"token": paired["token"]}
        await check(screen, "POST", f"{screens}/left/session", f"{screen_t}/session", json=token)
        async with screen.ws_connect(f"{wall}/live?screen=left") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        _validate(spec, "GET", f"{wall_t}/live", 101, None)
    await check(supervisor, "DELETE", f"{screens}/left", screen_t, expect=204)
    await check(supervisor, "DELETE", wall, wall_t, expect=204)


async def _walk_radio(
    make_hub_config: ConfigFactory, login_as: LoginAs, spec: dict[str, Any]
) -> None:
    """On a room of its own with a gateway: the log, a unit's thread and the three commands."""
    check = _checker(spec)
    gateway = {
        "id": "north",
        "url": "tcp://127.0.0.1:9",
        "ptt": "rig",
        "rig": "tcp://127.0.0.1:9",
        "channels": [{"name": "APRS", "frequency": 144_390_000}],
    }
    config = make_hub_config(radio={"gateways": [gateway]})
    async with start_web_hub(config) as (radio_hub, radio_served):
        operator = await login_as(Role.OPERATOR, served=radio_served)
        await check(operator, "GET", "/api/v1/radio/gateways", "/api/v1/radio/gateways")
        gateway_t = "/api/v1/radio/gateways/{id}"
        channel = {"channel": "APRS"}
        path = "/api/v1/radio/gateways/north"
        await check(
            operator, "POST", f"{path}/channel", f"{gateway_t}/channel", json=channel, expect=202
        )
        await check(
            operator, "POST", f"{path}/ptt", f"{gateway_t}/ptt", json={"on": False}, expect=202
        )
        bulletin = {"group": "medic", "text": "Apel pagi"}
        bulletins = "/api/v1/radio/bulletins"
        await check(operator, "POST", bulletins, bulletins, json=bulletin, expect=202)
        unit_id = unique_name("u")
        async with radio_hub.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO units (id, callsign, name, kind, channels) "
                "VALUES ($1, $1, 'Radio unit', 'medic', $2)",
                unit_id,
                [{"channel": "radio", "address": "YB9ZZZ-1"}],
            )
        thread_t = "/api/v1/radio/units/{unit_id}/thread"
        await check(operator, "GET", f"/api/v1/radio/units/{unit_id}/thread", thread_t)
        log = "/api/v1/radio/log"
        await check(operator, "GET", f"{log}?gateway=north&kind=message", log)


async def test_every_documented_success_is_met_by_a_real_answer(
    hub: Hub, web_client: WebClient, login_as: LoginAs, make_hub_config: ConfigFactory
) -> None:
    """Every route is called as its probe says, each resource is walked through its successful
    answers, every answer is validated, and every documented 2xx (or 101) was among them."""
    spec = await _spec(web_client)
    await wait_ready(hub)
    VALIDATED.clear()
    await _walk_probes(hub, web_client, login_as, spec)
    for walk in (
        _walk_sign_in_and_cases,
        _walk_public,
        _walk_units_and_dispatch,
        _walk_devices_and_alarms,
        _walk_walls,
    ):
        await walk(hub, web_client, login_as, spec)
    await _walk_radio(make_hub_config, login_as, spec)
    documented = {
        (method.upper(), path, int(status))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for status in operation["responses"]
        if status.startswith("2") or status == "101"
    }
    missing = sorted(documented - VALIDATED)
    assert missing == [], f"documented answers no test met: {missing}"
