"""The report opens in headless Chromium: every image loads and the console logs no error.

Runs when Chromium, ChromeDriver and selenium are installed (``make e2e`` installs them);
otherwise it is skipped with a message saying so.  A screenshot of the page is kept in
``artifacts/report-screenshot.png`` as a test artifact.
"""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _driver():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser test skipped: selenium is not installed (run `make e2e`)")
    if not (chromium and driver):
        pytest.skip("browser test skipped: Chromium/ChromeDriver not installed (run `make e2e`)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1200,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.browser
def test_report_page_loads_every_image_without_console_errors(smoke_report):
    driver = _driver()
    try:
        index = smoke_report
        driver.get(index.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth]);")
        assert images, "the report has no images"
        broken = [src for src, complete, width in images if not complete or width == 0]
        assert not broken, f"images that did not load: {broken}"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        artifacts = ROOT / "artifacts"
        artifacts.mkdir(exist_ok=True)
        driver.save_screenshot(str(artifacts / "report-screenshot.png"))
    finally:
        driver.quit()
