"""Leads: creating, changing, duplicates and conversion into a client and a deal (SAL-1)."""

import pytest

from clientbase.clients.models import Client, Note
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.money import Money
from clientbase.sales.activity_services import activity_create
from clientbase.sales.lead_services import (
    ClientExists,
    lead_contact_add,
    lead_convert,
    lead_create,
    lead_update,
)
from clientbase.sales.models import Deal, Lead


def make_lead(by, **fields):
    defaults = {
        "kind": "company",
        "name": "Jeanne Martin",
        "company": "Boulangerie Martin",
        "email": "Jeanne@Boulangerie-Martin.fr",
        "phone": "01 99 00 11 88",
        "country": "FR",
        "currency": "EUR",
        "source": "fair",
        "campaign": "Spring 2025",
        "needs": "Monthly bookkeeping",
        "potential_minor": 120000,
    }
    return lead_create(by=by, **{**defaults, **fields})


def test_create_numbers_normalises_and_places_the_lead_at_the_first_stage(seller):
    # Given a seller; when they add a lead
    lead = make_lead(seller)
    # Then it is numbered, normalised, theirs, and at the first (new) stage
    assert lead.number == "L000001"
    assert lead.email == "Jeanne@boulangerie-martin.fr"
    assert lead.email_key == "jeanne@boulangerie-martin.fr"
    assert lead.phone == "+33199001188"
    assert lead.owner == seller
    assert lead.org_unit == seller.org_unit
    assert lead.status == "new"
    assert lead.stage.state == "new"
    assert make_lead(seller, email="", phone="").number == "L000002"


def test_create_refuses_a_bad_phone_and_a_missing_name_and_saves_nothing(seller):
    with pytest.raises(ServiceError) as refused:
        make_lead(seller, name="  ", phone="abc")
    assert set(refused.value.message_dict) == {"name", "phone"}
    assert Lead.objects.count() == 0


def test_create_refuses_an_email_an_open_lead_or_a_client_has(seller, buyer):
    first = make_lead(seller)
    with pytest.raises(ServiceError) as refused:
        make_lead(seller, email="JEANNE@boulangerie-martin.fr")
    assert refused.value.message_dict["email"] == [
        f"Lead {first.number} (Jeanne Martin) already uses this email."
    ]
    with pytest.raises(ServiceError) as refused:
        make_lead(seller, email="contact@atelier-lumiere.fr")
    assert refused.value.message_dict["email"] == [
        f"Client {buyer.number} (Atelier Lumière) already uses this email."
    ]
    assert Lead.objects.count() == 1


def test_an_email_out_of_sight_is_refused_without_naming_the_lead(seller, other_seller):
    make_lead(other_seller)
    with pytest.raises(ServiceError) as refused:
        make_lead(seller)
    assert refused.value.message_dict["email"] == [
        "A lead outside your view already uses this email."
    ]


def test_update_checks_the_version(seller):
    lead = make_lead(seller)
    changed = lead_update(by=seller, lead=lead, version=1, city="Lyon")
    assert (changed.city, changed.version) == ("Lyon", 2)
    with pytest.raises(ConflictError):
        lead_update(by=seller, lead=lead, version=1, city="Nice")
    lead.refresh_from_db()
    assert lead.city == "Lyon"


def test_convert_carries_everything_over_and_links_back(seller):
    # Given a lead with a contact, needs, a region and a logged call
    lead = make_lead(seller, region="Île-de-France", street="3 rue Haute", city="Paris")
    lead_contact_add(by=seller, lead=lead, name="Paul Martin", phone="0611223344")
    call = activity_create(by=seller, kind="call", subject="First call", lead=lead, done=True)
    # When it is converted
    result = lead_convert(by=seller, lead=lead)
    # Then a client has its details, contacts, needs and history, and a deal is open
    client = result.client
    assert result.created is True
    assert (client.kind, client.name, client.email) == (
        "company",
        "Boulangerie Martin",
        "Jeanne@boulangerie-martin.fr",
    )
    assert (client.phone, client.street, client.city, client.country) == (
        "+33199001188",
        "3 rue Haute",
        "Paris",
        "FR",
    )
    assert (client.source, client.utm_campaign, client.owner) == ("fair", "Spring 2025", seller)
    assert sorted(str(c) for c in client.contacts.all()) == ["Jeanne Martin", "Paul Martin"]
    note = Note.objects.get(client=client)
    assert note.important is True
    assert "Needs: Monthly bookkeeping" in note.body and "Île-de-France" in note.body
    call.refresh_from_db()
    assert call.client == client
    lead.refresh_from_db()
    assert (lead.client, lead.status, lead.stage.state) == (client, "customer", "customer")
    assert lead.converted_at is not None
    assert list(client.leads.all()) == [lead]
    assert result.deal.lead == lead and result.deal.client == client
    assert result.deal.value_minor == 120000


def test_convert_twice_makes_one_client(seller):
    lead = make_lead(seller)
    first = lead_convert(by=seller, lead=lead)
    again = lead_convert(by=seller, lead=lead)
    assert again.created is False
    assert again.client == first.client
    assert again.deal == first.deal
    assert Client.objects.count() == 1
    assert Deal.objects.count() == 1


def test_convert_with_a_clients_email_offers_to_attach(seller, buyer):
    lead = make_lead(seller, email="")
    Lead.objects.filter(pk=lead.pk).update(email="contact@atelier-lumiere.fr")
    lead.refresh_from_db()
    with pytest.raises(ClientExists) as refused:
        lead_convert(by=seller, lead=lead, create_deal=False)
    assert refused.value.client == buyer
    assert Client.objects.count() == 1
    result = lead_convert(by=seller, lead=lead, create_deal=False, existing_client=buyer)
    assert (result.client, result.deal, result.created) == (buyer, None, True)
    lead.refresh_from_db()
    assert lead.client == buyer
    assert Note.objects.get(client=buyer).body == (
        f"From lead {lead.number}.\nNeeds: Monthly bookkeeping"
    )
    assert buyer.contacts.count() == 0


def test_convert_without_email_says_so(seller):
    lead = make_lead(seller, email="")
    with pytest.raises(ServiceError) as refused:
        lead_convert(by=seller, lead=lead)
    assert "email" in refused.value.message_dict
    lead.refresh_from_db()
    assert lead.client is None and lead.status == "new"


def test_convert_an_individual_splits_the_name_and_takes_the_given_value(seller):
    lead = make_lead(seller, kind="individual", company="", name="Anne Marie Leroy")
    result = lead_convert(
        by=seller, lead=lead, deal_name="Bookkeeping", deal_value=Money(5000, "EUR")
    )
    assert (result.client.first_name, result.client.last_name) == ("Anne Marie", "Leroy")
    assert (result.deal.name, result.deal.value_minor) == ("Bookkeeping", 5000)
    assert result.client.contacts.count() == 0
