"""A client can be given only to people and units within the giver's sight."""

import pytest

from clientbase.clients.models import Client
from clientbase.clients.services import client_create, client_update
from clientbase.core.errors import ServiceError

REFUSAL = {"owner": ["You can give clients only to people and units within your reach."]}


def test_a_seller_cannot_create_a_client_for_someone_else(make_user, org):
    ann = make_user("ann", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_a")
    with pytest.raises(ServiceError) as refused:
        client_create(by=ann, name="Alpha", email="alpha@example.com", owner=bob)
    assert refused.value.message_dict == REFUSAL
    assert Client.objects.count() == 0


def test_a_team_manager_cannot_give_a_client_to_another_team(make_user, org):
    tom = make_user("tom", role="manager", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_b")
    with pytest.raises(ServiceError) as refused:
        client_create(
            by=tom, name="Alpha", email="alpha@example.com", owner=bob, org_unit=org["team_b"]
        )
    assert refused.value.message_dict == REFUSAL
    assert Client.objects.count() == 0


def test_a_region_manager_may_give_clients_within_the_region(make_user, org):
    mia = make_user("mia", role="manager", unit="region")
    bob = make_user("bob", role="sales", unit="team_b")
    alpha = client_create(
        by=mia, name="Alpha", email="alpha@example.com", owner=bob, org_unit=org["team_b"]
    )
    assert (alpha.owner, alpha.org_unit) == (bob, org["team_b"])


def test_editing_other_fields_does_not_recheck_the_owner(make_user, org, admin_user):
    ann = make_user("ann", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_b")
    alpha = client_create(
        by=admin_user, name="Alpha", email="alpha@example.com", owner=ann, org_unit=org["team_a"]
    )
    alpha = client_update(client=alpha, by=ann, name="Alpha SAS")
    assert alpha.name == "Alpha SAS"
    with pytest.raises(ServiceError) as refused:
        client_update(client=alpha, by=ann, owner=bob)
    assert refused.value.message_dict == REFUSAL
    assert Client.objects.get(pk=alpha.pk).owner == ann


def test_api_names_the_owner_id_field(make_user, org, api_client):
    ann = make_user("ann", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_a")
    response = api_client(ann).post(
        "/api/v1/clients",
        {"name": "Alpha", "email": "alpha@example.com", "owner_id": bob.pk},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "owner_id", "message": REFUSAL["owner"][0]}]
    assert Client.objects.count() == 0


def test_identifiers_are_checked_and_normalised_on_save(make_user, org):
    from clientbase.clients.services import client_update

    ann = make_user("ann", role="sales", unit="team_a")
    alpha = client_create(
        by=ann,
        kind="company",
        name="Romashka",
        email="Info@Romashka.RU",
        country="ru",
        phone="8 (495) 123-45-67",
        tax_id="7707 083 893",
    )
    assert (alpha.email, alpha.country, alpha.phone, alpha.tax_id) == (
        "Info@romashka.ru",
        "RU",
        "+74951234567",
        "7707083893",
    )
    with pytest.raises(ServiceError) as refused:
        client_update(client=alpha, by=ann, tax_id="7707083894", phone="12", country="RU")
    assert refused.value.message_dict == {
        "phone": ["This phone number is too short: check for a missing digit."],
        "tax_id": ["This INN's check digit is wrong: check for a mistyped digit."],
    }
    alpha.refresh_from_db()
    assert (alpha.tax_id, alpha.phone, alpha.version) == ("7707083893", "+74951234567", 1)


def test_a_wrong_inn_from_the_form_is_shown_at_its_field(signed_in, make_user, org):
    ann = make_user("ann", role="sales", unit="team_a")
    response = signed_in(ann).post(
        "/clients/new/",
        {
            "kind": "individual",
            "name": "Ivan Petrov",
            "email": "ivan@example.ru",
            "country": "RU",
            "tax_id": "7707083893",
            "currency": "RUB",
            "language": "ru",
            "owner": ann.pk,
            "org_unit": org["team_a"].pk,
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["tax_id"] == [
        "A person's INN has 12 digits; this one has 10, like a company's. If the client is a "
        "company, make it a company client."
    ]
    assert Client.objects.count() == 0
