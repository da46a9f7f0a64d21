"""Groups of companies (CUS-14), merge and delete (CUS-15), and the profile around them."""

import threading

import pytest
from django.db import connection

from clientbase.clients import queries, services
from clientbase.clients.models import Address, Client, Contact, DeferredAction, Note
from clientbase.clients.services import client_create, client_update
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry, Event


@pytest.fixture
def ann(make_user):
    return make_user("ann", role="director", unit="team_a")


def _company(by, name: str, **fields) -> Client:
    fields.setdefault("email", f"{name.lower().replace(' ', '.')}@example.com")
    return client_create(by=by, name=name, **fields)


# --- hierarchy -------------------------------------------------------------------------------


def test_members_form_a_tree_shown_from_the_top(ann):
    # given a holding with two members, one of which has its own member
    holding = _company(ann, "Holding SA")
    north = _company(ann, "North SARL", parent=holding)
    south = _company(ann, "South SARL", parent=holding, bill_to_parent=True)
    depot = _company(ann, "Depot EURL", parent=north)
    # when the profile of the deepest member asks for its group
    tree = queries.group_tree(ann, depot)
    # then the whole group is listed from the top, members by name, with depths
    assert [(n.client.name, n.depth, n.visible) for n in tree] == [
        ("Holding SA", 0, True),
        ("North SARL", 1, True),
        ("Depot EURL", 2, True),
        ("South SARL", 1, True),
    ]
    assert south.bill_to_parent is True
    assert queries.group_tree(ann, _company(ann, "Alone SA")) == []


def test_a_group_never_contains_itself(ann):
    holding = _company(ann, "Holding SA")
    north = _company(ann, "North SARL", parent=holding)
    depot = _company(ann, "Depot EURL", parent=north)
    # a company under its own member is refused, and nothing changes
    with pytest.raises(ServiceError) as refused:
        client_update(client=holding, by=ann, parent=depot)
    assert refused.value.message_dict == {
        "parent": ["A client cannot belong to itself or to its own member."]
    }
    with pytest.raises(ServiceError) as refused:
        client_update(client=holding, by=ann, parent=holding)
    assert refused.value.message_dict == {
        "parent": ["A client cannot belong to itself or to its own member."]
    }
    holding.refresh_from_db()
    assert holding.parent_id is None
    assert holding.version == 1


def test_a_parent_is_a_company_and_billing_up_needs_one(ann):
    person = client_create(
        by=ann, kind="individual", first_name="Ivan", last_name="Petrov", email="ivan@example.com"
    )
    with pytest.raises(ServiceError) as refused:
        _company(ann, "North SARL", parent=person)
    assert refused.value.message_dict == {"parent": ["A parent must be a company."]}
    with pytest.raises(ServiceError) as refused:
        _company(ann, "Lone SARL", bill_to_parent=True)
    assert refused.value.message_dict == {
        "bill_to_parent": ["Only a member company can send charges to a parent."]
    }
    assert Client.objects.count() == 1


def test_companies_outside_the_view_show_by_number_only(make_user, ann):
    # given a holding in team B with a member in team A
    bob = make_user("bob", role="sales", unit="team_b")
    holding = _company(bob, "Holding SA")
    member = _company(ann, "North SARL", parent=holding)
    sam = make_user("sam", role="sales", unit="team_a")
    client_update(client=member, by=ann, owner=sam)
    # when sam (who sees only his own clients) opens the member's group
    tree = queries.group_tree(sam, member)
    # then the holding is there, but not visible to open
    assert [(n.client.number, n.visible) for n in tree] == [
        (holding.number, False),
        (member.number, True),
    ]


# --- merge -------------------------------------------------------------------------------------


@pytest.fixture
def pair(ann):
    survivor = _company(ann, "Alpha SARL", country="FR", custom={})
    merged = _company(ann, "Alpha Duplicate", country="FR")
    services.contact_add(client=merged, by=ann, last_name="Curie", phones={"mobile": "0612345678"})
    services.address_add(
        client=merged, by=ann, type="billing", line1="1 rue A", city="Paris", country="FR"
    )
    services.note_add(client=merged, body="Called about the invoice", by=ann)
    return survivor, merged


