"""History: newsfeed events and audit rows, written with their action and never changed."""

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import User
from clientbase.accounts.services import user_create, user_set_password, user_update
from clientbase.clients import services as client_services
from clientbase.clients.models import Client
from clientbase.clients.services import client_create, client_update
from clientbase.core import events
from clientbase.core.audit import MASK, audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import (
    AppendOnlyError,
    AuditAction,
    AuditEntry,
    Event,
    EventCategory,
    NumberSeries,
)
from clientbase.core.money import Money
from tests.conftest import PASSWORD

AT = dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC)
# Roles seeded by migrations are gone in these tests once another one has flushed the base.
transactional = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clerk(make_user):
    """A salesperson in team A who records the actions."""
    return make_user("clerk", role="sales", unit="team_a")


@pytest.fixture
def acme(clerk):
    """A client owned by the clerk."""
    return client_create(by=clerk, name="Acme SARL", email="billing@acme.example", city="Lyon")


@pytest.fixture
def paid_event_type(monkeypatch):
    """An event type with an amount and a reference in its sentence, for these tests only."""
    monkeypatch.setattr(events, "EVENT_TYPES", dict(events.EVENT_TYPES))
    register_event_type("test.paid", EventCategory.PAYMENTS, _("Paid %(amount)s for %(reference)s"))


def audit_rows(obj):
    """The audit rows of one record, newest first."""
    kind = ContentType.objects.get_for_model(obj)
    return AuditEntry.objects.filter(object_type=kind, object_id=str(obj.pk)).order_by("-id")


def counts() -> tuple[int, int, int]:
    """How many clients, audit rows and events there are."""
    return Client.objects.count(), AuditEntry.objects.count(), Event.objects.count()


# --- events -----------------------------------------------------------------------------


@transactional
def test_record_event_outside_a_transaction_is_refused(org):
    """An event written apart from its action could outlive a rolled-back action."""
    before = Event.objects.count()

    with pytest.raises(RuntimeError, match="inside the transaction of their action"):
        record_event("user.created", by=None, details={"username": "ghost"})

    assert Event.objects.count() == before


@pytest.mark.django_db
def test_record_event_keeps_who_what_amount_and_scope(clerk, acme, paid_event_type):
    """The event carries the actor, the client's scope, the amount and the subject."""
    with time_machine.travel(AT, tick=False), transaction.atomic():
        event = record_event(
            "test.paid",
            by=clerk,
            client=acme,
            subject=acme,
            amount=Money(1250, "EUR"),
            reference="INV-7",
            details={"method": "card"},
        )

    event.refresh_from_db()
    assert (event.occurred_at, event.actor, event.client) == (AT, clerk, acme)
    assert (event.org_unit_id, event.owner_id) == (acme.org_unit_id, clerk.pk)
    assert (event.category, event.type) == (EventCategory.PAYMENTS, "test.paid")
    assert (event.amount_minor, event.currency, event.amount) == (1250, "EUR", Money(1250, "EUR"))
    assert (event.reference, event.details) == ("INV-7", {"method": "card"})
    assert event.subject_type == ContentType.objects.get_for_model(Client)
    assert event.subject_id == str(acme.pk)
    assert event.message == "Paid 12.50 EUR for INV-7"


@pytest.mark.django_db
def test_record_event_by_the_system_has_no_actor_and_no_amount(org):
    """Automation records events with no person behind them."""
    with transaction.atomic():
        event = record_event("user.created", by=None, details={"username": "bot"})

    event.refresh_from_db()
    assert (event.actor_id, event.client_id, event.org_unit_id, event.owner_id) == (
        None,
        None,
        None,
        None,
    )
    assert (event.amount_minor, event.currency, event.amount) == (None, "", None)
    assert (event.subject_type_id, event.subject_id) == (None, "")
    assert event.message == "User bot created"


@pytest.mark.django_db
def test_record_event_of_an_unknown_type_is_refused(org):
    """An undeclared event type writes nothing."""
    before = Event.objects.count()

    with pytest.raises(KeyError), transaction.atomic():
        record_event("test.never_registered", by=None)

    assert Event.objects.count() == before


# --- append-only ------------------------------------------------------------------------


@pytest.fixture
def history(acme):
    """The audit row and the event that creating the client wrote."""
    entry = audit_rows(acme).get(action=AuditAction.CREATE)
    event = Event.objects.get(type="client.created", client=acme)
    return entry, event


