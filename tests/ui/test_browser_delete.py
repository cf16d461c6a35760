"""Deleting in the page (headless Chromium, as in test_browser.py): the bulk delete of the
current filter shows the count and waits for a confirmation; a trace's page deletes that trace.
A store of this module's own, since the other modules count their traces."""

from __future__ import annotations

import urllib.parse

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_browser import api_ids, css, driver, open_trace, row_count_is, rows, screenshot, wait
from uitest_data import N_CHECKOUT, N_SEARCH

from traceduck.ui import ServerThread

__all__ = ["driver"]  # the module-scoped browser fixture, shared with test_browser.py


def test_bulk_delete_shows_the_count_and_deletes_only_on_confirmation(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    driver.get(server.url + "/?" + urllib.parse.urlencode({"filter": "name = 'search'"}))
    wait(driver, row_count_is(driver, N_SEARCH))
    css(driver, "#bulk-delete summary").click()
    css(driver, "#delete-start").click()
    prompt = wait(driver, lambda: css(driver, "#delete-count"))
    assert f"Delete {N_SEARCH} traces matching this filter" in prompt.text
    screenshot(driver, "delete-confirm.png")
    css(driver, "#delete-cancel").click()
    wait(driver, lambda: not driver.find_elements(By.CSS_SELECTOR, "#delete-count"))
    assert len(api_ids(client, "name = 'search'")) == N_SEARCH  # nothing happens on Cancel

    css(driver, "#delete-start").click()
    wait(driver, lambda: css(driver, "#delete-apply")).click()
    wait(driver, lambda: f"Deleted {N_SEARCH} traces" in css(driver, "#delete-msg").text)
    wait(driver, row_count_is(driver, 0))
    assert api_ids(client, "name = 'search'") == []
    assert len(api_ids(client, "name = 'checkout'")) == N_CHECKOUT  # the others stay


def test_a_trace_page_deletes_its_trace(
    driver: WebDriver, server: ServerThread, client: httpx.Client
) -> None:
    [trace_id] = api_ids(client, "name = 'report'")
    open_trace(driver, server, trace_id)
    css(driver, "#trace-delete").click()
    wait(driver, lambda: css(driver, "#trace-delete-apply")).click()
    notice = wait(driver, lambda: css(driver, "#deleted-notice"))
    assert trace_id in notice.text
    assert urllib.parse.urlparse(driver.current_url).path == "/"
    wait(driver, lambda: len(rows(driver)) > 0)
    assert trace_id not in [r.get_attribute("data-trace-id") for r in rows(driver)]
    assert client.get(f"/api/traces/{trace_id}").status_code == 404
