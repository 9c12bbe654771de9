"""Headless Chromium (Debian's package) driven by Playwright, with no browser download."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("WAGATE_REQUIRE_INTEGRATION") == "1":
            pytest.fail("chromium is not installed (Debian package: chromium)")
        pytest.skip("chromium is not installed (Debian package: chromium)")
    return path


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_dir(default: Path) -> Path:
    """Where screenshots go: WAGATE_SCREENSHOT_DIR (`make screenshots` sets docs/screenshots)."""
    folder = Path(os.environ.get("WAGATE_SCREENSHOT_DIR") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def policy_problems(context) -> list[str]:
    """Record, for every page of `context`, what its Content-Security-Policy refused (Chromium
    reports each refusal as a console error) and every uncaught script error."""
    problems: list[str] = []

    def console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            where = message.location
            problems.append(f"{message.text} ({where.get('url')}:{where.get('lineNumber')})")

    # Chromium's own message names the directive; this one adds what was refused, and where.
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => console.error("
        "'Content Security Policy violation:', e.violatedDirective, JSON.stringify(e.sample),"
        " e.sourceFile + ':' + e.lineNumber, e.target && e.target.outerHTML"
        " ? e.target.outerHTML.slice(0, 200) : String(e.target)))"
    )
    context.on("console", console)
    context.on("weberror", lambda error: problems.append(str(error.error)))
    return problems
