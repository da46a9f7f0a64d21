"""Leads under simultaneous work on PostgreSQL: one conversion clicked twice at once, many web
form leads distributed round robin at once."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from clientbase.clients.models import Client
from clientbase.sales.lead_services import distribution_rule_save, lead_convert, lead_create
from clientbase.sales.models import Deal, DistributionLog, Lead

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are what these test")


def _at_once(work, args_list):
    barrier = threading.Barrier(len(args_list), timeout=30)
    results: list = [None] * len(args_list)

    def run(index, args):
        try:
            barrier.wait()
            results[index] = work(*args)
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_conversion_run_twice_at_once_makes_one_client(seller):
    lead = lead_create(by=seller, name="Jeanne", email="j@example.org", currency="EUR")
    results = _at_once(lambda: lead_convert(by=seller, lead=lead), [(), ()])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].client == results[1].client
    assert (Client.objects.count(), Deal.objects.count()) == (1, 1)


def test_leads_arriving_together_take_turns(admin_user, make_user):
    team = [make_user(f"s{i}") for i in range(3)]
    distribution_rule_save(by=admin_user, name="All", members=team)
    unit = admin_user.org_unit

    def arrive(i):
        return lead_create(by=None, owner=None, name=f"L{i}", currency="EUR", org_unit=unit)

    results = _at_once(arrive, [(i,) for i in range(6)])
    assert not [r for r in results if isinstance(r, Exception)], results
    owners = Counter(Lead.objects.values_list("owner_id", flat=True))
    assert owners == {member.pk: 2 for member in team}
    assert DistributionLog.objects.count() == 6


def test_a_web_form_posted_twice_at_once_makes_one_lead(admin_user):
    from clientbase.sales.lead_services import webform_create, webform_submit

    form = webform_create(
        by=admin_user, name="Site", org_unit=admin_user.org_unit, currency="EUR"
    ).form
    data = {"name": "Lucie", "email": "lucie@example.org"}
    results = _at_once(lambda: webform_submit(form=form, data=data, ip="192.0.2.1"), [(), ()])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.duplicate for r in results) == [False, True]
    assert Lead.objects.count() == 1
