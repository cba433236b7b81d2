"""The console in a real browser: Debian's Chromium, headless, driven by Playwright against
``frontdesk serve`` in a child process on a loopback port.

An operator logs in, opens a support run and sees the handoff to ``billing_specialist`` and
its tool calls, approves the pending refund in the inbox and watches the run complete live
(while a second operator's inbox updates by itself), chats with the airline agents and sees
the agent view follow the handoff, and sees a script in a customer message shown as text.
Screenshots are saved under the test session's temporary directory (``screenshots/``), or
under ``$FRONTDESK_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from test_api import REFUND, TOKEN, Console, running_console

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
]

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory, "browser") as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("FRONTDESK_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def logged_in(browser: Browser, console: Console, name: str) -> Page:
    """A new browser context logged in through the console's form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    page.goto(f"{console.url}/approvals")
    expect(page).to_have_url(f"{console.url}/login?next=/approvals")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{console.url}/approvals")
    expect(page.locator("header .who")).to_have_text(name)
    return page


def test_login_refuses_a_wrong_token(browser: Browser, console: Console) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{console.url}/")
    page.fill("input[name=name]", "mallory")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("not the API token")
    context.close()


def test_support_run_handoff_tools_and_live_approval(
    browser: Browser, console: Console, shots: Path
) -> None:
    init_db(console.home, reset=True)
    waiting = console.runtime.run(support_triage, REFUND)
    assert waiting.status == "waiting_approval"
    alice = logged_in(browser, console, "alice")
    bob = logged_in(browser, console, "bob")  # a second operator, watching the inbox

    # The runs list links to the run; its page shows the handoff and the tool calls.
    alice.goto(f"{console.url}/")
    row = alice.locator(f"tr[data-run='{waiting.execution_id}']")
    expect(row).to_contain_text("waiting approval")
    row.locator("a").first.click()
    expect(alice).to_have_url(f"{console.url}/runs/{waiting.execution_id}")
    expect(alice.locator(".handoff-target")).to_have_text("billing_specialist")
    for tool in ("get_account", "get_invoice"):
        expect(alice.locator("tr.ev-tool_call .tool-name", has_text=tool)).to_have_count(1)
        expect(alice.locator("tr.ev-tool_result .tool-name", has_text=tool)).to_have_count(1)
    expect(alice.locator("tr.ev-tool_call pre.args").first).to_contain_text("INV-8821")
    view = alice.locator("figure.agent-view")
    expect(view.locator("g.agent.current")).to_have_attribute("data-agent", "billing_specialist")
    expect(view.locator("g.agent.visited[data-agent='support_triage']")).to_have_count(1)
    expect(view.locator("path.edge.taken")).to_have_count(1)
    used = view.locator("g.agent[data-agent='billing_specialist'] text.tool.used")
    expect(used).to_have_count(2)
    expect(alice.locator("h1 .status")).to_have_text("waiting approval")
    alice.screenshot(path=str(shots / "run-detail-waiting.png"), full_page=True)

    # Bob's inbox shows the refund, oldest first, with the customer's message.
    bob.goto(f"{console.url}/approvals")
    item = bob.locator(f"article.approval:has(a[href='/runs/{waiting.execution_id}'])")
    expect(item.locator(".tool-name")).to_have_text("process_refund")
    expect(item.locator(".customer-message")).to_have_text(REFUND)
    expect(item.locator("pre.args")).to_contain_text("INV-8821")
    bob.screenshot(path=str(shots / "approvals-inbox.png"), full_page=True)

    # Alice keeps the run open in one tab and approves from the inbox in another.
    inbox = alice.context.new_page()
    inbox.goto(f"{console.url}/approvals")
    mine = inbox.locator(f"article.approval:has(a[href='/runs/{waiting.execution_id}'])")
    mine.locator("input[name=note]").fill("duplicate charge confirmed")
    mine.locator("button.approve").click()
    expect(inbox).to_have_url(f"{console.url}/approvals")
    decided = inbox.locator("table.decided tr", has_text=waiting.execution_id)
    expect(decided.locator(".decided-by")).to_have_text("alice")

    # The run page, never reloaded, follows the run to its end.
    expect(alice.locator("h1 .status")).to_have_text("completed")
    expect(alice.locator("tr.ev-approval_decided")).to_contain_text("approved")
    expect(alice.locator("tr.ev-approval_decided")).to_contain_text("alice")
    expect(alice.locator("tr.ev-tool_result .tool-name")).to_contain_text(["process_refund"])
    expect(alice.locator("pre.final-output")).not_to_be_empty()
    alice.screenshot(path=str(shots / "run-detail-completed.png"), full_page=True)

    # Bob's inbox, never reloaded either, shows alice's decision.
    expect(item).to_have_count(0)
    expect(bob.locator("table.decided tr", has_text=waiting.execution_id)).to_contain_text("alice")
    assert console.runtime.get(waiting.execution_id).status == "completed"
    for page in (alice, bob):
        page.context.close()