def row_values(row) -> dict:
    """Every column of a row as the database holds it now."""
    return type(row).objects.filter(pk=row.pk).values().get()


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1], ids=["audit", "event"])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda row: row.save(), id="save"),
        pytest.param(lambda row: row.save(update_fields=["object_repr"]), id="save-fields"),
        pytest.param(lambda row: row.delete(), id="delete"),
        pytest.param(
            lambda row: type(row).objects.filter(pk=row.pk).update(id=row.pk), id="update"
        ),
        pytest.param(lambda row: type(row).objects.filter(pk=row.pk).delete(), id="qs-delete"),
        pytest.param(lambda row: type(row).objects.all().delete(), id="all-delete"),
        pytest.param(lambda row: type(row).objects.update(id=row.pk), id="manager-update"),
        pytest.param(lambda row: type(row).objects.bulk_update([row], ["id"]), id="bulk-update"),
    ],
)
def test_history_rows_are_never_changed_or_deleted(history, which, change):
    """Every way to change or delete a history row raises and leaves it as it was."""
    row = history[which]
    before, total = row_values(row), type(row).objects.count()
    if hasattr(row, "object_repr"):
        row.object_repr = "tampered"
    else:
        row.type = "tampered"

    with pytest.raises(AppendOnlyError):
        change(row)

    assert row_values(row) == before
    assert type(row).objects.count() == total


@pytest.mark.django_db
def test_events_cannot_be_deleted_through_their_client(acme, history):
    """The client's related manager is append-only too."""
    with pytest.raises(AppendOnlyError):
        acme.events.all().delete()

    assert acme.events.count() == 1


# --- audit ------------------------------------------------------------------------------


@transactional
def test_audit_outside_a_transaction_is_refused(org):
    """An audit row written apart from its change could tell of a change that never was."""
    before, unit = AuditEntry.objects.count(), org["team_a"]
    changed = snapshot(unit)
    unit.name = "Team Alpha"

    with pytest.raises(RuntimeError, match="inside the transaction of their change"):
        audit_create(unit, by=None)
    with pytest.raises(RuntimeError, match="inside the transaction of their change"):
        audit_update(unit, changed, by=None)
    with pytest.raises(RuntimeError, match="inside the transaction of their change"):
        audit_delete(unit, by=None)

    assert AuditEntry.objects.count() == before


@pytest.mark.django_db
def test_audit_create_logs_every_field_as_json(clerk, acme):
    """A new record's row has each non-empty field's first value, JSON-ready, and who made it."""
    entry = audit_rows(acme).get(action=AuditAction.CREATE)

    assert (entry.actor, entry.object_repr) == (clerk, f"{acme.number} Acme SARL")
    assert entry.object_type == ContentType.objects.get_for_model(Client)
    assert (entry.org_unit_id, entry.owner_id) == (acme.org_unit_id, clerk.pk)
    assert entry.changes["name"] == {"before": None, "after": "Acme SARL"}
    assert entry.changes["owner_id"] == {"before": None, "after": clerk.pk}
    assert entry.changes["org_unit_id"] == {"before": None, "after": acme.org_unit_id}
    created_at = acme.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert entry.changes["created_at"] == {"before": None, "after": created_at}
    assert "id" not in entry.changes
    assert "version" not in entry.changes  # bookkeeping, not a change a person made
    # empty values (None, "", [], {}) are left out; False, True and numbers are kept
    assert sorted(entry.changes) == [
        "auto_apply_credit", "bill_to_parent", "city", "company_name", "consent_api",
        "consent_email", "consent_sms", "created_at", "currency", "email", "kind", "language",
        "late_fee_exempt", "name", "no_card_autopay", "no_overdue_notices", "number",
        "org_unit_id", "owner_id", "payment_method", "preferred_channel", "separate_invoices",
        "status", "tax_exempt",
    ]  # fmt: skip
    assert entry.changes["tax_exempt"] == {"before": None, "after": False}
    assert entry.changes["auto_apply_credit"] == {"before": None, "after": True}
    assert entry.shown_changes == entry.changes  # nothing left to hide


@pytest.mark.django_db
def test_an_old_creation_entry_with_empty_values_shows_as_a_new_one(clerk, acme):
    """Entries written before empty values were left out still show without them."""
    entry = audit_rows(acme).get(action=AuditAction.CREATE)
    full = {**entry.changes, "tax_id": {"before": None, "after": ""},
            "parent_id": {"before": None, "after": None},
            "notices_opted_out": {"before": None, "after": []},
            "custom": {"before": None, "after": {}}}  # fmt: skip
    old = AuditEntry(action=AuditAction.CREATE, changes=full)
    assert old.shown_changes == entry.changes


