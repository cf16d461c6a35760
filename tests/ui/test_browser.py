"""The page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium): list, filter, errors, trace page, tag editing, bulk tagging, compare, stats, the
token hand-off, and a hostile tag value shown as text. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from ui_support import TOKEN
from uitest_data import N_CHECKOUT, N_SEARCH, N_TOTAL

from traceduck.ui import ServerThread

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="td-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: WebDriver, until: Callable[[], Any], timeout: float = 10) -> Any:
    # The page re-renders after every edit: an element found a moment ago may be gone.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=ignored).until(
        lambda _: until()
    )


def rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#traces tr.trace-row")


def shown_ids(driver: WebDriver) -> list[str]:
    return [r.get_attribute("data-trace-id") for r in rows(driver)]


def row_count_is(driver: WebDriver, n: int) -> Callable[[], bool]:
    return lambda: len(rows(driver)) == n


def css(driver: WebDriver, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)


def type_filter(driver: WebDriver, text: str) -> None:
    box = wait(driver, lambda: css(driver, "#filter"))
    box.clear()
    box.send_keys(text + Keys.ENTER)


def screenshot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def api_ids(client: httpx.Client, flt: str) -> list[str]:
    r = client.get("/api/search", params={"filter": flt, "max_results": 1000})
    return [t["trace_id"] for t in r.json()["traces"]]


def open_trace(driver: WebDriver, server: ServerThread, trace_id: str) -> None:
    driver.get(f"{server.url}/trace/{trace_id}")
    wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#waterfall tbody tr"))


def no_alert(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018
    except NoAlertPresentException:
        return True
    return False


def test_list_loads_then_a_filter_narrows_it_and_lives_in_the_url(
    driver: WebDriver, server: ServerThread
) -> None:
    driver.get(server.url + "/")
    wait(driver, row_count_is(driver, N_TOTAL))
    screenshot(driver, "list.png")
    type_filter(driver, "tags.env = 'prod'")
    wait(driver, row_count_is(driver, N_CHECKOUT))
    assert all("prod" in r.find_element(By.CSS_SELECTOR, "td.tags").text for r in rows(driver))
    query = urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query)
    assert query["filter"] == ["tags.env = 'prod'"]
    driver.refresh()  # a bookmarked URL gives the same view
    wait(driver, row_count_is(driver, N_CHECKOUT))
    assert css(driver, "#filter").get_attribute("value") == "tags.env = 'prod'"


def test_clicking_a_tag_chip_filters_by_it(driver: WebDriver, server: ServerThread) -> None:
    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "name = 'search'"}))
    wait(driver, row_count_is(driver, N_SEARCH))
    chip = next(c for c in driver.find_elements(By.CSS_SELECTOR, ".chip.pick") if "env" in c.text)
    chip.click()
    wait(driver, lambda: "env" in css(driver, "#filter").get_attribute("value"))
    assert css(driver, "#filter").get_attribute("value") == "(name = 'search') AND tags.env = 'dev'"
    wait(driver, row_count_is(driver, N_SEARCH))


def test_next_page_follows_the_keyset_token_in_the_url(
    driver: WebDriver, server: ServerThread
) -> None:
    driver.get(server.url + "/?size=8")
    wait(driver, row_count_is(driver, 8))
    first = shown_ids(driver)
    css(driver, "#next-page").click()
    wait(driver, lambda: shown_ids(driver)[:1] not in ([], first[:1]))
    assert "page=" in driver.current_url
    second = shown_ids(driver)
    css(driver, "#next-page").click()
    wait(driver, lambda: shown_ids(driver)[:1] not in ([], second[:1]))
    third = shown_ids(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "#next-page") == []  # the last page
    assert len(set(first + second + third)) == N_TOTAL
    driver.back()
    wait(driver, lambda: shown_ids(driver) == second)


def test_bad_filter_shows_its_position_and_the_page_keeps_working(
    driver: WebDriver, server: ServerThread
) -> None:
    driver.get(server.url + "/")
    wait(driver, row_count_is(driver, N_TOTAL))
    type_filter(driver, "tags.env = 'prod' AND")
    error = wait(driver, lambda: css(driver, "#filter-error"))
    assert "position 21" in error.text and "^" in error.text
    assert rows(driver) == []
    type_filter(driver, "tags.env = 'dev'")
    wait(driver, row_count_is(driver, N_SEARCH))
    assert driver.find_elements(By.CSS_SELECTOR, "#filter-error") == []


def test_clicking_a_header_sorts_by_it(driver: WebDriver, server: ServerThread) -> None:
    driver.get(server.url + "/")
    wait(driver, row_count_is(driver, N_TOTAL))
    css(driver, "th[data-field=execution_time_ms]").click()
    wait(driver, lambda: "execution_time_ms" in driver.current_url)
    wait(driver, row_count_is(driver, N_TOTAL))

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+) (ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * (1000 if unit == "s" else 1)

    latencies = [ms(r.find_elements(By.TAG_NAME, "td")[4].text) for r in rows(driver)]
    assert latencies == sorted(latencies, reverse=True)


def test_trace_page_then_add_edit_delete_a_tag(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "status = 'ERROR'"}))
    wait(driver, row_count_is(driver, 1))
    css(driver, "a.trace-link").click()
    wait(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#waterfall tbody tr")) == 2)
    errors = css(driver, "#errors").text
    assert "card declined for order 3" in errors and "Traceback" in errors
    screenshot(driver, "trace.png")
    trace_id = driver.current_url.rsplit("/", 1)[1]
    child = css(driver, "#waterfall tbody tr:nth-child(2)")
    assert "lookup" in child.text
    css(driver, "#waterfall .twisty").click()  # fold the root: its child row hides
    wait(driver, lambda: not child.is_displayed())
    css(driver, "#waterfall .twisty").click()
    wait(driver, child.is_displayed)

    css(driver, "#new-tag-key").send_keys("reviewed")
    css(driver, "#new-tag-value").send_keys("3.2")
    css(driver, "#add-tag").click()
    value = wait(driver, lambda: css(driver, "tr[data-tag-key=reviewed] .tag-value"))
    assert value.text == "3.2"
    assert api_ids(client, "tags.reviewed > 3") == [trace_id]  # stored as a number
    wait(
        driver,
        lambda: (
            "ui" in [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#tag-history .source")]
        ),
    )

    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "tags.reviewed = 3.2"}))
    wait(driver, row_count_is(driver, 1))
    assert rows(driver)[0].get_attribute("data-trace-id") == trace_id

    open_trace(driver, server, trace_id)
    css(driver, "tr[data-tag-key=reviewed] .tag-edit").click()
    box = css(driver, "tr[data-tag-key=reviewed] .tag-edit-input")
    box.clear()
    box.send_keys("true" + Keys.ENTER)
    wait(driver, lambda: css(driver, "tr[data-tag-key=reviewed] .tag-value").text == "true")
    assert api_ids(client, "tags.reviewed = true") == [trace_id]  # a bool now

    css(driver, "tr[data-tag-key=reviewed] .tag-delete").click()
    wait(driver, lambda: not driver.find_elements(By.CSS_SELECTOR, "tr[data-tag-key=reviewed]"))
    assert api_ids(client, "tags.reviewed = true") == []
    history = client.get(f"/api/traces/{trace_id}/history").json()["tag_history"]
    assert [(e["operation"], e["source"]) for e in history if e["key"] == "reviewed"] == [
        ("set", "ui"),
        ("update", "ui"),
        ("delete", "ui"),
    ]


def test_bulk_tag_every_trace_of_the_filter_after_showing_the_count(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "tags.env = 'dev'"}))
    wait(driver, row_count_is(driver, N_SEARCH))
    css(driver, "#bulk summary").click()
    css(driver, "#bulk-key").send_keys("batch")
    css(driver, "#bulk-value").send_keys("7")
    css(driver, "#bulk-start").click()
    prompt = wait(driver, lambda: css(driver, "#bulk-count"))
    assert f"Tag {N_SEARCH} traces" in prompt.text
    assert api_ids(client, "tags.batch = 7") == []  # nothing happens before Apply
    css(driver, "#bulk-apply").click()
    wait(driver, lambda: f"Tagged {N_SEARCH} traces" in css(driver, "#bulk-msg").text)
    wait(driver, lambda: all("batch" in r.text for r in rows(driver)))
    assert len(api_ids(client, "tags.batch = 7")) == N_SEARCH


def test_hostile_tag_value_and_key_render_as_text(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    [trace_id] = api_ids(client, "name = 'report'")
    open_trace(driver, server, trace_id)
    css(driver, "#new-tag-key").send_keys("<b>note</b>")
    css(driver, "#new-tag-value").send_keys(XSS)
    css(driver, "#add-tag").click()
    wait(driver, lambda: "<b>note</b>" in css(driver, "#tags").text)
    assert XSS in [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#tags .tag-value")]
    assert client.get(f"/api/traces/{trace_id}").json()["info"]["tags"]["<b>note</b>"] == XSS

    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "name = 'report'"}))
    wait(driver, row_count_is(driver, 1))
    assert XSS in rows(driver)[0].text
    driver.get(server.url + "/stats?" + urllib.parse.urlencode({"by": "tags.<b>note</b>"}))
    wait(driver, lambda: XSS in css(driver, "#stats-table").text)
    for page in ("/", f"/trace/{trace_id}"):
        driver.get(server.url + page)
        wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#traces, #waterfall"))
        assert driver.find_elements(By.CSS_SELECTOR, "main img, main b") == []
        assert no_alert(driver)


def test_compare_selected_and_stats_chart(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "tags.env = 'prod'"}))
    wait(driver, row_count_is(driver, N_CHECKOUT))
    for row in rows(driver)[:2]:
        row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    css(driver, "#compare").click()
    table = wait(driver, lambda: css(driver, "#compare-table"))
    differing = {
        r.get_attribute("data-field") for r in table.find_elements(By.CSS_SELECTOR, "tr.diff")
    }
    assert "tags.cost" in differing and "name" not in differing and "tags.env" not in differing
    assert len(table.find_elements(By.CSS_SELECTOR, "thead th")) == 3

    driver.get(server.url + "/stats?by=tags.env")
    table = wait(driver, lambda: css(driver, "#stats-table"))
    groups = {
        r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
        for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    assert groups["prod"] == str(N_CHECKOUT) and groups["dev"] == str(N_SEARCH)
    bars = driver.find_elements(By.CSS_SELECTOR, "#latency-chart rect")
    assert len(bars) == 3 * len(groups)
    screenshot(driver, "stats.png")


def test_token_in_the_first_url_is_kept_out_of_the_address_bar(
    driver: WebDriver, token_server: ServerThread
) -> None:
    driver.get(f"{token_server.url}/?token={TOKEN}")
    wait(driver, lambda: len(rows(driver)) > 0)
    assert "token" not in driver.current_url
    assert driver.execute_script("return sessionStorage.getItem('traceduck-token')") == TOKEN
    driver.execute_script("sessionStorage.clear()")
    driver.get(token_server.url + "/")
    wait(driver, lambda: css(driver, "#auth").is_displayed())
    assert rows(driver) == []
