"""The case pages in headless Chromium: the public form and tracking, the whistleblower form,
and the console's case panel (call-taker form, transitions, notes, duplicates)."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from ops.app import Hub
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, sign_in
from tests.fixtures.hub import client_of, log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]


async def test_the_public_form_files_a_report_and_tracks_it(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    page = await new_page()
    await page.goto(served.url + "/report")
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#form-title")).to_have_text("Laporkan kejadian")
    # A missing description is caught before anything is sent.
    await page.select_option("#category", "infrastructure")
    await page.click("#report-form button[type=submit]")
    await expect(page.locator("#form-error")).to_be_visible()
    await page.fill("#description", "Jembatan gantung putus, anak sekolah memutar jauh.")
    await page.fill("#lat", "95")
    await page.fill("#lon", "106.8")
    await page.click("#report-form button[type=submit]")
    await expect(page.locator("#form-error")).to_contain_text("Lat")  # the field is named
    await page.fill("#lat", "-6,9")  # a decimal comma is forgiven
    await page.fill("#contact", "0812-555-0101")
    await page.click("#report-form button[type=submit]")
    await expect(page.locator("#receipt")).to_be_visible()
    code = (await page.locator("#receipt-code").text_content() or "").strip()
    assert code.startswith("LP-")
    async with hub.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT lat, channel, reporter_contact FROM cases WHERE number = $1",
            (await page.locator("#receipt-number").text_content() or "").strip(),
        )
    assert (row["lat"], row["channel"], row["reporter_contact"]) == (
        -6.9,
        "public",
        "0812-555-0101",
    )
    await keep_screenshot(page, "cases-public-form", docs=True)
    await page.fill("#track-code", code.lower())
    await page.click("#track-form button[type=submit]")
    await expect(page.locator("#track-status")).to_have_text("baru")
    await page.click("[data-lang=en]")
    await expect(page.locator("#track-status")).to_have_text("new")
    await page.fill("#track-code", "LP-AAAAAAAAAA")
    await page.click("#track-form button[type=submit]")
    await expect(page.locator("#track-error")).to_have_text("Unknown code.")


async def test_the_whistleblower_form_asks_no_identity_and_takes_follow_ups(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    page = await new_page()
    await page.goto(served.url + "/report/anonymous")
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#name, #contact")).to_have_count(0)
    await page.select_option("#category", "public_order")
    await page.fill("#description", "Pungutan liar di loket perizinan setiap pagi.")
    await page.click("#report-form button[type=submit]")
    await expect(page.locator("#receipt")).to_be_visible()
    code = (await page.locator("#receipt-code").text_content() or "").strip()
    assert code.startswith("WB-")
    await page.fill("#track-code", code)
    await page.click("#track-form button[type=submit]")
    await expect(page.locator("#track-status")).to_have_text("baru")
    await page.fill("#more", "Biasanya pukul 08.00.")
    await page.click("#more-form button[type=submit]")
    await expect(page.locator("#more-done")).to_be_visible()
    async with hub.pool.acquire() as conn:
        notes = await conn.fetch("SELECT author, body FROM case_notes WHERE author = 'reporter'")
    assert ("reporter", "Biasanya pukul 08.00.") in [(n["author"], n["body"]) for n in notes]


async def open_form(panel: Locator, description: str, lat: str, lon: str) -> Locator:
    """Open the call-taker form and fill in a fire at a place."""
    await panel.locator("[data-action=new-case]").click()
    form = panel.locator("[data-form=call-taker]")
    await form.locator("[name=category]").select_option("fire")
    await form.locator("[name=description]").fill(description)
    await form.locator("[name=lat]").fill(lat)
    await form.locator("[name=lon]").fill(lon)
    return form


async def test_the_case_panel_takes_a_call_and_works_the_case(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("#case-panel")
    form = await open_form(panel, "Api dari dapur, dua orang di dalam.", "-6.19", "106.84")
    await form.locator("[name=title]").fill("Kebakaran rumah di Jl. Kenari")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("#case-panel .case-detail, #case-panel .error")
    assert await panel.locator(".error").count() == 0, await panel.inner_text()
    detail = panel.locator(".case-detail")
    await expect(detail).to_contain_text("Kebakaran rumah di Jl. Kenari")
    await expect(detail).to_contain_text("damkar")  # routed at intake
    number = (await detail.locator(".number").text_content() or "").strip()
    await expect(page.locator("#queue")).to_contain_text(number)  # the queue heard it live

    # Transitions: refused steps are not offered, a bounce needs a reason.
    await expect(detail.locator("[data-to=closed]")).to_have_count(0)
    await detail.locator("[data-to=assigned]").click()
    await expect(detail).to_have_attribute("data-status", "assigned")
    await detail.locator("[data-to=triaged]").click()
    await expect(panel.locator(".error")).to_contain_text("alasan")
    await panel.locator(".case-detail [name=reason]").fill("bukan wilayah kami")
    await panel.locator(".case-detail [data-to=triaged]").click()
    await expect(panel.locator(".case-detail")).to_have_attribute("data-status", "triaged")
    await expect(panel.locator(".case-detail")).to_contain_text("bounced by damkar")

    await panel.locator(".case-detail [name=body]").fill("Tim damkar sektor 2 dihubungi.")
    await panel.locator(".case-detail .cases-inline button[type=submit]").last.click()
    await expect(panel.locator(".cases-notes")).to_contain_text("Tim damkar sektor 2 dihubungi.")
    await expect(panel.locator(".cases-history li")).to_have_count(4)  # opened, 2 moves, note

    # A second call from the same spot is flagged; linking it shows under the first. A live
    # change of the case on screen while the call is typed does not wipe the form.
    form = await open_form(panel, "Asap dari rumah di Jl. Kenari", "-6.1901", "106.8401")
    description = form.locator("[name=description]")
    await description.click()
    await description.press("End")
    case_id = await panel.locator(".case-detail").get_attribute("data-case")
    async with client_of(served) as other:
        await log_in(other, username, password)
        note = {"body": "Dari konsol lain"}
        async with other.post(f"/api/v1/cases/{case_id}/notes", json=note) as response:
            assert response.status == 201
    await expect(panel.locator(".cases-notes")).to_contain_text("Dari konsol lain")
    # ... nor takes the focus away: the operator's next keystrokes land where they were typing.
    await expect(description).to_be_focused()
    await page.keyboard.type(", tetangga")
    await expect(description).to_have_value("Asap dari rumah di Jl. Kenari, tetangga")
    await form.locator("button[type=submit]").click()
    await expect(panel.locator(".case-detail .note")).to_be_visible()
    await panel.locator("[data-action=link-suggested]").click()
    await expect(panel.locator("[data-action=unlink]")).to_be_visible()
    await keep_screenshot(page, "cases-console-panel", docs=True)
