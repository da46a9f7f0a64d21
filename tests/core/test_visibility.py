"""Row-level visibility: all, my unit and below, only mine — in pages, search and counts."""

import pytest

from clientbase.clients.services import client_create
from clientbase.core.models import Event
from clientbase.core.visibility import visible


@pytest.fixture
def two_teams(make_user):
    """A seller in each team, each with one client."""
    ann = make_user("ann", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_b")
    mine = client_create(by=ann, name="Alpha SARL", email="alpha@example.com")
    theirs = client_create(by=bob, name="Beta LLC", email="beta@example.com")
    return {"ann": ann, "bob": bob, "mine": mine, "theirs": theirs}


def test_team_a_gets_404_for_a_team_b_record_by_url(signed_in, two_teams):
    client = signed_in(two_teams["ann"])
    assert client.get(f"/clients/{two_teams['mine'].pk}/").status_code == 200
    response = client.get(f"/clients/{two_teams['theirs'].pk}/")
    assert response.status_code == 404
    assert b"Beta LLC" not in response.content
    assert client.get(f"/clients/{two_teams['theirs'].pk}/edit/").status_code == 404


def test_list_search_and_counters_hide_other_teams(signed_in, two_teams):
    client = signed_in(two_teams["ann"])
    listing = client.get("/clients/")
    assert [c.name for c in listing.context["page"].items] == ["Alpha SARL"]
    search = client.get("/search/", {"q": "example.com"})
    hits = [hit.title for group in search.context["groups"] for hit in group["hits"]]
    assert hits == [f"{two_teams['mine'].number} · Alpha SARL"]
    dashboard = client.get("/")
    values = {c["counter"].key: c["value"] for c in dashboard.context["counters"]}
    assert values["clients.active"] == 1
    assert [e.client_id for e in dashboard.context["recent"]] == [two_teams["mine"].pk]


def test_manager_sees_the_unit_and_below(make_user, two_teams):
    region_manager = make_user("mia", role="manager", unit="region")
    team_manager = make_user("tom", role="manager", unit="team_b")
    from clientbase.clients.models import Client

    assert visible(Client.objects.order_by("name"), region_manager).count() == 2
    assert list(visible(Client.objects.all(), team_manager)) == [two_teams["theirs"]]


def test_scope_all_and_inactive_user(make_user, two_teams):
    from clientbase.clients.models import Client

    director = make_user("dir", role="director", unit="company")
    assert visible(Client.objects.all(), director).count() == 2
    director.is_active = False
    assert visible(Client.objects.all(), director).count() == 0


def test_events_follow_their_client_scope(make_user, two_teams):
    ann_events = visible(Event.objects.filter(type="client.created"), two_teams["ann"])
    assert [e.client_id for e in ann_events] == [two_teams["mine"].pk]