def test_merge_moves_everything_and_keeps_history_readable(ann, pair):
    survivor, merged = pair
    member = _company(ann, "Member SARL", parent=merged)
    referral = _company(ann, "Referral SARL", referred_by=merged)
    # when the second is merged into the first
    services.client_merge(survivor=survivor, merged=merged, by=ann)
    # then contacts, addresses, members and referrals belong to the survivor
    assert list(Contact.objects.filter(client=survivor).values_list("last_name", flat=True)) == [
        "Curie"
    ]
    assert list(Address.objects.filter(client=survivor).values_list("line1", flat=True)) == [
        "1 rue A"
    ]
    member.refresh_from_db()
    referral.refresh_from_db()
    assert (member.parent_id, referral.referred_by_id) == (survivor.pk, survivor.pk)
    # the merged client is out of the base, pointing at the survivor, closed
    assert not Client.objects.filter(pk=merged.pk).exists()
    gone = Client.everything.get(pk=merged.pk)
    assert (gone.merged_into_id, gone.status) == (survivor.pk, "closed")
    # its notes and history show on the survivor's profile, marked as its own events
    assert [n.body for n in queries.notes_of(ann, survivor)] == ["Called about the invoice"]
    feed = list(queries.newsfeed_of(ann, survivor).values_list("type", "client_id"))
    assert feed[0] == ("client.merged_in", survivor.pk)
    assert ("note.added", merged.pk) in feed
    # the merged client's own "merged into" line is left out of the survivor's feed
    assert ("client.merged_away", merged.pk) not in feed
    assert Event.objects.get(type="client.merged_in").message == (
        f"Client {merged.number} Alpha Duplicate merged into this account"
    )
    # the merged client's change is in the audit log (the survivor's own fields did not change)
    entry = AuditEntry.objects.filter(action="update").get()
    assert (entry.object_id, entry.changes["merged_into_id"]) == (
        str(merged.pk),
        {"before": None, "after": survivor.pk},
    )


def test_merged_email_is_free_for_a_new_client(ann, pair):
    survivor, merged = pair
    services.client_merge(survivor=survivor, merged=merged, by=ann)
    again = client_create(by=ann, name="New Alpha", email="ALPHA.Duplicate@example.com")
    assert again.email == "ALPHA.Duplicate@example.com"


def test_merge_refusals_change_nothing(ann, pair):
    survivor, merged = pair
    with pytest.raises(ServiceError) as refused:
        services.client_merge(survivor=survivor, merged=survivor, by=ann)
    assert refused.value.message_dict == {"merged": ["Choose two different clients."]}
    dollars = _company(ann, "Dollar Inc", currency="USD")
    with pytest.raises(ServiceError) as refused:
        services.client_merge(survivor=survivor, merged=dollars, by=ann)
    assert refused.value.message_dict == {
        "merged": ["Both clients must bill in the same currency (EUR and USD)."]
    }
    assert Contact.objects.filter(client=merged).count() == 1
    assert Client.objects.filter(merged_into__isnull=False).count() == 0
    assert Client.everything.filter(merged_into__isnull=False).count() == 0


def test_a_member_merged_with_its_parent_takes_its_place(ann):
    top = _company(ann, "Top SA")
    parent = _company(ann, "Parent SA", parent=top)
    member = _company(ann, "Member SARL", parent=parent, bill_to_parent=True)
    services.client_merge(survivor=member, merged=parent, by=ann)
    member.refresh_from_db()
    assert (member.parent_id, member.bill_to_parent) == (top.pk, True)


def test_pending_changes_of_the_merged_client_are_cancelled(ann, pair):
    survivor, merged = pair
    due = clock.today().replace(year=clock.today().year + 1)
    services.client_set_status(
        client=merged, status="inactive", reason="Asked", by=ann, effective=due
    )
    services.client_merge(survivor=survivor, merged=merged, by=ann)
    assert DeferredAction.objects.count() == 0
    survivor.refresh_from_db()
    assert survivor.status == "active"


def test_a_second_merge_follows_the_first(ann, pair):
    survivor, merged = pair
    third = _company(ann, "Third SARL")
    services.client_merge(survivor=third, merged=merged, by=ann)
    services.client_merge(survivor=survivor, merged=third, by=ann)
    # the first merged client now points at the final survivor, so its notes show there
    assert Client.everything.get(pk=merged.pk).merged_into_id == survivor.pk
    assert [n.body for n in queries.notes_of(ann, survivor)] == ["Called about the invoice"]


def test_notes_of_a_merged_client_follow_the_survivor_to_a_new_owner(make_user, ann, pair):
    survivor, merged = pair
    services.client_merge(survivor=survivor, merged=merged, by=ann)
    bob = make_user("bob", role="sales", unit="team_b")
    client_update(client=survivor, by=ann, owner=bob, org_unit=bob.org_unit)
    assert [n.body for n in queries.notes_of(bob, survivor)] == ["Called about the invoice"]
    assert Note.objects.get().client_id == merged.pk


# --- delete ------------------------------------------------------------------------------------