@pytest.mark.django_db
def test_audit_update_logs_only_the_changed_fields(clerk, acme):
    """Fields that changed are logged with before and after; the rest are not."""
    before = snapshot(acme)
    acme.name, acme.city = "Acme SA", "Nice"

    with transaction.atomic():
        entry = audit_update(acme, before, by=clerk)

    entry.refresh_from_db()
    assert entry.action == AuditAction.UPDATE
    assert entry.changes == {
        "name": {"before": "Acme SARL", "after": "Acme SA"},
        "city": {"before": "Lyon", "after": "Nice"},
    }
    assert entry.object_repr == f"{acme.number} Acme SA"


@pytest.mark.django_db
def test_audit_update_without_a_change_writes_nothing(clerk, acme):
    """No changed field, no row."""
    before, total = snapshot(acme), AuditEntry.objects.count()

    with transaction.atomic():
        entry = audit_update(acme, before, by=clerk)

    assert entry is None
    assert AuditEntry.objects.count() == total


@pytest.mark.django_db
def test_audit_delete_logs_the_last_values(clerk, acme):
    """A deleted record's row keeps each field's last value."""
    with transaction.atomic():
        entry = audit_delete(acme, by=clerk)

    assert entry.action == AuditAction.DELETE
    assert entry.changes["email"] == {"before": "billing@acme.example", "after": None}
    assert entry.changes["number"] == {"before": acme.number, "after": None}


@pytest.mark.django_db
def test_secret_fields_are_masked_when_a_user_is_created(org):
    """A new user's password hash never reaches the audit log."""
    user = user_create(username="ann", password=PASSWORD, by=None, org_unit=org["team_a"])

    entry = audit_rows(user).get(action=AuditAction.CREATE)
    assert entry.changes["password"] == {"before": None, "after": MASK}
    assert user.check_password(PASSWORD)
    assert user.password not in json.dumps(entry.changes)
    assert snapshot(user)["password"] == MASK


@pytest.mark.django_db
def test_a_password_change_is_logged_masked(org, clerk):
    """Changing a password writes an audit row that says so without showing either hash."""
    user = user_create(username="ann", password=PASSWORD, by=None, org_unit=org["team_a"])
    old_hash, total = user.password, AuditEntry.objects.count()

    user = user_set_password(user=user, password="another-horse-battery-7", by=clerk)

    assert AuditEntry.objects.count() == total + 1
    entry = audit_rows(user).first()
    assert (entry.action, entry.actor) == (AuditAction.UPDATE, clerk)
    assert entry.changes == {"password": {"before": MASK, "after": MASK}}
    for secret in (old_hash, user.password):
        assert secret not in json.dumps(entry.changes)


@pytest.mark.django_db
def test_an_unchanged_secret_is_not_logged(org, clerk):
    """A change to other fields of a user leaves the masked password out of the row."""
    user = user_create(username="ann", password=PASSWORD, by=None, org_unit=org["team_a"])

    user_update(user=user, by=clerk, first_name="Ann")

    entry = audit_rows(user).first()
    assert entry.action == AuditAction.UPDATE
    assert entry.changes == {"first_name": {"before": "", "after": "Ann"}}


def test_an_empty_secret_shows_as_empty():
    """Masking tells apart a secret that is set from one that is not."""
    assert snapshot(User(username="x", password=""))["password"] == ""
    assert snapshot(User(username="x", password="pbkdf2$abc"))["password"] == MASK


# --- services write one audit row and one event, or nothing -----------------------------


@pytest.mark.django_db
def test_client_create_writes_one_audit_row_and_one_event(clerk):
    """Creating a client is one client, one audit row and one event."""
    clients, entries, feed = counts()

    client = client_create(by=clerk, name="Globex", email="ap@globex.example")

    assert counts() == (clients + 1, entries + 1, feed + 1)
    entry = audit_rows(client).get()
    event = Event.objects.get(client=client)
    assert (entry.action, entry.actor, event.type, event.actor) == (
        AuditAction.CREATE,
        clerk,
        "client.created",
        clerk,
    )
    assert (event.reference, event.details) == (client.number, {"name": "Globex"})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "email", ["billing@acme.example", "BILLING@Acme.Example", " Billing@acme.example "]
)
def test_client_create_refuses_a_known_email_and_writes_nothing(clerk, acme, email):
    """A duplicate email, in any case, is refused at the email field; nothing is written."""
    before = counts()
    next_value = NumberSeries.objects.get(key="client").next_value

    with pytest.raises(ServiceError) as refused:
        client_create(by=clerk, name="Acme again", email=email)

    assert list(refused.value.message_dict) == ["email"]
    assert refused.value.message_dict["email"] == [f"Client {acme.number} already uses this email."]
    assert counts() == before
    assert NumberSeries.objects.get(key="client").next_value == next_value


