"""The search page in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
Playwright against the local server. Screenshots go to test-artifacts/screenshots/ for review."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD

CHROMIUM = os.environ.get("VS_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Flags that keep Chromium from reaching for Google's hosts on a closed network.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A fresh browser per test: state left by one test's synthetic drag and drop once kept the next
    test's file chooser from opening."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=server, viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto("/")
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, secret: str = API_SECRET) -> None:
    page.get_by_label("Cloud name").fill(CLOUD)
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    if secret == API_SECRET:
        expect(page.get_by_role("search")).to_be_visible()


def drop_file(page: Page, name: str, mime: str, data: bytes) -> None:
    """A real drop event with a DataTransfer holding the file, as a user's drag and drop makes."""
    page.evaluate(
        """([name, mime, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [name, mime, base64.b64encode(data).decode()],
    )


def test_wrong_credentials_are_refused_with_the_servers_message(page):
    sign_in(page, secret="wrong")
    expect(page.locator("#signin .error")).to_contain_text("credentials")
    expect(page.get_by_role("search")).to_be_hidden()
    shot(page, "sign-in-refused")


def test_text_search_shows_a_grid_of_thumbnails_with_alt_text_and_loads_more(page):
    sign_in(page)
    page.get_by_label("Describe what you are looking for").fill("a shoe")
    page.get_by_role("button", name="Search").first.click()
    cards = page.locator("#results > li")
    expect(cards).to_have_count(24)
    expect(page.locator("#status")).to_contain_text("24 results")
    alts = cards.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.alt)")
    names = cards.locator(".pid").all_inner_texts()
    assert alts == [name.rsplit("/", 1)[-1] for name in names], "every thumbnail is described by its name"
    sources = cards.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.src)")
    assert all("_vs/renditions/" in src for src in sources), "the grid must use renditions, not originals"
    loaded = cards.locator("img").evaluate_all("(imgs) => imgs.filter((i) => i.naturalWidth > 0).length")
    assert loaded > 0
    shot(page, "text-search")

    page.get_by_role("button", name="Load more").click()
    expect(cards).to_have_count(30)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    names = cards.locator(".pid").all_inner_texts()
    assert len(set(names)) == 30, "paging repeated a hit"
    shot(page, "load-more")


def test_dropping_an_image_searches_by_it_and_a_bad_file_shows_the_api_error(page):
    sign_in(page)
    drop_file(page, "query.jpg", "image/jpeg", images.jpeg(seed=3))
    expect(page.locator("#status")).to_contain_text("for query.jpg")
    expect(page.locator("#results > li")).to_have_count(24)
    shot(page, "drop-image")

    drop_file(page, "fake.png", "image/png", images.html_page())
    expect(page.get_by_role("alert").first).to_contain_text("not an image")
    shot(page, "drop-error")


def test_clicking_a_result_searches_for_more_like_it_and_duplicates_open_in_a_dialog(page):
    sign_in(page)
    page.get_by_label("Describe what you are looking for").fill("shirt")
    page.keyboard.press("Enter")
    first = page.locator("#results .hit").first
    public_id = first.get_attribute("aria-label").removeprefix("More like ")
    first.click()
    expect(page.locator("#status")).to_contain_text(f"images like {public_id}")
    page.locator("#results .meta button").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("Duplicates of")
    shot(page, "duplicates")


def test_the_drop_zone_is_usable_from_the_keyboard(page):
    # Listen before anything happens: file-chooser interception is switched on asynchronously, and an
    # Enter pressed before it is on would open the (invisible) native dialog instead.
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    sign_in(page)
    page.get_by_label("Describe what you are looking for").focus()
    page.keyboard.press("Tab")  # from the search box, through its button, to the drop zone
    page.keyboard.press("Tab")
    expect(page.locator("#drop")).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(50)
    assert choosers, "Enter on the drop zone did not open the file picker"
    choosers[0].set_files(files=[{"name": "k.png", "mimeType": "image/png", "buffer": images.png(seed=4)}])
    expect(page.locator("#status")).to_contain_text("for k.png")


def test_the_page_is_served_with_a_strict_content_security_policy(api):
    response = api.http.request("GET", api.base + "/ui/index.html")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert api.http.request("GET", api.base + "/ui/secrets.txt").status == 404
