"""Contracts: statuses, renewal, the daily renewal job, templates and the PDF (SAL-5)."""

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse

from clientbase.core.cron import run_jobs
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.models import Event
from clientbase.core.money import Money
from clientbase.sales.models import Activity, Contract, ContractTemplate
from clientbase.sales.quote_pdf import contract_document, contract_pdf
from clientbase.sales.quote_queries import to_renew
from clientbase.sales.quote_services import (
    contract_activate,
    contract_create,
    contract_renew,
    contract_template_save,
    contract_terminate,
    contract_update,
    contracts_renewal_run,
)

pytestmark = pytest.mark.django_db


def make(seller, buyer, *, starts=dt.date(2025, 1, 1), ends=dt.date(2025, 3, 20), **kw):
    return contract_create(
        by=seller,
        client=buyer,
        title=kw.pop("title", "Maintenance"),
        starts_on=starts,
        ends_on=ends,
        value=Money(240000, "EUR"),
        **kw,
    )


def test_create_numbers_and_checks(seller, buyer):
    contract = make(seller, buyer)
    assert (contract.number, contract.status, contract.currency) == ("C-00001", "draft", "EUR")
    with pytest.raises(ServiceError) as refused:
        make(seller, buyer, starts=dt.date(2025, 2, 1), ends=dt.date(2025, 1, 1))
    assert "ends_on" in refused.value.message_dict
    with pytest.raises(ServiceError) as refused:
        contract_create(
            by=seller,
            client=buyer,
            title="X",
            starts_on=dt.date(2025, 1, 1),
            value=Money(100, "USD"),
        )
    assert "value" in refused.value.message_dict
    assert Contract.objects.count() == 1


def test_statuses_are_enforced(seller, buyer):
    contract = make(seller, buyer)
    contract_activate(by=seller, contract=contract)
    with pytest.raises(ConflictError):
        contract_activate(by=seller, contract=contract)
    contract_terminate(by=seller, contract=contract)
    contract.refresh_from_db()
    assert contract.status == "terminated"
    with pytest.raises(ConflictError):
        contract_update(by=seller, contract=contract, title="New")
    contract.refresh_from_db()
    assert contract.title == "Maintenance"
    assert Event.objects.filter(type="contract.signed", client=buyer).count() == 1


def test_renewal_is_linked_and_runs_once(seller, buyer):
    contract = make(seller, buyer)
    contract_activate(by=seller, contract=contract)
    renewal = contract_renew(by=seller, contract=contract)
    contract.refresh_from_db()
    assert contract.status == "renewed"
    assert (renewal.renewal_of, renewal.status) == (contract, "active")
    assert (renewal.starts_on, renewal.ends_on) == (dt.date(2025, 3, 21), dt.date(2025, 6, 7))
    assert renewal.value_minor == 240000
    assert contract_renew(by=seller, contract=contract) == renewal
    assert Contract.objects.count() == 2


def test_a_draft_does_not_renew(seller, buyer):
    contract = make(seller, buyer)
    with pytest.raises(ConflictError):
        contract_renew(by=seller, contract=contract)
    assert Contract.objects.count() == 1


def test_renewal_job_expires_and_reminds_once(
    seller, buyer, other_seller, django_capture_on_commit_callbacks
):
    ended = make(seller, buyer, title="Old", ends=dt.date(2025, 3, 1))
    due = make(seller, buyer, title="Due", ends=dt.date(2025, 3, 25))
    later = make(seller, buyer, title="Later", ends=dt.date(2025, 4, 25))
    for contract in (ended, due, later):
        contract_activate(by=seller, contract=contract)
    day = dt.date(2025, 3, 10)
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts_renewal_run(day) == (1, 1)
    ended.refresh_from_db()
    assert ended.status == "expired"
    task = Activity.objects.get(kind="task")
    assert (task.owner, task.client) == (seller, buyer)
    assert "C-00002" in task.subject
    assert [m.to for m in mail.outbox] == [["marie@example.com"]]
    # A second run the same day (or the next) reminds nobody again
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts_renewal_run(dt.date(2025, 3, 11)) == (0, 0)
    assert Activity.objects.filter(kind="task").count() == 1 and len(mail.outbox) == 1
    # The counter: active contracts ending this month, in sight
    assert list(to_renew(seller, day)) == [due]
    assert list(to_renew(other_seller, day)) == []


def test_renewal_job_is_registered(seller, buyer):
    runs = run_jobs(day=dt.date(2025, 3, 10), only=["sales_contract_renewals"])
    assert runs[0].status == "ok"


def test_template_with_unknown_tag_is_refused_naming_it(admin_user):
    with pytest.raises(ServiceError) as refused:
        contract_template_save(
            by=admin_user,
            template=None,
            name="Standard",
            body="Between us and {{ client.secret_key }}.",
            is_default=True,
        )
    assert "client.secret_key" in str(refused.value.message_dict)
    assert ContractTemplate.objects.count() == 0


