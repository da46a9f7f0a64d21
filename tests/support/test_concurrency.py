"""The support desk under simultaneous work on PostgreSQL: the same mail delivered twice at
once, two agents answering one ticket, many tickets opened together."""

import threading

import pytest
from django.db import connection, connections

from clientbase.core.errors import ConflictError
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import InboundMail, Ticket, TicketMessage

from .conftest import raw_mail

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique indexes under real concurrency are what these test")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Attachments are stored under a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


def _at_once(work, args_list):
    """Run work(*args) in one thread each, released together; results and errors in order."""
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
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_the_same_mail_delivered_twice_at_once_makes_one_ticket(support_desk, customer, outbox):
    raw = raw_mail(message_id="<twice@vms-group.ru>")

    results = _at_once(lambda via: mail_ingest(raw, via=via), [("pipe",), ("imap",)])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.outcome for r in results) == ["duplicate", "ticket"]
    ticket = Ticket.objects.get()
    assert [r.ticket for r in results] == [ticket, ticket]
    assert (ticket.number, ticket.client, ticket.status) == ("000001", customer, "open")
    assert list(TicketMessage.objects.values_list("kind", "auto_generated")) == [
        ("customer", False),
        ("reply", True),
    ]
    assert list(InboundMail.objects.values_list("key", "outcome")) == [
        ("<twice@vms-group.ru>", "ticket")
    ]
    # one acknowledgement only
    assert [m.subject for m in outbox] == ["[#000001] Не работает почта"]


def test_two_agents_answering_the_same_version_at_once_one_wins(
    support_desk, customer, agent, make_user, outbox
):
    colleague = make_user("oleg", role="support", unit="company")
    ticket = services.ticket_open(
        by=None,
        department=support_desk["technical"],
        subject="Не работает почта",
        body="Почта не отправляется.",
        email="ivan@vms-group.ru",
        source=Ticket.Source.EMAIL,
        from_customer=True,
    )
    seen = ticket.version

    def reply(by, body):
        return services.ticket_reply(by=by, ticket=ticket, body=body, version=seen)

    results = _at_once(reply, [(agent, "Ответ Саши."), (colleague, "Ответ Олега.")])

    won = [r for r in results if isinstance(r, TicketMessage)]
    lost = [r for r in results if isinstance(r, ConflictError)]
    assert (len(won), len(lost)) == (1, 1), results
    assert lost[0].messages == [
        "Somebody else changed ticket #000001 meanwhile; reload it and try again."
    ]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner, ticket.version, ticket.due_at) == (
        "answered",
        won[0].author,
        seen + 1,
        None,
    )
    assert list(ticket.messages.values_list("kind", "body")) == [
        ("customer", "Почта не отправляется."),
        ("reply", won[0].body),
    ]
    assert [m.body for m in outbox] == [won[0].body]


def test_twenty_tickets_opened_at_once_get_twenty_gapless_numbers(support_desk, customer, agent):
    def open_one(n):
        return services.ticket_open(
            by=agent,
            department=support_desk["technical"],
            client=customer,
            subject=f"Вопрос {n}",
            body="Текст.",
        )

    results = _at_once(open_one, [(n,) for n in range(1, 21)])

    assert all(isinstance(r, Ticket) for r in results), results
    assert sorted(r.number for r in results) == [f"{n:06d}" for n in range(1, 21)]
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [
        f"{n:06d}" for n in range(1, 21)
    ]
    assert TicketMessage.objects.filter(kind="reply").count() == 20