@pytest.mark.django_db
def test_client_create_is_one_transaction_with_its_history(clerk, monkeypatch):
    """When the event cannot be written, the client, its audit row and its number go too."""
    before = counts()
    next_value = NumberSeries.objects.get_or_create(key="client")[0].next_value

    def broken(*args, **kwargs):
        raise RuntimeError("newsfeed down")

    monkeypatch.setattr(client_services, "record_event", broken)

    with pytest.raises(RuntimeError, match="newsfeed down"):
        client_create(by=clerk, name="Initech", email="ap@initech.example")

    assert counts() == before
    assert NumberSeries.objects.get(key="client").next_value == next_value


@pytest.mark.django_db
def test_client_update_writes_one_audit_row_and_one_event(clerk, acme):
    """Changing a client logs the changed fields and tells the newsfeed which ones."""
    before = counts()

    client_update(client=acme, by=clerk, name="Acme SA", phone="+33 4 72 00 00 00")

    assert counts() == (before[0], before[1] + 1, before[2] + 1)
    entry = audit_rows(acme).first()
    assert entry.changes == {
        "name": {"before": "Acme SARL", "after": "Acme SA"},
        "company_name": {"before": "Acme SARL", "after": "Acme SA"},
        "phone": {"before": "", "after": "+33472000000"},
    }
    event = Event.objects.filter(client=acme).order_by("-id").first()
    assert (event.type, event.details) == (
        "client.changed",
        {"fields": ["company_name", "name", "phone"]},
    )
    assert event.message == "Client details changed: company name, name, phone"


@pytest.mark.django_db
def test_client_update_without_a_change_writes_nothing(clerk, acme):
    """Saving the same values again is no news."""
    before = counts()

    client_update(client=acme, by=clerk, name="Acme SARL", city="Lyon")

    assert counts() == before


@pytest.mark.django_db
def test_client_update_refuses_another_clients_email_and_changes_nothing(clerk, acme):
    """Taking another client's email is refused; the client and the history stay as they were."""
    globex = client_create(by=clerk, name="Globex", email="ap@globex.example")
    before, row = counts(), Client.objects.filter(pk=globex.pk).values().get()

    with pytest.raises(ServiceError) as refused:
        client_update(client=globex, by=clerk, name="Globex 2", email="Billing@ACME.example")

    assert list(refused.value.message_dict) == ["email"]
    assert counts() == before
    assert Client.objects.filter(pk=globex.pk).values().get() == row


@pytest.mark.django_db
def test_user_create_writes_one_audit_row_and_one_event(org, clerk):
    """A new member of staff is one audit row and one security event."""
    before = (User.objects.count(), AuditEntry.objects.count(), Event.objects.count())

    user = user_create(username="bob", password=PASSWORD, by=clerk, org_unit=org["team_b"])

    assert (User.objects.count(), AuditEntry.objects.count(), Event.objects.count()) == (
        before[0] + 1,
        before[1] + 1,
        before[2] + 1,
    )
    event = Event.objects.filter(type="user.created").order_by("-id").first()
    assert (event.category, event.actor, event.org_unit_id) == (
        EventCategory.SECURITY,
        clerk,
        org["team_b"].pk,
    )
    assert event.message == "User bob created"
    assert list(audit_rows(user).values_list("action", "actor")) == [("create", clerk.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "password", "field"),
    [("clerk", PASSWORD, "username"), ("bob", "123", "password")],
    ids=["taken-username", "weak-password"],
)
def test_user_create_refused_writes_nothing(org, clerk, username, password, field):
    """A taken username or a weak password is refused at its field; nothing is written."""
    before = (User.objects.count(), AuditEntry.objects.count(), Event.objects.count())

    with pytest.raises(ValidationError) as refused:
        user_create(username=username, password=password, by=clerk, org_unit=org["team_a"])

    assert list(refused.value.message_dict) == [field]
    assert (User.objects.count(), AuditEntry.objects.count(), Event.objects.count()) == before


@pytest.mark.django_db
def test_event_sentences_use_the_readers_words(make_user):
    from django.utils import translation

    from clientbase.clients.services import client_create, client_update
    from clientbase.core.models import Event

    ann = make_user("ann")
    alpha = client_create(by=ann, name="Alpha", email="alpha@example.com")
    client_update(client=alpha, by=ann, phone="+33199001188", owner=ann, tax_id="732829320")
    changed = Event.objects.get(type="client.changed")
    assert changed.details == {"fields": ["phone", "tax_id"]}
    assert changed.message == "Client details changed: phone, tax id"
    with translation.override("fr"):
        assert changed.message == (
            "Coordonnées du client modifiées\u00a0: téléphone, identifiant fiscal"
        )
