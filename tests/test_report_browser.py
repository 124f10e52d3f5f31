"""The smoke report (conftest) in headless Chromium, as a reader opens it: a real title, no horizontal overflow at
1,000 px, every figure loaded with alt text, and not one request beyond the page itself."""
import shutil

import pytest

from normlib.report import TITLE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # nothing of Chromium's own traffic in the recorded requests
WIDTH = 1000  # px: the narrowest window the page is laid out for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make browser` installs it)")]


@pytest.fixture(scope="module")
def opened(smoke_report):
    """The page loaded at WIDTH: its layout and images measured, and every request and console error recorded."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(smoke_report.as_uri(), wait_until="load")
        measured = page.evaluate("""() => ({
            title: document.title,
            scrollWidth: document.documentElement.scrollWidth,
            wide: [...document.querySelectorAll("table, figure img")].map(e => e.getBoundingClientRect().right)
                  .filter(right => right > window.innerWidth),
            images: [...document.images].map(i => ({loaded: i.complete && i.naturalWidth > 0, alt: i.alt})),
            figures: document.querySelectorAll("figure > img + figcaption").length,
        })""")
        browser.close()
    return {**measured, "requests": requests, "errors": errors, "url": smoke_report.as_uri()}


def test_title_names_the_study_and_the_grid(opened):
    assert opened["title"] == f"{TITLE}: grid smoke"


def test_no_horizontal_overflow_at_1000px(opened):
    assert opened["scrollWidth"] <= WIDTH and opened["wide"] == []


def test_every_figure_loaded_with_its_caption_as_alt_text(opened):
    images = opened["images"]
    assert len(images) >= 9 and len(images) == opened["figures"]
    assert all(i["loaded"] for i in images), images
    assert all(i["alt"].startswith("Figure ") for i in images), [i["alt"] for i in images]


def test_no_request_leaves_the_page(opened):
    outside = [u for u in opened["requests"] if u != opened["url"] and not u.startswith("data:")]
    assert outside == [] and opened["errors"] == []