def test_delete_takes_the_client_out_and_keeps_its_history(ann, pair):
    survivor, _merged = pair
    services.client_delete(client=survivor, reason="Test account", by=ann)
    assert not Client.objects.filter(pk=survivor.pk).exists()
    gone = Client.everything.get(pk=survivor.pk)
    assert (gone.status, gone.deleted_at is not None) == ("closed", True)
    assert Event.objects.filter(client=gone, type="client.deleted").get().message == (
        "Client deleted: Test account"
    )


def test_delete_is_refused_without_a_reason_or_with_members(ann):
    holding = _company(ann, "Holding SA")
    _company(ann, "North SARL", parent=holding)
    with pytest.raises(ServiceError) as refused:
        services.client_delete(client=holding, reason=" ", by=ann)
    assert refused.value.message_dict == {"reason": ["Give a reason for deleting the client."]}
    with pytest.raises(ServiceError) as refused:
        services.client_delete(client=holding, reason="Gone", by=ann)
    assert refused.value.messages == [
        "1 member company belongs to this client; move it to another parent first."
    ]
    assert Client.objects.filter(pk=holding.pk).exists()


def test_another_module_may_refuse_a_delete(ann, monkeypatch):
    holding = _company(ann, "Holding SA")
    monkeypatch.setattr(services, "DELETE_CHECKS", [lambda client: "2 unpaid invoices"])
    with pytest.raises(ServiceError) as refused:
        services.client_delete(client=holding, reason="Gone", by=ann)
    assert refused.value.messages == ["2 unpaid invoices"]
    assert Client.objects.filter(pk=holding.pk).exists()


# --- pages and API -----------------------------------------------------------------------------


