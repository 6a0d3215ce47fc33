"""The dashboard in a real browser: headless Debian chromium (selenium with Debian's chromedriver, no
download) opens the server `run.py dashboard` starts over the test store after a small real training
run, lands on the overview (no onboarding survey), opens the latest training run, finds every step
of its graph and reads the text of keel's validation report in the sandboxed preview iframe; then
the model registry page (the steps the deployment pipeline ends with) renders there too.

Every request to a host other than 127.0.0.1 fails inside the browser (the dashboard asks for logos,
avatars and a changelog elsewhere). Screenshots are saved to tests/e2e/artifacts/ (git-ignored).
Skips when chromium or chromedriver is missing, unless KEEL_REQUIRE_SYSTEM_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REPORT_ARTIFACT = ("validate_step", "validation_report_html")
WAIT_SECONDS = 30


def _missing_browser() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


if _missing_browser():
    if os.environ.get("KEEL_REQUIRE_SYSTEM_SERVICES") == "1":
        raise RuntimeError(f"KEEL_REQUIRE_SYSTEM_SERVICES=1 but {_missing_browser()}")
    pytest.skip(f"browser test skipped: {_missing_browser()}", allow_module_level=True)



@pytest.fixture(scope="module")
def training_run():
    """A small real training run in the test store."""
    from keel.lifecycle.pipeline_runs import run_pipeline
    from keel.data.sources import source_stamp
    from keel.provenance import collect_provenance
    from keel.spec import load_spec, spec_hash
    from pipelines.training import training_pipeline

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml",
                     ["problem.name=dashboard_model", "data.source.rows=2000", "training.candidate.trials=1",
                      "training.candidate.params.n_estimators=20"])
    outcome = run_pipeline(training_pipeline, spec=spec, spec_hash=spec_hash(spec),
                           source_stamp=source_stamp(spec.data), provenance=collect_provenance())
    assert outcome.error is None, outcome.error
    return outcome.run


@pytest.fixture(scope="module")
def registry_run(training_run):
    """The registry page steps the deployment pipeline ends with, run after the training run."""
    from zenml import pipeline

    from steps.deployment.curate_registry_view import curate_registry_view_step
    from steps.deployment.registry_view import registry_view_step

    @pipeline(enable_cache=False)
    def registry_view_pipeline(model_name: str) -> None:
        curate_registry_view_step(registry_view_step(model_name), model_name)

    return registry_view_pipeline(model_name="dashboard_model")


@pytest.fixture(scope="module")
def dashboard_url(training_run, tmp_path_factory):
    """The server and dashboard exactly as `run.py dashboard` starts them, over the test store."""
    from keel.cli.dashboard import finish_onboarding, local_store_url, local_stores_path, start_server

    server = start_server(local_store_url(), local_stores_path(), free_port(),
                          folder=tmp_path_factory.mktemp("dashboard"))
    try:
        finish_onboarding(server.url)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager (which downloads browsers and drivers) must never run: both paths are given,
    # and should selenium still look for it, it finds nothing to run.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_MANAGER_PATH"] = "/nonexistent/selenium-manager"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     # every host name fails to resolve except the dashboard's own address
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_browser_reaches_no_host_but_loopback(browser):
    from selenium.common.exceptions import WebDriverException

    with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
        browser.get("http://zenml.io/")


def test_the_dashboard_shows_the_training_run_its_steps_and_a_keel_report(browser, dashboard_url, training_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard-training-run.png"
    started = time.monotonic()
    try:
        browser.get(dashboard_url)
        wait.until(lambda d: "Overview" in d.find_element(By.TAG_NAME, "body").text or "/login" in d.current_url)
        _sign_in_if_asked(browser, wait)
        assert "survey" not in browser.current_url and "onboarding" not in browser.current_url
        # The home page's greeting renders after its navigation ("Overview"): waited for, not read at once.
        wait.until(lambda d: "Welcome back" in d.find_element(By.TAG_NAME, "body").text)

        # The latest training run, found the way a user finds it: the project's run list.
        browser.get(f"{dashboard_url}/projects/default/runs")
        wait.until(lambda d: d.find_elements(By.LINK_TEXT, _run_label(training_run)))[0].click()
        wait.until(lambda d: f"/runs/{training_run.id}" in d.current_url)

        # Its graph: "Fit view" renders every node (React Flow draws only what is in view).
        _fit_view(browser, wait)
        expected_steps = set(training_run.steps)
        wait.until(lambda d: _step_names(d) >= expected_steps)
        assert _step_names(browser) == expected_steps

        # A keel report: the artifact's sheet, its Visualization tab, "Load Preview", the iframe.
        text = _report_text(browser, wait, *REPORT_ARTIFACT)
        assert "Data validation" in text
        assert "result passed" in text and "rows 2000" in text
    finally:
        browser.switch_to.default_content()
        browser.save_screenshot(str(screenshot))
        print(f"\nscreenshot: {screenshot} (browser part {time.monotonic() - started:.1f} s)")
    assert screenshot.stat().st_size > 10_000


def test_the_model_registry_page_renders_in_the_dashboard(browser, dashboard_url, registry_run):
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2)
    screenshot = ARTIFACTS / "dashboard-model-registry.png"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        browser.get(f"{dashboard_url}/projects/default/runs/{registry_run.id}")
        _fit_view(browser, wait)
        text = _report_text(browser, wait, "registry_view_step", "model_registry_html")
        from keel.registry import get_model_version_metadata

        family = get_model_version_metadata("dashboard_model", 1)["model_family"]
        assert "Model registry: dashboard_model" in text
        assert "v1 - " in text and "not evaluated" in text and family in text
    finally:
        browser.switch_to.default_content()
        browser.save_screenshot(str(screenshot))
        print(f"\nscreenshot: {screenshot}")


def _fit_view(browser, wait) -> None:
    from selenium.webdriver.common.by import By

    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label='Fit view']"))[0].click()


def _report_text(browser, wait, step_name: str, artifact_name: str) -> str:
    """Open an artifact's sheet from the run graph, its Visualization tab, "Load Preview"; return the
    text inside the sandboxed iframe the report renders in."""
    from selenium.webdriver.common.by import By

    node = wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, f"[data-id='{step_name}/outputs/step_output/{artifact_name}'] button"))[0]
    browser.execute_script("arguments[0].click()", node)  # the fitted graph draws it a few pixels wide
    _click_when_shown(browser, wait, "//button[@role='tab'][normalize-space()='Visualization']")
    _click_when_shown(browser, wait, "//button[normalize-space()='Load Preview']")
    frame = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[srcdoc]"))[0]
    assert frame.get_attribute("sandbox") == ""  # no script may run: keel's reports are static
    browser.switch_to.frame(frame)
    text = wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text)
    browser.switch_to.default_content()
    return text


def _click_when_shown(browser, wait, xpath: str) -> None:
    """Click the last element matching `xpath` once it is displayed (the artifact sheet slides in:
    a click during the animation would miss)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def shown(driver):
        try:
            found = [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed() and e.is_enabled()]
        except StaleElementReferenceException:
            return None
        return found[-1] if found else None

    browser.execute_script("arguments[0].click()", wait.until(shown))


def _run_label(run) -> str:
    """The run list shows a run as '#<index>-<name>'."""
    return f"#{run.index:04d}-{run.name}" if getattr(run, "index", None) else run.name


def _step_names(driver) -> set:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return {node.get_attribute("data-id").removeprefix("step/")
                for node in driver.find_elements(By.CSS_SELECTOR, ".react-flow__node-step")}
    except StaleElementReferenceException:  # the graph re-rendered while we read it
        return set()


def _sign_in_if_asked(driver, wait) -> None:
    """A server with authentication shows a login form; the local dashboard (no auth) does not."""
    from selenium.webdriver.common.by import By

    if "/login" not in driver.current_url:
        return
    driver.find_element(By.CSS_SELECTOR, "input[name='username']").send_keys("default")
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait.until(lambda d: "/login" not in d.current_url)