def test_airline_chat_agent_view_follows_the_handoff(
    browser: Browser, console: Console, shots: Path
) -> None:
    page = logged_in(browser, console, "carol")
    page.goto(f"{console.url}/conversations")
    page.select_option("select[name=app]", "airline")
    page.click("form.inline button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Conversation")
    view = page.locator("figure.agent-view")
    expect(view.locator("g.agent.current")).to_have_attribute("data-agent", "Triage Agent")

    page.fill("input[name=message]", "I'd like to change my seat")
    page.click("form.chat-form button")
    expect(page.locator("ol.chat-log li.user")).to_have_text(["User: I'd like to change my seat"])
    expect(page.locator("ol.chat-log li.handoff")).to_contain_text(
        ["Handed off from Triage Agent to Seat Booking Agent"]
    )
    expect(view.locator("g.agent.current")).to_have_attribute("data-agent", "Seat Booking Agent")
    expect(page.locator(".side > p .current-agent")).to_have_text("Seat Booking Agent")
    expect(view.locator("path.edge.taken")).to_have_count(1)

    page.fill("input[name=message]", "My confirmation number is LL0EZ6")
    page.click("form.chat-form button")
    expect(page.locator("ol.chat-log li.user")).to_have_count(2)
    # The view traces the conversation, not only its last turn: the handoff stays taken.
    expect(view.locator("g.agent.current")).to_have_attribute("data-agent", "Seat Booking Agent")
    expect(view.locator("path.edge.taken")).to_have_count(1)
    expect(view.locator("g.agent.visited[data-agent='Triage Agent']")).to_have_count(1)
    page.screenshot(path=str(shots / "conversation.png"), full_page=True)

    # A second tab sends first: this one is stale, says so and shows the current history.
    other = page.context.new_page()
    other.goto(page.url)
    other.fill("input[name=message]", "What is the baggage allowance?")
    other.click("form.chat-form button")
    expect(other.locator("ol.chat-log li.user")).to_have_count(3)
    page.fill("input[name=message]", "Seat 23A please")
    page.click("form.chat-form button")
    expect(page.locator("p.notice")).to_contain_text("Stale conversation")
    expect(page.locator("ol.chat-log li.user")).to_have_count(3)
    page.context.close()


def test_a_script_in_a_customer_message_is_shown_as_text(
    browser: Browser, console: Console, shots: Path
) -> None:
    payload = "<script>alert('xss')</script><img src=x onerror=\"alert('img')\">"
    result = console.runtime.run(support_triage, f"Refund for invoice INV-8821 please {payload}")
    page = logged_in(browser, console, "dave")
    page.goto(f"{console.url}/runs/{result.execution_id}")
    expect(page.locator("section.message pre")).to_contain_text(payload)
    page.goto(f"{console.url}/")
    expect(page.locator(f"tr[data-run='{result.execution_id}'] td.text")).to_contain_text(
        "<script>alert('xss')</script>"
    )
    # In a conversation too.
    page.goto(f"{console.url}/conversations")
    page.select_option("select[name=app]", "airline")
    page.click("form.inline button[type=submit]")
    page.fill("input[name=message]", payload)
    page.click("form.chat-form button")
    expect(page.locator("ol.chat-log li.user")).to_have_text([f"User: {payload}"])
    page.screenshot(path=str(shots / "xss-as-text.png"), full_page=True)
    assert page.locator("img[src=x]").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]
    page.context.close()


def test_new_run_trace_arrives_live_and_the_list_follows(
    browser: Browser, console: Console
) -> None:
    page = logged_in(browser, console, "erin")
    watcher = page.context.new_page()
    watcher.goto(f"{console.url}/?app=support")
    expect(watcher.locator("#live[data-live]")).to_have_count(1)

    page.goto(f"{console.url}/runs/new")
    page.select_option("select[name=app]", "support")
    page.fill("textarea[name=message]", "I cannot log in, please reset my password")
    page.click("form.new-run button[type=submit]")
    expect(page).to_have_url(re.compile(rf"{re.escape(console.url)}/runs/run_\w+"))
    execution_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1 .status")).to_have_text("completed")
    expect(page.locator(".handoff-target")).to_have_text("technical_specialist")
    expect(page.locator("g.agent.current")).to_have_attribute("data-agent", "technical_specialist")

    # The runs list, open in another tab, shows the new run without being reloaded.
    expect(watcher.locator(f"tr[data-run='{execution_id}']")).to_contain_text("completed")
    page.context.close()
