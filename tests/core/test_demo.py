"""Demo data: realistic clients in four languages, rerun-safe, and the demo benchmark."""

import datetime as dt
import io
import json
import random
from collections import Counter

import phonenumbers
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.validators import validate_email
from django.db import connection, transaction
from stdnum.fr import nif, tva
from stdnum.gb import vat as gb_vat
from stdnum.ru import inn
from stdnum.us import ein
from stdnum.vn import mst

from clientbase.accounts.models import User
from clientbase.clients.models import Client
from clientbase.clients.services import client_create
from clientbase.core import demo_clients
from clientbase.core.demo import DEMO_PASSWORD, ensure_demo_org
from clientbase.core.demo_clients import demo_clients_create
from clientbase.core.models import Event, NumberSeries

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CURRENCY = {"RU": "RUB", "FR": "EUR", "VN": "VND", "US": "USD", "GB": "GBP"}
LANGUAGE = {"RU": "ru", "FR": "fr", "VN": "vi", "US": "en", "GB": "en"}
SALES = {"sales.paris", "sales.paris.b", "sales.lyon"}


class Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


@pytest.fixture
def demo_org(db):
    """The demo units and staff."""
    return ensure_demo_org()


def tax_id_is_valid(client: Client) -> bool:
    """Whether the client's tax id is the right kind for its country and passes stdnum."""
    company = client.kind == Client.Kind.COMPANY
    if client.country == "RU":
        return len(client.tax_id) == (10 if company else 12) and inn.is_valid(client.tax_id)
    if client.country == "FR":
        return (tva if company else nif).is_valid(client.tax_id)
    if client.country == "VN":
        return len(client.tax_id) == 10 and mst.is_valid(client.tax_id)
    if not company:
        return client.tax_id == ""
    if client.country == "US":
        return ein.is_valid(client.tax_id)
    return client.tax_id.startswith("GB") and gb_vat.is_valid(client.tax_id)


def snapshot() -> tuple[int, int, int]:
    """Clients, "client.created" events and the client series' next value."""
    series = NumberSeries.objects.filter(key="client").first()
    return (
        Client.objects.count(),
        Event.objects.filter(type="client.created").count(),
        series.next_value if series else None,
    )


def test_fifty_demo_clients_have_valid_unique_details(demo_org):
    # given an empty client base
    # when the demo generator fills it to 50 clients
    with time_machine.travel(NOW, tick=False):
        result = demo_clients_create(clients=50, org=demo_org)

    # then exactly 50 clients exist, each with a valid unique email, tax id and phone
    clients = list(Client.objects.order_by("id"))
    assert (result.created, result.total, len(clients)) == (50, 50, 50)
    assert len({c.email.lower() for c in clients}) == 50
    for client in clients:
        validate_email(client.email)
        assert tax_id_is_valid(client), (client.country, client.kind, client.tax_id)
        phone = phonenumbers.parse(client.phone)
        assert phonenumbers.is_valid_number(phone), client.phone
        assert phonenumbers.region_code_for_number(phone) == client.country
        assert phonenumbers.format_number(phone, phonenumbers.PhoneNumberFormat.E164) == (
            client.phone
        )
        assert client.currency == CURRENCY[client.country]
        assert client.language == LANGUAGE[client.country]
        assert client.name and client.street and client.postcode and client.city
    assert {c.language for c in clients} == {"ru", "fr", "vi", "en"}
    assert {c.kind for c in clients} == {"company", "individual"}


def test_demo_clients_numbers_follow_the_series_without_gaps(demo_org):
    # given one client created by hand, who took number 1
    clerk = demo_org.users["sales.paris"]
    client_create(by=clerk, name="Hand Made", email="hand@example.com")

    # when the demo generator fills the base to 50 clients
    demo_clients_create(clients=50, org=demo_org, batch_size=20)

    # then the demo clients took numbers 2 to 50 in order, and the series stands at 51
    numbers = list(Client.objects.order_by("id").values_list("number", flat=True))
    assert numbers == [str(n) for n in range(1, 51)]
    assert NumberSeries.objects.get(key="client").next_value == 51
    # and the next client made by hand takes 51
    later = client_create(by=clerk, name="Later", email="later@example.com")
    assert later.number == "51"


