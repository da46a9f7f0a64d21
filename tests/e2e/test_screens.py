"""The main pages render whole in a real browser: styles and scripts load, nothing errs."""

from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.clients.models import Client
from clientbase.clients.services import client_create
from tests.conftest import PASSWORD

CLIENTS = [
    {"name": "Northwind Traders", "email": "billing@northwind.example", "kind": "company"},
    {"name": "Marie Curie", "email": "marie@curie.example", "kind": "individual"},
    {"name": "Ivanov & Partners", "email": "office@ivanov.example", "kind": "company"},
    {"name": "Nguyễn Văn An", "email": "an@nguyen.example", "kind": "individual"},
]

# Counts the style sheets that loaded and have rules: a 404 or a CSP block leaves none.
LOADED_STYLESHEETS = """() => [...document.querySelectorAll('link[rel=stylesheet]')]
  .filter(link => link.sheet && link.sheet.cssRules.length > 0).length"""


def _watch(page):
    """Collect console errors (CSP violations among them) and failed or refused requests."""
    problems = []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text}"),
    )
    page.on("pageerror", lambda error: problems.append(f"script: {error}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and problems.append(f"{response.status} {response.url}")
        ),
    )
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    return problems


def _visit(page, screenshot, path: str, name: str, heading: str) -> None:
    response = page.goto(path)
    assert response.status == 200, path
    expect(page.locator("main h1")).to_contain_text(heading)
    assert page.evaluate(LOADED_STYLESHEETS) == 3, path
    # Bootstrap's script loaded and ran: it defines the global the dropdowns use.
    assert page.evaluate("() => typeof bootstrap.Dropdown") == "function", path
    screenshot(page, name)


def test_main_pages_render_with_their_styles_and_no_errors(
    live_server, page, admin_user, sign_in, screenshot
):
    """Login, dashboard, clients, profile, role editor and audit log load whole; screenshots."""
    # given an administrator and a few clients
    created = [client_create(by=admin_user, **fields) for fields in CLIENTS]
    problems = _watch(page)
    # when the sign-in page opens
    page.goto("/accounts/login/")
    # then it is styled and whole
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.evaluate(LOADED_STYLESHEETS) == 3
    screenshot(page, "login")
    # when the administrator signs in and visits the main pages
    sign_in(page, "root", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    _visit(page, screenshot, "/", "dashboard", "Good to see you, root")
    # then the dashboard shows the latest events, newest first
    expect(page.locator(".list-group-item").first).to_contain_text("Nguyễn Văn An")
    _visit(page, screenshot, "/clients/", "client_list", "Clients")
    expect(page.locator("tbody tr")).to_have_count(len(CLIENTS))
    _visit(page, screenshot, f"/clients/{created[0].pk}/", "client_detail", "Northwind Traders")
    _visit(page, screenshot, "/accounts/profile/", "profile", "root")
    sales = Role.objects.get(slug="sales")
    _visit(page, screenshot, f"/accounts/settings/roles/{sales.pk}/", "role_editor", "Sales")
    _visit(page, screenshot, "/settings/audit/", "audit_log", "Audit log")
    # and no page logged an error or lost a request
    assert problems == []
    assert Client.objects.count() == len(CLIENTS)
