"""The dashboards as pictures: each one rendered by the local Superset in headless Chromium (Debian's, which
`make setup` installs), signed in as the local admin, saved as PNG (`lakehouse screenshots`, docs/images/)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, Response, sync_playwright

from lakehouse.analytics.superset import ADMIN_PASSWORD, ADMIN_USER

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 120_000  # generous: a loaded 2-core machine; nothing is timed
VIEWPORT = {"width": 1400, "height": 900}
CHART = ".dashboard-component-chart-holder"
# What a chart shows once drawn: an ECharts canvas, a big number, a table, or the "no results" notice
DRAWN = "canvas, .superset-legacy-chart-big-number, table.table, .ant-empty-description"
FAILED = ".ant-alert-error, .alert-danger"


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page of a headless Chromium, closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def sign_in(page: Page, superset_url: str) -> Response | None:
    """Sign in through Superset's login form; returns the login page's response."""
    login = page.goto(f"{superset_url}/login/")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/superset/welcome/**", timeout=WAIT_MS)
    return login


def wait_until_drawn(page: Page) -> dict[str, str]:
    """Wait until every chart of the open dashboard is drawn; returns {chart title: "drawn" or "failed"}."""
    page.wait_for_function(
        f"""() => {{
            const charts = [...document.querySelectorAll('{CHART}')];
            return charts.length > 0 && charts.every(c => c.querySelector('{DRAWN}, {FAILED}'));
        }}""", timeout=WAIT_MS)
    page.wait_for_load_state("networkidle", timeout=WAIT_MS)
    return page.evaluate(f"""() => Object.fromEntries([...document.querySelectorAll('{CHART}')].map(c => [
        c.querySelector('.editable-title')?.innerText ?? '?',
        c.querySelector('{FAILED}') ? 'failed' : 'drawn']))""")


def settled_screenshot(page: Page, path: Path) -> None:
    """Screenshot once two in a row are the same: ECharts draws its lines with an animation."""
    previous = b""
    for _ in range(120):
        shot = page.screenshot(full_page=True)
        if shot == previous:
            break
        previous = shot
        page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(shot)


def capture(superset_url: str, dashboards: Mapping[str, str], out_dir: Path) -> list[Path]:
    """`out_dir/<slug>.png` of each dashboard ({title: slug}, as dashboards.render.bundle_dashboards gives them),
    once its charts have drawn."""
    shots = []
    with browser_page() as page:
        sign_in(page, superset_url)
        for title, slug in dashboards.items():
            page.goto(f"{superset_url}/superset/dashboard/{slug}/")
            page.get_by_text(title).first.wait_for(timeout=WAIT_MS)
            failed = sorted(chart for chart, state in wait_until_drawn(page).items() if state == "failed")
            if failed:
                raise RuntimeError(f"dashboard '{title}': charts {failed} show an error instead of data "
                                   f"(open {superset_url}/superset/dashboard/{slug}/ to read it)")
            shots.append(out_dir / f"{slug}.png")
            settled_screenshot(page, shots[-1])
    return shots
