"""The client file: kinds, form modes, identifiers, billing and provenance, security Q&A."""

import pytest

from clientbase.clients import services
from clientbase.clients.models import Client, SecurityQuestion
from clientbase.clients.services import client_create
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry, Event


@pytest.fixture
def ann(make_user):
    return make_user("ann", role="billing", unit="company")


def test_an_individual_is_named_by_first_and_last_name(ann):
    person = client_create(
        by=ann,
        kind="individual",
        first_name=" Ivan ",
        last_name="Petrov",
        email="ivan@example.ru",
        company_name="ignored",
    )
    assert (person.name, person.first_name, person.company_name) == ("Ivan Petrov", "Ivan", "")


def test_a_company_is_named_by_its_company_name_and_keeps_no_person(ann):
    company = client_create(
        by=ann,
        kind="company",
        company_name="ООО Ромашка",
        first_name="x",
        last_name="y",
        email="info@romashka.ru",
        country="RU",
        tax_id="7707083893",
        kpp="773601001",
        tags="vip, wholesale, vip",
        payment_method="cash",
        consent_email=True,
    )
    assert (company.name, company.first_name, company.last_name) == ("ООО Ромашка", "", "")
    assert (company.kpp, company.tags, company.payment_method) == (
        "773601001",
        "vip, wholesale",
        "cash",
    )


@pytest.mark.parametrize(
    "fields,expected",
    [
        (
            {"kind": "individual", "first_name": "Ivan"},
            {"last_name": ["A person needs a last name."]},
        ),
        ({"kind": "company"}, {"company_name": ["A client needs a name."]}),
        (
            {"kind": "company", "company_name": "Acme", "country": "FR", "kpp": "773601001"},
            {"kpp": ["Only Russian companies have a KPP."]},
        ),
        (
            {"kind": "company", "company_name": "Acme", "country": "RU", "kpp": "77360100"},
            {"kpp": ["A KPP has 9 characters; this one has 8."]},
        ),
    ],
)
def test_bad_identity_is_refused_at_its_field(ann, fields, expected):
    with pytest.raises(ServiceError) as refused:
        client_create(by=ann, email="x@example.com", **fields)
    assert refused.value.message_dict == expected
    assert Client.objects.count() == 0


def test_simplified_mode_keeps_the_advanced_fields(signed_in, ann):
    company = client_create(
        by=ann,
        company_name="Acme",
        email="acme@example.com",
        source="Trade fair",
        consent_sms=True,
    )
    http = signed_in(ann)
    page = http.get(f"/clients/{company.pk}/edit/?mode=simple")
    assert "source" not in page.context["form"].fields
    response = http.post(
        f"/clients/{company.pk}/edit/",
        {
            "kind": "company",
            "company_name": "Acme SA",
            "email": "acme@example.com",
            "currency": "EUR",
            "owner": ann.pk,
            "org_unit": company.org_unit_id,
            "version": 1,
        },
    )
    assert response.status_code == 302
    company.refresh_from_db()
    assert (company.name, company.source, company.consent_sms) == ("Acme SA", "Trade fair", True)
    page = http.get(f"/clients/{company.pk}/edit/?mode=advanced")
    assert page.context["form"].fields.keys() >= {"source", "consent_sms", "kpp", "tags"}
    assert http.get(f"/clients/{company.pk}/edit/").context["form"].mode == "advanced"


def test_security_answers_are_hashed_and_checks_recorded(ann):
    company = client_create(by=ann, company_name="Acme", email="acme@example.com")
    item = services.security_question_add(
        client=company, by=ann, question="First pet?", answer="  Rex  the DOG "
    )
    assert "rex" not in item.answer_hash.lower()
    assert item.answer_hash.startswith(("md5$", "argon2"))
    assert services.security_answer_check(item=item, answer="rex THE dog", by=ann) is True
    assert services.security_answer_check(item=item, answer="Rex the cat", by=ann) is False
    messages = list(
        Event.objects.filter(type="security.answer_checked")
        .order_by("id")
        .values_list("details__right", flat=True)
    )
    assert messages == [True, False]
    created = AuditEntry.objects.get(object_type__model="securityquestion")
    assert created.changes["answer_hash"]["after"] == "••••••"


def test_security_questions_from_the_profile(signed_in, ann):
    company = client_create(by=ann, company_name="Acme", email="acme@example.com")
    http = signed_in(ann)
    http.post(f"/clients/{company.pk}/security/", {"question": "City of birth?", "answer": "Hué"})
    item = SecurityQuestion.objects.get()
    right = http.post(
        f"/clients/{company.pk}/security/{item.pk}/check/", {"answer": "hué"}, follow=True
    )
    assert "Right answer to “City of birth?”." in right.content.decode()
    wrong = http.post(
        f"/clients/{company.pk}/security/{item.pk}/check/", {"answer": "Hanoi"}, follow=True
    )
    assert "Wrong answer to “City of birth?”." in wrong.content.decode()
    empty = http.post(
        f"/clients/{company.pk}/security/", {"question": "", "answer": ""}, follow=True
    )
    assert "Write the question." in empty.content.decode()
    assert SecurityQuestion.objects.count() == 1


def test_dashboard_counts_clients_without_a_manager(signed_in, ann):
    client_create(by=ann, company_name="Managed", email="m@example.com")
    orphan = client_create(by=ann, company_name="Orphan", email="o@example.com")
    Client.objects.filter(pk=orphan.pk).update(owner=None)
    http = signed_in(ann)
    values = {c["counter"].key: c["value"] for c in http.get("/").context["counters"]}
    assert (values["clients.unmanaged"], values["clients.new"]) == (1, 2)
    listing = http.get("/clients/?unmanaged=1")
    assert [c.name for c in listing.context["page"].items] == ["Orphan"]


def test_subscriber_preferences_are_kept_in_order_and_checked(make_user):
    from clientbase.clients.services import client_update

    ann = make_user("ann", role="sales", unit="team_a")
    client = client_create(
        by=ann,
        name="Prefs SA",
        email="prefs@example.com",
        preferred_channel="sms",
        notices_opted_out=["newsletter", "reminders"],
    )
    assert (client.preferred_channel, client.notices_opted_out) == (
        "sms",
        ["reminders", "newsletter"],
    )
    assert client.notices_opted_out_labels == ["Payment reminders", "Newsletters"]
    with pytest.raises(ServiceError) as refused:
        client_update(client=client, by=ann, preferred_channel="fax", notices_opted_out=["spam"])
    assert refused.value.message_dict == {
        "preferred_channel": ["Choose email, SMS or post."],
        "notices_opted_out": ["Choose among: invoices, reminders, service, newsletter."],
    }
    client.refresh_from_db()
    assert (client.preferred_channel, client.version) == ("sms", 1)