def test_demo_clients_belong_to_sales_staff_and_spread_over_two_years(demo_org):
    # given the demo staff
    # when 50 demo clients are generated at a fixed instant
    with time_machine.travel(NOW, tick=False):
        demo_clients_create(clients=50, org=demo_org)

    # then each is owned by a seller and sits in the seller's unit
    clients = list(Client.objects.select_related("owner").order_by("id"))
    for client in clients:
        assert client.owner.username in SALES
        assert client.org_unit_id == client.owner.org_unit_id
    # and they were created over the last two years, in number order
    times = [c.created_at for c in clients]
    assert times == sorted(times)
    assert NOW - dt.timedelta(days=730) <= times[0] < times[-1] <= NOW
    # and most are active, a few not
    statuses = Counter(c.status for c in clients)
    assert set(statuses) <= {"active", "inactive", "closed"}
    assert statuses.most_common(1)[0][0] == "active"
    assert statuses["active"] < 50


def test_each_demo_client_has_one_created_event(demo_org, monkeypatch):
    # given an empty newsfeed, and new ids looked up a few numbers at a time
    monkeypatch.setattr(demo_clients, "LOOKUP_ROWS", 7)

    # when 50 demo clients are generated in batches of 20
    demo_clients_create(clients=50, org=demo_org, batch_size=20)

    # then each client has exactly one "client.created" event that tells its name
    events = list(Event.objects.filter(type="client.created").select_related("client"))
    assert len(events) == 50
    assert len({e.client_id for e in events}) == 50
    for event in events:
        client = event.client
        assert event.category == "account"
        assert event.reference == client.number
        assert event.details == {"name": client.name}
        assert (event.org_unit_id, event.owner_id, event.actor_id) == (
            client.org_unit_id,
            client.owner_id,
            client.owner_id,
        )
        assert event.occurred_at == client.created_at
        assert event.subject_id == str(client.pk)
        assert event.message == f"Client {client.name} created"


def test_the_sqlite_page_cache_is_given_back_after_a_run(demo_org, on_postgres):
    # given the connection's page cache size
    if on_postgres:
        pytest.skip("a SQLite setting")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (before,) = cursor.fetchone()

    # when demo clients are generated
    demo_clients_create(clients=5, org=demo_org)

    # then the cache has its old size again
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        assert cursor.fetchone() == (before,)
    assert before != -demo_clients.SQLITE_CACHE_KIB


def test_rerun_with_the_same_count_creates_nothing(demo_org):
    # given a base filled to 50 demo clients
    demo_clients_create(clients=50, org=demo_org)
    before = snapshot()
    emails = set(Client.objects.values_list("email", flat=True))

    # when the generator runs again for 50
    result = demo_clients_create(clients=50, org=demo_org)

    # then nothing changed
    assert (result.created, result.total) == (0, 50)
    assert snapshot() == before == (50, 50, 51)
    assert set(Client.objects.values_list("email", flat=True)) == emails


def test_rerun_with_a_larger_count_creates_only_the_difference(demo_org):
    # given a base filled to 50 demo clients
    demo_clients_create(clients=50, org=demo_org)

    # when the generator runs again for 60
    result = demo_clients_create(clients=60, org=demo_org)

    # then 10 more clients took numbers 51 to 60, each with its event and a unique email
    assert (result.created, result.total) == (10, 60)
    assert snapshot() == (60, 60, 61)
    numbers = list(Client.objects.order_by("id").values_list("number", flat=True))
    assert numbers == [str(n) for n in range(1, 61)]
    assert len({e.lower() for e in Client.objects.values_list("email", flat=True)}) == 60


def test_the_same_seed_makes_the_same_clients(demo_org):
    # given 30 demo clients made and rolled back
    def make() -> list[tuple]:
        demo_clients_create(clients=30, org=demo_org, seed=7)
        return list(
            Client.objects.order_by("number").values_list(
                "name", "email", "phone", "tax_id", "street", "city", "country", "owner"
            )
        )

    with pytest.raises(Rollback), transaction.atomic():
        first = make()
        raise Rollback
    assert Client.objects.count() == 0

    # when they are made again with the same seed
    second = make()

    # then they are the same clients
    assert second == first
    assert len(second) == 30


