"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server."""

import os
import time
from pathlib import Path

import pytest
from django_otp.oath import hotp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS = E2E_DIR.parents[1] / "test-artifacts"
TIMEOUT_MS = 15_000
# django-otp's TOTPDevice defaults: 30-second steps counted from the epoch, six digits.
TOTP_STEP = 30
TOTP_DIGITS = 6


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e/ is an `e2e` test, so `-m "not e2e"` leaves them all out."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which makes Django
    # refuse synchronous database calls from the test body unless told that this is safe.
    # Set here, not at import, so the rest of the suite keeps Django's check.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(autouse=True)
def default_roles(transactional_db):
    """The default roles, which the migration made but a transactional test's flush removed."""
    from clientbase.accounts.models import Role
    from clientbase.accounts.roles import ensure_default_roles

    ensure_default_roles(Role)


@pytest.fixture
def new_page(browser, live_server):
    """Open a page in a fresh browser profile (own cookies), speaking English, on the live server."""
    contexts = []

    def open_page():
        context = browser.new_context(
            base_url=live_server.url,
            locale="en-US",
            timezone_id="UTC",
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A page in a fresh browser profile."""
    return new_page()


@pytest.fixture
def sign_in():
    """Fill in the password form; returns the response to the POST."""

    def submit(page, username: str, password: str):
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_response(
            lambda r: r.url.endswith("/accounts/login/") and r.request.method == "POST"
        ) as posted:
            page.click("button[type=submit]:has-text('Sign in')")
        page.wait_for_load_state()
        return posted.value

    return submit


@pytest.fixture
def screenshot():
    """Save a full-page screenshot to test-artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        target = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    return take


@pytest.fixture
def totp_code():
    """The code an authenticator app shows for a hex key, `steps` time steps from now."""

    def code(key_hex: str, steps: int = 0) -> str:
        counter = int(time.time()) // TOTP_STEP + steps
        return f"{hotp(bytes.fromhex(key_hex), counter, TOTP_DIGITS):0{TOTP_DIGITS}d}"

    return code


@pytest.fixture
def wrong_code(totp_code):
    """A six-digit code that no time step near now accepts for a hex key."""

    def code(key_hex: str) -> str:
        near = {totp_code(key_hex, steps) for steps in range(-3, 4)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)

    return code
