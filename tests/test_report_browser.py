"""The smoke report (conftest) in headless Chromium, as a reader opens it: a real title, no horizontal overflow at
1,000 px nor on a 420-px phone (wide tables scroll inside their own box), every figure loaded with alt text and
inside the page's column, every table and figure numbered in order under its caption, and not one request beyond the
page itself."""
import shutil

import pytest

from normlib.report.sections import TITLE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # nothing of Chromium's own traffic in the recorded requests
WIDTH = 1000  # px: the narrowest window the page is laid out for in full
PHONE = 420  # px: a phone held upright; the page must not pan sideways there

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
            column: (() => { const m = document.querySelector("main"), r = m.getBoundingClientRect(),
                             cs = getComputedStyle(m);
                             return [r.left + parseFloat(cs.paddingLeft), r.right - parseFloat(cs.paddingRight)]; })(),
            figureEdges: [...document.querySelectorAll("figure img")].map(i => {
                const r = i.getBoundingClientRect(); return [r.left, r.right]; }),
            tableCaptions: [...document.querySelectorAll("table")].map(t =>
                (t.previousElementSibling ? t.previousElementSibling.textContent : "").trim()),
            figureCaptions: [...document.querySelectorAll("figure figcaption")].map(c => c.textContent.trim()),
        })""")
        browser.close()
    return {**measured, "requests": requests, "errors": errors, "url": smoke_report.as_uri()}


def test_a_420px_phone_does_not_pan_sideways(smoke_report):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": PHONE, "height": 900})
        page.goto(smoke_report.as_uri(), wait_until="load")
        width, scrolls = page.evaluate("""() => [document.documentElement.scrollWidth,
            [...document.querySelectorAll("table")].filter(t => t.scrollWidth > t.clientWidth).length]""")
        browser.close()
    assert width <= PHONE
    assert scrolls >= 1  # the wide tables are still whole, scrolled inside their own box


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


def numbers(captions: list, kind: str) -> list:
    """The number each caption gives itself ('Table 3. ...' -> 3; None for a caption that does not start so)."""
    import re
    return [int(m.group(1)) if (m := re.match(rf"{kind} (\d+)\. \S", c)) else None for c in captions]


def test_every_table_and_figure_is_numbered_in_order_under_its_caption(opened):
    tables, figures = opened["tableCaptions"], opened["figureCaptions"]
    assert len(tables) >= 15 and len(figures) >= 9
    assert numbers(tables, "Table") == list(range(1, len(tables) + 1)), tables
    assert numbers(figures, "Figure") == list(range(1, len(figures) + 1)), figures


def test_no_figure_overflows_its_column(opened):
    left, right = opened["column"]
    assert opened["figureEdges"] and all(left - 0.5 <= a and b <= right + 0.5 for a, b in opened["figureEdges"]), (
        left, right, opened["figureEdges"])
