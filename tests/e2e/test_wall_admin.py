"""Wall administration in the console (headless Chromium): create, resize, pair, unpair, delete."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Page, expect

from ops.app import Hub
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, sign_in
from tests.fixtures.hub import client_of, log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]


async def _status(served: Served, user: tuple[str, str], path: str) -> int:
    async with client_of(served) as client:
        assert (await log_in(client, *user)).status == 200
        async with client.get(path) as response:
            return response.status


async def _create(console: Page, name: str, title: str, rows: str, columns: str) -> None:
    await console.fill("#walladmin-new-name", name)
    await console.fill("#walladmin-new-title", title)
    await console.fill("#walladmin-new-rows", rows)
    await console.fill("#walladmin-new-columns", columns)
    await console.click("#walladmin-create-submit")


async def test_a_supervisor_creates_a_wall_pairs_and_unpairs_a_screen_and_deletes_it(  # noqa: PLR0915
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    wall = f"aula-{secrets.token_hex(3)}"
    console = await new_page()
    await sign_in(console, served, *supervisor)
    region = console.locator("#wall-admin-region")
    await expect(region).to_be_visible()
    await expect(region.locator("h2")).to_have_text("Kelola dinding")

    # A name the API refuses: its error is shown next to the name field, and nothing is made.
    await _create(console, "Aula Utama", "Aula", "2", "2")
    error = console.locator("#walladmin-new-name-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("name: use 1-64 lower-case letters")
    await expect(console.locator("#walladmin-new-name")).to_have_attribute("aria-invalid", "true")
    await expect(console.locator("#walladmin-new-name")).to_be_focused()
    await expect(console.locator("#walladmin-new-name")).to_have_value("Aula Utama")
    assert await _status(served, supervisor, "/api/v1/walls/aula-utama") == 404

    # A grid too large: the API's error sits next to the rows field.
    await _create(console, wall, "Aula depan", "9", "2")
    await expect(console.locator("#walladmin-new-rows-error")).to_contain_text("rows")
    await expect(console.locator("#walladmin-new-name-error")).to_be_hidden()

    await console.fill("#walladmin-new-rows", "2")
    await console.click("#walladmin-create-submit")
    item = console.locator(f".walladmin-wall[data-wall='{wall}']")
    await expect(item).to_contain_text("Aula depan")
    await expect(item).to_contain_text("2 baris \N{MULTIPLICATION SIGN} 2 kolom")
    await expect(console.locator("#walladmin-result")).to_contain_text(f"Dinding {wall} dibuat")
    await expect(console.locator("#walladmin-new-name")).to_have_value("")
    # The wall control of every console picks the new wall up from the live feed.
    await expect(console.locator(f"#wall-select option[value='{wall}']")).to_have_count(1)

    # Change its title and grid.
    await item.locator("summary", has_text="Ubah judul dan ukuran").click()
    await console.fill(f"#walladmin-edit-{wall}-title", "Aula belakang")
    await console.fill(f"#walladmin-edit-{wall}-rows", "3")
    await console.click(f"#walladmin-edit-{wall}-save")
    await expect(item).to_contain_text("3 baris \N{MULTIPLICATION SIGN} 2 kolom")
    await expect(item.locator("h4")).to_contain_text("Aula belakang")

    # Pair a screen: the one-time address and token are shown, with the note and a copy button.
    await item.locator("summary", has_text="Pasangkan layar").click()
    await console.fill(f"#walladmin-pair-{wall}-screen", "depan")
    await console.press(f"#walladmin-pair-{wall}-screen", "Enter")
    pairing = console.locator(".walladmin-pairing")
    await expect(pairing).to_be_visible()
    await expect(pairing).to_contain_text("hanya ditampilkan sekali")
    await expect(console.locator("#walladmin-copy")).to_be_visible()
    url = await console.locator(".walladmin-pair-url").input_value()
    token = (await console.locator("#walladmin-token").text_content() or "").strip()
    assert url == f"{served.url}/wall/{wall}?screen=depan#pair={token}", url
    assert len(token) >= 40
    await expect(item.locator("[data-screen='depan']")).to_contain_text("depan")
    await keep_screenshot(console, "console-wall-admin")

    # The screen opens the address and comes up signed in, showing the wall.
    screen = await new_page(viewport={"width": 1280, "height": 720})
    await screen.goto(url)
    await expect(screen.locator("#wall-link")).to_have_attribute("data-state", "open")
    await expect(screen.locator("#wall-grid")).to_be_visible()
    await expect(screen.locator("#wall-grid .tile")).to_have_count(6)
    await expect(screen.locator("#wall-message")).to_be_hidden()
    # Its state reaches the console's list of screens, as shape and word.
    await expect(item.locator("[data-screen='depan']")).to_have_attribute("data-state", "online")
    await expect(item.locator("[data-screen='depan']")).to_contain_text("daring")
    await console.click("#walladmin-dismiss")
    await expect(pairing).to_have_count(0)

    # Unpair, confirmed: the screen is signed out at once and its token no longer works.
    await console.click(f"#walladmin-unpair-{wall}-depan")
    await expect(console.locator("#walladmin-cancel")).to_be_focused()
    await console.click("#walladmin-unpair-yes")
    await expect(item.locator("[data-screen='depan']")).to_have_count(0)
    await expect(console.locator("#walladmin-result")).to_contain_text("dilepas")
    await expect(screen.locator("#wall-message")).to_be_visible()
    await expect(screen.locator("#wall-message")).to_contain_text(
        re.compile("Token layar tidak berlaku")
    )
    await expect(screen.locator("#wall-grid")).to_be_hidden()

    # Delete the wall with the keyboard: the confirmation takes focus; Cancel or Esc keeps it.
    await console.focus(f"#walladmin-delete-{wall}")
    await console.keyboard.press("Enter")
    await expect(console.locator("#walladmin-cancel")).to_be_focused()
    await console.keyboard.press("Enter")
    await expect(console.locator("#walladmin-delete-yes")).to_have_count(0)
    await expect(console.locator(f"#walladmin-delete-{wall}")).to_be_focused()
    await console.keyboard.press("Enter")
    await console.keyboard.press("Escape")
    await expect(console.locator("#walladmin-delete-yes")).to_have_count(0)
    await expect(console.locator(f"#walladmin-delete-{wall}")).to_be_focused()
    await expect(item).to_have_count(1)
    await console.focus(f"#walladmin-delete-{wall}")
    await console.keyboard.press("Enter")
    await expect(console.locator("#walladmin-cancel")).to_be_focused()
    await console.keyboard.press("Shift+Tab")
    await expect(console.locator("#walladmin-delete-yes")).to_be_focused()
    await console.keyboard.press("Enter")
    await expect(item).to_have_count(0)
    await expect(console.locator("#walladmin-result")).to_contain_text(f"Dinding {wall} dihapus")
    assert await _status(served, supervisor, f"/api/v1/walls/{wall}") == 404


async def test_an_operator_does_not_see_the_wall_administration(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    operator = await console_user(hub, Role.OPERATOR)
    console = await new_page()
    await sign_in(console, served, *supervisor)
    await expect(console.locator("#walladmin-create")).to_be_visible()

    # The same page, signed out and in again as an operator: the controls are gone.
    await console.click("#logout")
    await expect(console.locator("#login")).to_be_visible()
    await console.fill("#username", operator[0])
    await console.fill("#password", operator[1])
    await console.click("#login-form button[type=submit]")
    await expect(console.locator("#who-role")).to_have_attribute("data-role", "operator")
    await expect(console.locator("#live")).to_have_attribute("data-state", "open")
    # The wall control is there (operators push tiles), the administration is not.
    await expect(console.locator("#wall-region")).to_be_visible()
    await expect(console.locator("#wall-admin-region")).to_be_hidden()
    await expect(console.locator("#walladmin-create")).to_have_count(0)
    await expect(console.locator("#wall-admin *")).to_have_count(0)
