"""The client list page: quick search, advanced search, keyset pages; duplicate hints."""

import pytest

from clientbase.clients.services import client_create
from clientbase.clients.views import LIST_PAGE_SIZE


@pytest.fixture
def ann(make_user):
    return make_user("ann", role="director", unit="team_a")


def _names(page) -> list[str]:
    return [c.name for c in page.context["page"].items]


def test_pages_follow_each_other_without_counting(signed_in, ann):
    # given more clients than a page holds
    for index in range(LIST_PAGE_SIZE + 3):
        client_create(by=ann, name=f"Client {index:02d}", email=f"c{index}@example.com")
    browser = signed_in(ann)
    # the first page shows the newest, and links to the next one
    first = browser.get("/clients/")
    assert _names(first)[:2] == ["Client 27", "Client 26"]
    assert len(_names(first)) == LIST_PAGE_SIZE
    after = first.context["page"].next_after
    assert first.context["next_query"] == f"after={after}"
    # the next page holds the rest, and is the last
    second = browser.get("/clients/", {"after": after})
    assert _names(second) == ["Client 02", "Client 01", "Client 00"]
    assert second.context["page"].next_after is None
    assert b'id="next-page"' not in second.content


def test_advanced_search_combines_criteria(signed_in, ann):
    client_create(by=ann, name="Alpha SARL", email="a@example.com", country="FR")
    client_create(by=ann, name="Beta GmbH", email="b@example.com", country="DE")
    client_create(by=ann, name="Alpha Inc", email="c@example.com", country="US")
    browser = signed_in(ann)
    both = {
        "c0_field": "name",
        "c0_op": "like",
        "c0_value": "Alpha%",
        "c1_field": "country",
        "c1_op": "is",
        "c1_value": "FR",
    }
    assert _names(browser.get("/clients/", both)) == ["Alpha SARL"]
    assert _names(browser.get("/clients/", both | {"match": "any"})) == [
        "Alpha Inc",
        "Alpha SARL",
    ]


def test_advanced_search_shows_what_is_wrong_at_the_criterion(signed_in, ann):
    client_create(by=ann, name="Alpha SARL", email="a@example.com")
    page = signed_in(ann).get(
        "/clients/",
        {"c0_field": "created_at", "c0_op": "between", "c0_value": "yesterday"},
    )
    assert _names(page) == []
    row = page.context["criteria_rows"][0]
    assert row[2] == ["Enter a date as YYYY-MM-DD."]
    assert b"criterion-error" in page.content


def test_duplicate_hint_links_a_visible_client_and_hides_an_unseen_one(signed_in, make_user, ann):
    bob = make_user("bob", role="sales", unit="team_b")
    seen = client_create(by=ann, name="Alpha SARL", email="alpha@example.com", phone="+33612345678")
    client_create(by=bob, name="Hidden SA", email="hidden@example.com", tax_id="FR40303265045")
    sam = make_user("sam", role="manager", unit="team_a")
    browser = signed_in(sam)
    # a phone typed the French way, with the country chosen
    hint = browser.get("/clients/duplicates/", {"phone": "06 12 34 56 78", "country": "FR"})
    assert [(d.field, d.client.pk, d.visible) for d in hint.context["duplicates"]] == [
        ("phone", seen.pk, True)
    ]
    assert f'href="/clients/{seen.pk}/"'.encode() in hint.content
    # a tax id of a client outside the view is named as such, without a link
    hint = browser.get(
        "/clients/duplicates/", {"tax_id": "FR 40 303 265 045", "country": "FR", "kind": "company"}
    )
    assert [(d.field, d.visible) for d in hint.context["duplicates"]] == [("tax_id", False)]
    assert b"outside your view" in hint.content
    assert b"Hidden SA" not in hint.content
    # a half-typed email is not looked up; the client's own email is excluded when editing
    assert browser.get("/clients/duplicates/", {"email": "alpha@"}).context["duplicates"] == []
    own = browser.get("/clients/duplicates/", {"email": "ALPHA@example.com", "exclude": seen.pk})
    assert own.context["duplicates"] == []


def test_the_client_form_asks_for_duplicates_while_typing(signed_in, ann):
    page = signed_in(ann).get("/clients/new/?mode=simple")
    html = page.content.decode()
    assert 'hx-get="/clients/duplicates/"' in html
    assert 'id="duplicates-email"' in html
    assert 'id="duplicates-phone"' in html


def test_api_duplicates(api_client, ann):
    seen = client_create(by=ann, name="Alpha SARL", email="alpha@example.com")
    response = api_client(ann).get("/api/v1/clients/duplicates", {"email": "Alpha@Example.com"})
    assert response.json() == [{"field": "email", "client_id": seen.pk, "number": seen.number}]


def test_api_list_pages_by_keyset(api_client, ann):
    made = [client_create(by=ann, name=f"Client {i}", email=f"k{i}@example.com") for i in range(5)]
    http = api_client(ann)
    first = http.get("/api/v1/clients", {"limit": 2}).json()
    assert [c["name"] for c in first["items"]] == ["Client 4", "Client 3"]
    after = first["items"][-1]["id"]
    second = http.get("/api/v1/clients", {"limit": 2, "after": after}).json()
    assert [c["name"] for c in second["items"]] == ["Client 2", "Client 1"]
    assert second["count"] == 3
    assert made[0].pk < after