@pytest.mark.parametrize(
    ("make", "validator"),
    [
        (lambda rng: demo_clients.ru_inn(rng, company=True), inn),
        (lambda rng: demo_clients.ru_inn(rng, company=False), inn),
        (demo_clients.fr_vat, tva),
        (demo_clients.fr_nif, nif),
        (demo_clients.vn_mst, mst),
        (demo_clients.us_ein, ein),
        (demo_clients.gb_vat, gb_vat),
    ],
    ids=["ru-inn-10", "ru-inn-12", "fr-vat", "fr-nif", "vn-mst", "us-ein", "gb-vat"],
)
def test_tax_id_generators_make_only_valid_numbers(make, validator):
    # given a seeded random source
    rng = random.Random(1)

    # when a generator makes 2,000 tax ids
    made = [make(rng) for _ in range(2000)]

    # then stdnum accepts every one and they are not all alike
    assert [value for value in made if not validator.is_valid(value)] == []
    assert len(set(made)) > 1900


def test_demo_command_creates_the_missing_clients_and_shows_the_login(db):
    # given an empty base
    out = io.StringIO()

    # when `clientbase demo --clients 12` runs twice
    call_command("demo", "--clients", "12", stdout=out)
    first = out.getvalue()
    out = io.StringIO()
    call_command("demo", "--clients", "12", stdout=out)
    second = out.getvalue()

    # then the first run created 12 clients and the second none (the 13th is the demo lead
    # converted into a client); both show the login
    assert Client.objects.count() == 12 + 1
    assert Client.objects.filter(leads__isnull=False).count() == 1
    assert "Created 12 demo clients" in first
    assert second.splitlines()[0] == "13 clients already; none created."
    for output in (first, second):
        assert output.splitlines()[-1] == f"Demo administrator: admin / {DEMO_PASSWORD}"
    assert User.objects.get(username="admin").check_password(DEMO_PASSWORD)


def test_demo_command_refuses_a_negative_count(db):
    # given an empty base
    # when the command is asked for -1 clients
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("demo", "--clients", "-1", stdout=io.StringIO())

    # then nothing was created, not even the demo staff
    assert Client.objects.count() == 0
    assert User.objects.count() == 0


def test_bench_demo_prints_one_json_line_of_figures(db, monkeypatch):
    # given the user's own (test) database holds no clients, and a stray sandbox variable
    monkeypatch.setenv("CLIENTBASE_BENCH_SANDBOX", "1")
    out = io.StringIO()

    # when the demo benchmark runs for 200 clients
    call_command("bench", "demo", "--clients", "200", stdout=out)

    # then it printed one JSON line of positive figures
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert {
        "bench",
        "clients",
        "seconds",
        "rows_per_second",
        "baseline_rows_per_second",
        "ratio",
    } <= set(figures)
    assert (figures["bench"], figures["clients"], figures["database"]) == ("demo", 200, "sqlite")
    for key in ("seconds", "rows_per_second", "baseline_rows_per_second", "ratio"):
        assert figures[key] > 0, key
    # and it ran in a scratch database, leaving the user's data alone
    assert Client.objects.count() == 0


def test_bench_refuses_an_unknown_benchmark():
    # given no benchmark called "nosuch"
    # when it is asked for
    with pytest.raises(CommandError, match=r"No benchmark 'nosuch'; available: .*demo"):
        call_command("bench", "nosuch", stdout=io.StringIO())


def test_demo_billing_is_topped_up_not_doubled(db):
    from clientbase.billing.models import LedgerEntry, Order

    # when the demo runs twice, asked for billing on 3 accounts
    for _run in range(2):
        call_command("demo", "--clients", "12", "--billing-accounts", "3", stdout=io.StringIO())
        if _run == 0:
            orders, entries = Order.objects.count(), LedgerEntry.objects.count()

    # then 3 clients were sold to, once
    assert Order.objects.values("client").distinct().count() == 3
    assert (Order.objects.count(), LedgerEntry.objects.count()) == (orders, entries)