def test_contract_pdf_fills_the_template(seller, buyer, admin_user):
    contract_template_save(
        by=admin_user,
        template=None,
        name="Standard",
        body="Contract {{ contract.number }} with {{ client.name }}.\nValue: {{ contract.value }}",
        is_default=True,
    )
    contract = make(seller, buyer)
    document = contract_document(contract)
    assert document["notes"][0] == "Contract C-00001 with Atelier Lumière."
    assert document["notes"][1].startswith("Value: 2")
    assert contract_pdf(contract)[:4] == b"%PDF"


def test_contract_pages(seller, other_seller, buyer, signed_in, admin_user):
    contract = make(seller, buyer)
    browser = signed_in(seller)
    assert browser.get(reverse("sales:contracts")).status_code == 200
    page = browser.get(reverse("sales:contract", args=[contract.pk]))
    assert page.status_code == 200 and b"C-00001" in page.content
    browser.post(reverse("sales:contract_action", args=[contract.pk, "activate"]))
    contract.refresh_from_db()
    assert contract.status == "active"
    assert browser.get(reverse("sales:contract_pdf", args=[contract.pk])).content[:4] == b"%PDF"
    other = signed_in(other_seller)
    assert other.get(reverse("sales:contract", args=[contract.pk])).status_code == 404
    assert (
        other.post(reverse("sales:contract_action", args=[contract.pk, "terminate"])).status_code
        == 404
    )
    contract.refresh_from_db()
    assert contract.status == "active"


def test_contract_list_queries_are_fixed(seller, buyer, signed_in, django_assert_num_queries):
    for n in range(3):
        make(seller, buyer, title=f"C{n}")
    browser = signed_in(seller)
    browser.get(reverse("sales:contracts"))
    with django_assert_num_queries(5):
        response = browser.get(reverse("sales:contracts"))
    assert len(response.context["contracts"]) == 3


def test_template_pages_show_the_unknown_tag(admin_user, seller, signed_in):
    browser = signed_in(admin_user)
    assert browser.get(reverse("sales:contract_templates")).status_code == 200
    response = browser.post(
        reverse("sales:contract_template_new"),
        {"name": "Std", "body": "Hello {{ client.nope }}", "preview": "1"},
    )
    assert response.status_code == 400 and b"client.nope" in response.content
    response = browser.post(
        reverse("sales:contract_template_new"),
        {"name": "Std", "body": "Hello {{ client.name }}", "preview": "1"},
    )
    assert b"Hello Claire Martin" in response.content or b"Hello " in response.content
    browser.post(
        reverse("sales:contract_template_new"), {"name": "Std", "body": "Hi {{ client.name }}"}
    )
    assert ContractTemplate.objects.get().name == "Std"
    assert signed_in(seller).get(reverse("sales:contract_templates")).status_code == 403


def test_demo_makes_quotes_and_a_contract_to_renew(db, default_roles):
    from clientbase.core.demo import ensure_demo_org
    from clientbase.core.demo_clients import demo_clients_create
    from clientbase.sales.quote_demo import demo_quote_create

    org = ensure_demo_org()
    demo_clients_create(clients=60, org=org, seed=7)
    made = demo_quote_create(org=org, seed=7)
    assert made >= 2
    assert ContractTemplate.objects.filter(is_default=True).count() == 1
    assert to_renew(org.users["admin"]).count() == 1
    assert demo_quote_create(org=org, seed=7) == 0


def test_dashboard_counter_and_search(seller, other_seller, buyer, signed_in):
    import time_machine

    with time_machine.travel(dt.datetime(2025, 3, 10, 9, tzinfo=dt.UTC), tick=False):
        contract = make(seller, buyer, title="Hosting plan")
        contract_activate(by=seller, contract=contract)
        page = signed_in(seller).get(reverse("core:dashboard"))
        assert "Contracts to renew" in page.content.decode()
        found = signed_in(seller).get(reverse("core:search"), {"q": "Hosting plan"})
        assert reverse("sales:contract", args=[contract.pk]) in found.content.decode()
        hidden = signed_in(other_seller).get(reverse("core:search"), {"q": "Hosting plan"})
        assert reverse("sales:contract", args=[contract.pk]) not in hidden.content.decode()


def test_new_contract_and_edit_pages(seller, buyer, signed_in):
    browser = signed_in(seller)
    url = reverse("sales:contract_new") + f"?client={buyer.pk}"
    assert browser.get(url).status_code == 200
    refused = browser.post(
        url,
        {"client": buyer.pk, "title": "Care", "starts_on": "2025-05-01", "ends_on": "2025-04-01",
         "value": "10"},
    )  # fmt: skip
    assert refused.status_code == 400 and b"cannot end before it starts" in refused.content
    assert Contract.objects.count() == 0
    browser.post(
        url,
        {"client": buyer.pk, "title": "Care", "starts_on": "2025-05-01", "ends_on": "2026-04-30",
         "value": "1500.50"},
    )  # fmt: skip
    contract = Contract.objects.get()
    assert (contract.value_minor, contract.ends_on) == (150050, dt.date(2026, 4, 30))
    browser.post(
        reverse("sales:contract_edit", args=[contract.pk]),
        {"title": "Care plus", "starts_on": "2025-05-01", "ends_on": "2026-04-30", "value": "2000"},
    )
    contract.refresh_from_db()
    assert (contract.title, contract.value_minor, contract.version) == ("Care plus", 200000, 2)
