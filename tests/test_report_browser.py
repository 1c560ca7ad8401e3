"""The cleaning report in a real browser: headless Chromium through Selenium, no network.

Skipped only when Chromium or ChromeDriver is missing and CI is not set; .ci/run installs
Debian's chromium and chromium-driver, so in CI the test runs (and fails without them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vaekit.clean import clean

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()

pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"),
    reason="headless Chromium and ChromeDriver are not installed (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _check_page(driver, report: Path, screenshot: Path) -> None:
    driver.get(report.resolve().as_uri())
    assert driver.title.startswith("vaekit clean")
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)]);"
    )
    assert images, "the report shows no pictures"
    for complete, width, src in images:
        assert complete and width > 0 and src == "data:image/png;base64,"
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    sections = driver.execute_script(
        "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);"
    )
    assert any("anomalous" in s for s in sections)
    driver.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 20_000
    with Image.open(screenshot) as shot:  # not a blank page: the screenshot has content and colour
        pixels = np.asarray(shot.convert("RGB"), dtype=float)
    assert pixels.std() > 10


def test_table_report_in_chromium(browser, tmp_path):
    rng = np.random.RandomState(0)
    z = rng.normal(size=(300, 2))
    frame = pd.DataFrame(np.tanh(z @ rng.normal(size=(2, 5))), columns=[f"<b>c{j}</b>" for j in range(5)])
    frame["kind"] = rng.choice(["a", "b"], 300)
    frame["label"] = 0
    frame.loc[[4, 40, 140], "<b>c1</b>"] = 9.0
    frame.loc[[4, 40, 140], "label"] = 1
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with open(path, "a") as f:
        f.write("1,2\n")
    clean(path, tmp_path / "out", label_column="label", verbose=0)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<b>c1</b>" not in html and "&lt;b&gt;c1&lt;/b&gt;" in html  # a user's column name is text
    _check_page(browser, tmp_path / "out" / "report.html", tmp_path / "table.png")
    if os.environ.get("VAEKIT_SCREENSHOTS"):
        shutil.copy(tmp_path / "table.png", Path(os.environ["VAEKIT_SCREENSHOTS"]) / "report-table.png")


def test_image_report_in_chromium(browser, tmp_path):
    from sklearn.datasets import load_digits

    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(load_digits().images[:120] / 16):
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(folder / "white.png")
    (folder / "broken.png").write_bytes(b"not a png")
    clean(folder, tmp_path / "out", verbose=0)
    _check_page(browser, tmp_path / "out" / "report.html", tmp_path / "images.png")
    if os.environ.get("VAEKIT_SCREENSHOTS"):
        shutil.copy(tmp_path / "images.png", Path(os.environ["VAEKIT_SCREENSHOTS"]) / "report-images.png")
