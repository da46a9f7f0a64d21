"""Activities under simultaneous work on PostgreSQL: two reminder runs at once mail each
reminder once; two reorder runs at once make one to-do per client."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection, connections

from clientbase.billing.models import Order
from clientbase.core import clock
from clientbase.sales.activity_services import (
    activity_create,
    reminders_send,
    reorder_reminders_create,
)
from clientbase.sales.models import Activity, ReorderRule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are what these test")


def _at_once(work, runs: int):
    barrier = threading.Barrier(runs, timeout=30)
    results: list = [None] * runs

    def run(index):
        try:
            barrier.wait()
            results[index] = work()
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_reminder_runs_at_once_mail_each_reminder_once(seller, buyer):
    now = clock.now()
    for n in range(30):
        activity_create(
            by=seller,
            kind="call",
            subject=f"Call {n}",
            due_at=now + dt.timedelta(hours=1),
            remind_at=now - dt.timedelta(minutes=1),
            client=buyer,
        )
    results = _at_once(reminders_send, 3)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 30
    mailed = [line for m in mail.outbox for line in m.body.splitlines() if "Call " in line]
    assert len(mailed) == 30 and len(set(mailed)) == 30
    assert not Activity.objects.filter(reminded_at__isnull=True).exists()


def test_two_reorder_runs_at_once_make_one_to_do(seller, buyer):
    ReorderRule.objects.create(name="Quarterly", days=90)
    Order.objects.create(
        number="O-1",
        client=buyer,
        status="accepted",
        currency="EUR",
        payment_method="bank_transfer",
        created_at=clock.now() - dt.timedelta(days=120),
    )
    results = _at_once(reorder_reminders_create, 3)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Activity.objects.filter(kind="todo", client=buyer).count() == 1