def test_merge_page_compares_then_merges(signed_in, ann, pair):
    survivor, merged = pair
    browser = signed_in(ann)
    # the clerk types the other client's number and sees both side by side
    page = browser.get(f"/clients/{survivor.pk}/merge/", {"other": merged.number})
    assert page.status_code == 200
    assert page.context["merged"] == merged
    # posting without the confirmation merges nothing
    browser.post(f"/clients/{survivor.pk}/merge/", {"other": merged.number})
    assert Client.objects.filter(pk=merged.pk).exists()
    response = browser.post(
        f"/clients/{survivor.pk}/merge/", {"other": merged.number, "confirm": "on"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/clients/{survivor.pk}/"
    assert Client.everything.get(pk=merged.pk).merged_into_id == survivor.pk
    # the merged client's page is gone
    assert browser.get(f"/clients/{merged.pk}/").status_code == 404


def test_merge_page_refuses_an_unknown_number_and_needs_the_permission(
    signed_in, make_user, ann, pair
):
    survivor, _merged = pair
    page = signed_in(ann).get(f"/clients/{survivor.pk}/merge/", {"other": "nope"})
    assert page.context["form"].errors == {"other": ["No client with this number in your view."]}
    sam = make_user("sam", role="sales", unit="team_a")
    assert signed_in(sam).get(f"/clients/{survivor.pk}/merge/").status_code == 403


def test_delete_page_needs_the_number_typed(signed_in, ann):
    holding = _company(ann, "Holding SA")
    browser = signed_in(ann)
    page = browser.post(f"/clients/{holding.pk}/delete/", {"number": "x", "reason": "Gone"})
    assert page.context["form"].errors == {"number": [f"Type {holding.number} to confirm."]}
    assert Client.objects.filter(pk=holding.pk).exists()
    response = browser.post(
        f"/clients/{holding.pk}/delete/", {"number": holding.number, "reason": "Gone"}
    )
    assert (response.status_code, response["Location"]) == (302, "/clients/")
    assert not Client.objects.filter(pk=holding.pk).exists()


def test_api_merge_delete_and_newsfeed(api_client, ann, pair):
    survivor, merged = pair
    http = api_client(ann)
    response = http.post(
        f"/api/v1/clients/{survivor.pk}/merge",
        {"merged_id": merged.pk},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["id"] == survivor.pk
    feed = http.get(f"/api/v1/clients/{survivor.pk}/newsfeed", {"category": "account"}).json()
    assert feed["items"][0]["type"] == "client.merged_in"
    assert feed["items"][0]["client_id"] == survivor.pk
    by_reference = http.get(
        f"/api/v1/clients/{survivor.pk}/newsfeed", {"reference": merged.number}
    ).json()
    assert [e["type"] for e in by_reference["items"]] == ["client.merged_in", "client.created"]
    # a second merge of the same client finds nothing to merge
    again = http.post(
        f"/api/v1/clients/{survivor.pk}/merge",
        {"merged_id": merged.pk},
        content_type="application/json",
    )
    assert again.status_code == 422
    assert again.json()["errors"] == [
        {"field": "merged_id", "message": "No client you may see has this id."}
    ]
    refused = http.delete(f"/api/v1/clients/{survivor.pk}")
    assert refused.status_code == 422
    deleted = http.delete(f"/api/v1/clients/{survivor.pk}?reason=Closed+business")
    assert deleted.status_code == 204
    assert http.get(f"/api/v1/clients/{survivor.pk}").status_code == 404


def test_api_merge_needs_the_permission(api_client, make_user, pair):
    survivor, merged = pair
    sam = make_user("sam", role="manager", unit="team_a")
    response = api_client(sam).post(
        f"/api/v1/clients/{survivor.pk}/merge",
        {"merged_id": merged.pk},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert Client.objects.filter(pk=merged.pk).exists()


def test_profile_tabs_and_blocks(signed_in, ann, pair):
    _survivor, merged = pair
    browser = signed_in(ann)
    page = browser.get(f"/clients/{merged.pk}/")
    assert page.context["tab"] == "notes"
    assert [b["key"] for b in page.context["blocks"]] == ["account", "activity"]
    activity = dict(page.context["blocks"][1]["figures"])
    assert (activity["Notes, last 24 hours"], activity["Documents"]) == ("1", "0")
    feed = browser.get(f"/clients/{merged.pk}/", {"category": "account"})
    assert feed.context["tab"] == "newsfeed"
    assert browser.get(f"/clients/{merged.pk}/", {"tab": "group"}).context["group"] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clerks_merging_the_same_client_at_once_merge_it_once(default_roles, make_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what this test is about")
    ann = make_user("ann", role="director", unit="team_a")
    first = _company(ann, "First SARL")
    second = _company(ann, "Second SARL")
    loser = _company(ann, "Loser SARL")
    services.contact_add(client=loser, by=ann, last_name="Curie")
    results = []
    barrier = threading.Barrier(2)

    def merge_into(survivor):
        barrier.wait()
        try:
            services.client_merge(survivor=survivor, merged=loser, by=ann)
            results.append("merged")
        except ServiceError as refused:
            results.append(refused.messages[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=merge_into, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["This client was merged or deleted meanwhile.", "merged"]
    assert Contact.objects.filter(client__in=[first, second]).count() == 1
    assert Event.objects.filter(type="client.merged_away").count() == 1


def test_members_billed_to_the_parent_share_its_status(ann):
    # given a holding paying for one member, another member paying for itself
    holding = _company(ann, "Holding SA")
    paid_for = _company(ann, "Paid For SARL", parent=holding, bill_to_parent=True)
    own_bills = _company(ann, "Own Bills SARL", parent=holding)
    grandchild = _company(ann, "Depot EURL", parent=paid_for, bill_to_parent=True)
    # when the holding is inactivated
    services.client_set_status(client=holding, status="inactive", reason="Unpaid", by=ann)
    # then the members it pays for, down the tree, are inactive too; the other is not
    statuses = dict(Client.objects.filter(parent__isnull=False).values_list("name", "status"))
    assert statuses == {
        "Paid For SARL": "inactive",
        "Own Bills SARL": "active",
        "Depot EURL": "inactive",
    }
    assert Event.objects.filter(client=grandchild, type="client.status_changed").get().message == (
        f"Status changed from Active to Inactive: Parent company {paid_for.number}: "
        "Active → Inactive"
    )
    # and reactivating the holding restores exactly those
    services.client_set_status(client=holding, status="active", reason="Paid", by=ann)
    own_bills.refresh_from_db()
    assert set(Client.objects.values_list("status", flat=True)) == {"active"}
    assert own_bills.version == 1


def test_the_form_takes_the_parent_by_client_number_within_view(make_user, ann):
    from clientbase.clients.forms import ClientForm

    holding = _company(ann, "Holding SA")
    bob = make_user("bob", role="sales", unit="team_b")
    hidden = _company(bob, "Hidden SA")
    member = _company(ann, "Member SARL")
    sam = make_user("sam", role="manager", unit="team_a")

    def form_with(parent_number: str) -> ClientForm:
        bound = ClientForm(instance=member, mode="advanced", user=sam)
        data = {
            name: bound[name].value() for name in bound.fields if bound[name].value() is not None
        }
        data["parent"] = parent_number
        return ClientForm(data, instance=member, mode="advanced", user=sam)

    accepted = form_with(holding.number)
    assert accepted.is_valid(), accepted.errors
    assert accepted.client_data()["parent"] == holding
    refused = form_with(hidden.number)
    assert refused.errors == {"parent": ["No client with this number in your view."]}
