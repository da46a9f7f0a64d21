"""Switching the interface language from the user menu."""

from playwright.sync_api import expect

from tests.conftest import PASSWORD


def test_switching_to_russian_shows_the_dashboard_in_russian(
    live_server, page, make_user, sign_in, screenshot
):
    """The user menu's language switch reloads the page in Russian and remembers the choice."""
    # given Anna signed in, with the interface in English
    anna = make_user("anna")
    sign_in(page, "anna", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    dashboard_link = page.locator("#mainnav .nav-link[href='/']")
    expect(dashboard_link).to_have_text("Dashboard")
    # when she opens her menu, picks Русский and switches
    page.click("#user-menu")
    page.select_option("select#language-switch", label="Русский")
    with page.expect_response(lambda r: r.url.endswith("/i18n/setlang/")) as switched:
        page.click("form:has(#language-switch) button[type=submit]")
    assert switched.value.status == 302
    # then the dashboard reloads in Russian
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    screenshot(page, "dashboard_ru")
    expect(dashboard_link).to_have_text("Главная")
    expect(page.locator("select#language-switch")).to_have_value("ru")
    # and the choice is kept on her account
    anna.refresh_from_db()
    assert anna.language == "ru"
