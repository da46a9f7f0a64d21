"""Contacts with typed phones (CUS-5) and typed addresses (CUS-6)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from clientbase.clients import services
from clientbase.clients.models import Address, Contact, ContactPhone
from clientbase.clients.services import client_create
from clientbase.core.errors import ServiceError
from clientbase.core.models import Event


@pytest.fixture
def alpha(make_user):
    ann = make_user("ann", role="sales", unit="team_a")
    return client_create(by=ann, name="Alpha SARL", email="alpha@example.com", country="FR")


def test_contact_with_one_phone_per_type(alpha):
    contact = services.contact_add(
        client=alpha,
        by=alpha.owner,
        first_name="Marie",
        last_name="Curie",
        position="Director",
        email="Marie@Alpha.FR",
        phones={"mobile": "06 12 34 56 78", "work": "+33 1 99 00 11 88", "home": ""},
    )
    assert contact.email == "Marie@alpha.fr"
    assert dict(contact.phones.values_list("type", "number")) == {
        "mobile": "+33612345678",
        "work": "+33199001188",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPhone.objects.create(contact=contact, type="mobile", number="+33600000000")
    assert Event.objects.filter(type="contact.added").get().message == "Contact Marie Curie added"


def test_bad_contact_input_saves_nothing(alpha):
    with pytest.raises(ServiceError) as refused:
        services.contact_add(
            client=alpha, by=alpha.owner, last_name=" ", email="nope", phones={"mobile": "12"}
        )
    assert refused.value.message_dict == {
        "last_name": ["A contact needs a last name."],
        "email": ["An email address has an @, as in name@example.com."],
        "phone_mobile": ["This phone number is too short: check for a missing digit."],
    }
    assert Contact.objects.count() == 0


def test_update_replaces_phones_and_the_first_contact_stays(alpha):
    first = services.contact_add(client=alpha, by=alpha.owner, last_name="Curie")
    second = services.contact_add(
        client=alpha, by=alpha.owner, last_name="Pasteur", phones={"work": "+33199001188"}
    )
    services.contact_update(
        contact=second, by=alpha.owner, last_name="Pasteur", phones={"mobile": "0612345678"}
    )
    assert dict(second.phones.values_list("type", "number")) == {"mobile": "+33612345678"}
    with pytest.raises(ServiceError) as refused:
        services.contact_delete(contact=first, by=alpha.owner)
    assert refused.value.messages == ["The first contact cannot be removed: it names the account."]
    services.contact_delete(contact=second, by=alpha.owner)
    assert list(alpha.contacts.all()) == [first]
    assert Event.objects.filter(type__startswith="contact.").count() == 4


def test_addresses_are_typed_and_checked(alpha):
    address = services.address_add(
        client=alpha,
        by=alpha.owner,
        type="billing",
        line1=" 12 rue de la Paix ",
        postcode="75002",
        city="Paris",
        country="fr",
        latitude=Decimal("48.869"),
        longitude=Decimal("2.331"),
    )
    assert (address.line1, address.country) == ("12 rue de la Paix", "FR")
    assert Event.objects.get(type="address.added").message == (
        "Billing address added: 12 rue de la Paix, 75002 Paris"
    )
    with pytest.raises(ServiceError) as refused:
        services.address_add(
            client=alpha,
            by=alpha.owner,
            type="home",
            line1="",
            city="",
            country="XX",
            latitude=Decimal("10"),
        )
    assert refused.value.message_dict == {
        "type": ["Choose correspondence, billing, delivery or site."],
        "line1": ["Give the street and number."],
        "city": ["Give the city."],
        "country": ["Unknown country code; use two letters, e.g. FR."],
        "latitude": ["Give both coordinates, or neither."],
    }
    assert Address.objects.count() == 1


def test_contacts_and_addresses_from_the_profile(signed_in, alpha):
    http = signed_in(alpha.owner)
    response = http.post(
        f"/clients/{alpha.pk}/contacts/new/",
        {"first_name": "Marie", "last_name": "Curie", "phone_mobile": "0612345678"},
    )
    assert response.status_code == 302
    response = http.post(
        f"/clients/{alpha.pk}/addresses/new/",
        {"type": "delivery", "line1": "1 quai Branly", "city": "Paris", "country": "FR"},
    )
    assert response.status_code == 302
    page = http.get(f"/clients/{alpha.pk}/").content.decode()
    assert "Marie Curie" in page
    assert "+33 6 12 34 56 78" in page
    assert "1 quai Branly" in page
    bad = http.post(f"/clients/{alpha.pk}/contacts/new/", {"last_name": "X", "phone_fax": "1"})
    assert bad.status_code == 200
    assert bad.context["form"].errors["phone_fax"] == [
        "This phone number is too short: check for a missing digit."
    ]
    assert Contact.objects.count() == 1


def test_other_teams_and_read_only_users_cannot_touch_contacts(signed_in, make_user, alpha):
    services.contact_add(client=alpha, by=alpha.owner, last_name="Curie")
    bob = make_user("bob", role="sales", unit="team_b")
    assert signed_in(bob).get(f"/clients/{alpha.pk}/contacts/new/").status_code == 404
    viewer = make_user("vera", role="read-only", unit="company")
    from django.test import Client as HttpClient

    reader = HttpClient()
    reader.force_login(viewer)
    response = reader.post(f"/clients/{alpha.pk}/contacts/new/", {"last_name": "X"})
    assert response.status_code == 403
    assert Contact.objects.count() == 1


def test_contacts_and_addresses_over_the_api(api_client, alpha):
    http = api_client(alpha.owner)
    created = http.post(
        f"/api/v1/clients/{alpha.pk}/contacts",
        {"last_name": "Curie", "first_name": "Marie", "phones": {"mobile": "0612345678"}},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["phones"] == [{"type": "mobile", "number": "+33612345678"}]
    listing = http.get(f"/api/v1/clients/{alpha.pk}/contacts").json()
    assert [(c["last_name"], c["first_name"]) for c in listing] == [("Curie", "Marie")]
    address = http.post(
        f"/api/v1/clients/{alpha.pk}/addresses",
        {
            "type": "site",
            "line1": "Zone B",
            "city": "Lyon",
            "country": "FR",
            "latitude": "45.75",
            "longitude": "4.85",
        },
        content_type="application/json",
    )
    assert address.status_code == 201
    assert (address.json()["latitude"], address.json()["type"]) == ("45.75", "site")
    first = Contact.objects.get()
    refused = http.delete(f"/api/v1/clients/{alpha.pk}/contacts/{first.pk}")
    assert refused.status_code == 422
    removed = http.delete(f"/api/v1/clients/{alpha.pk}/addresses/{address.json()['id']}")
    assert removed.status_code == 204
    assert Address.objects.count() == 0
