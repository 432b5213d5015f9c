"""The Models panel in a real headless Chromium, against a loopback Hub (tests/hub_server.py) the app reaches
through HF_ENDPOINT: a whole download watched on the page (downloading x of y GB at z MB/s, then ready with its
size on disk), in English and Chinese, then Delete refused until "I am sure" is ticked and limited to that repo's
cache entry. Its own app, with HF_HOME in a temporary folder."""
from __future__ import annotations

import re

import pytest

from i2v.models import DEFAULT_FAMILY
from tests.conftest import RunningApp
from tests.hub_server import HubServer, Repo
from tests.test_browser import assert_clean, browser, close_pages, label, open_page, said_pattern  # noqa: F401
from tests.test_downloads import WEIGHTS, synthetic_files

pytestmark = pytest.mark.browser
REPO = DEFAULT_FAMILY.repo_id          # the family row the page shows, served by the loopback Hub
RATE = 1_000_000                      # bytes/s of the weights: a download long enough to be watched


@pytest.fixture(scope="module")
def hub():
    server = HubServer({REPO: Repo(synthetic_files())})
    server.faults.throttle[WEIGHTS] = RATE
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-downloads-app")
    running = RunningApp(tmp, extra_env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "0"})
    running.hf_home = tmp / "hf"
    yield running
    running.stop()


def models_tab(page, locale: str):
    page.get_by_role("tab", name=label(locale, "models_panel")).click()
    page.locator("#i2v-models-table table").wait_for()
    return page.locator("#i2v-models-table")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_download_is_watched_on_the_page_then_deleted_after_confirmation(browser, app, hub, locale):
    page = open_page(browser, app.url, locale)
    table = models_tab(page, locale)
    row = table.locator("tr", has_text=REPO)
    entry = app.hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    assert re.search(said_pattern(locale, "models_state_absent"), row.inner_text())
    page.locator("#i2v-models-download").click()
    downloading = said_pattern(locale, "models_state_downloading")
    page.wait_for_function("([sel, re]) => new RegExp(re).test(document.querySelector(sel).innerText)",
                           arg=["#i2v-models-table", downloading.pattern])
    shown = downloading.search(row.inner_text())
    assert shown is not None and "MB/s" in shown.group(0)
    ready = said_pattern(locale, "models_state_ready")
    page.wait_for_function("([sel, re]) => new RegExp(re).test(document.querySelector(sel).innerText)",
                           arg=["#i2v-models-table", ready.pattern])
    assert (entry / "blobs").is_dir()
    page.locator("#i2v-models-delete").click()                 # not confirmed: refused, nothing deleted
    page.locator("#i2v-models-message", has_text=said_pattern(locale, "models_confirm_delete", repo=REPO)).wait_for()
    assert entry.is_dir()
    neighbour = entry.parent / "models--someone--else"
    neighbour.mkdir(parents=True, exist_ok=True)
    page.locator("#i2v-models-sure input").check()
    page.locator("#i2v-models-delete").click()
    page.locator("#i2v-models-message", has_text=said_pattern(locale, "models_deleted", repo=REPO)).wait_for()
    assert not entry.exists() and neighbour.is_dir()
    page.wait_for_function("([sel, re]) => new RegExp(re).test(document.querySelector(sel).innerText)",
                           arg=["#i2v-models-table", said_pattern(locale, "models_state_absent").pattern])
    assert_clean(page)
