"""Client search (PLT-4): quick, advanced, keyset pages; duplicate detection (CUS-3)."""

import datetime as dt
import importlib
import itertools

import pytest
from django.db import connection, transaction
from django.db.models import F, Value

from clientbase.clients import search
from clientbase.clients.models import Client, Contact, ContactPhone
from clientbase.clients.search import (
    Criterion,
    Duplicate,
    KeysetPage,
    SearchField,
    advanced_search,
    client_search_queryset,
    find_duplicates,
    keyset_page,
    quick_search,
    search_fields,
    search_page,
)
from clientbase.clients.services import client_create
from clientbase.core import clock
from clientbase.core.customfields import custom_field_save
from clientbase.core.errors import ServiceError

_numbers = itertools.count(1)


def make_client(owner, **fields) -> Client:
    """A client row as the services store it (normalised values), owned by `owner`."""
    n = next(_numbers)
    fields.setdefault("number", f"CL-{n:05d}")
    fields.setdefault("email", f"client{n}@example.com")
    fields.setdefault("currency", "EUR")
    fields.setdefault("org_unit", owner.org_unit)
    return Client.objects.create(owner=owner, **fields)


def numbers(found) -> list[str]:
    return [c.number for c in found]


@pytest.fixture
def ann(make_user):
    """A seller: sees only her own clients."""
    return make_user("ann", role="sales", unit="team_a")


@pytest.fixture
def bob(make_user):
    """A seller in the other team."""
    return make_user("bob", role="sales", unit="team_b")


@pytest.fixture
def base(ann, bob):
    """Five clients: three of Ann's, two of Bob's, in creation (id) order."""
    return {
        "petrov": make_client(
            ann,
            number="CL-00101",
            name="Petrov Ivan Sergeevich",
            email="ivan.petrov@example.com",
            phone="+79161234567",
            tax_id="770708389301",
            country="RU",
        ),
        "romashka": make_client(
            ann,
            number="CL-00102",
            kind="company",
            name="Romashka LLC",
            company_name="Romashka LLC",
            email="info@romashka.example",
            phone="+74951234567",
            tax_id="7707083893",
            country="RU",
        ),
        "dupont": make_client(
            bob,
            number="CL-00103",
            name="Élodie Dupont",
            email="elodie.dupont@example.fr",
            phone="+33687654321",
            tax_id="FR40303265045",
            national_id="1850775123456",
            country="FR",
        ),
        "ivanova": make_client(
            ann,
            number="CL-00104",
            name="Иванова Мария Петровна",
            email="maria.ivanova@example.ru",
            phone="+79169876543",
            country="RU",
        ),
        "petrovsky": make_client(
            bob,
            number="CL-00105",
            kind="company",
            name="Petrovsky & Sons",
            company_name="Petrovsky & Sons",
            email="office@petrovsky.example",
            country="GB",
            custom={"code_1c": "A-77", "segment": "Gold"},
            custom_search="a-77 gold",
        ),
    }


# --- Quick search ----------------------------------------------------------------------------


def test_a_fragment_of_a_name_finds_clients_newest_first_whatever_the_case(base, admin_user):
    assert numbers(quick_search(admin_user, "petrov")) == ["CL-00105", "CL-00101"]
    assert numbers(quick_search(admin_user, "PETROV")) == ["CL-00105", "CL-00101"]
    assert numbers(quick_search(admin_user, "ромаш")) == []
    assert numbers(quick_search(admin_user, "ИВАНОВ")) == ["CL-00104"]
    assert numbers(quick_search(admin_user, "петров")) == ["CL-00104"]


def test_fragments_of_email_number_tax_id_and_national_id(base, admin_user):
    assert numbers(quick_search(admin_user, "@romashka")) == ["CL-00102"]
    assert numbers(quick_search(admin_user, "dupont@exa")) == ["CL-00103"]
    assert numbers(quick_search(admin_user, "n.petrov@")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "n_petrov")) == []
    assert numbers(quick_search(admin_user, "CL-0010")) == [
        "CL-00105",
        "CL-00104",
        "CL-00103",
        "CL-00102",
        "CL-00101",
    ]
    assert numbers(quick_search(admin_user, "708389")) == ["CL-00102", "CL-00101"]
    assert numbers(quick_search(admin_user, "fr4030")) == ["CL-00103"]
    assert numbers(quick_search(admin_user, "0775123")) == ["CL-00103"]


def test_every_word_must_occur_and_short_words_beside_long_ones_are_left_out(base, admin_user):
    assert numbers(quick_search(admin_user, "ivan petrov")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "Petrov  Sergeevich")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "petrov & sons")) == ["CL-00105"]
    assert numbers(quick_search(admin_user, "petrov zzz")) == []


def test_phone_digits_match_however_they_are_typed(base, admin_user):
    assert numbers(quick_search(admin_user, "916 123-45")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "8 (916) 123-45-67")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "+7 916")) == ["CL-00104", "CL-00101"]
    assert numbers(quick_search(admin_user, "06 87 65 43")) == ["CL-00103"]
    assert numbers(quick_search(admin_user, "1234567")) == ["CL-00102", "CL-00101"]
    # A + keeps the digits as they are: no national prefix to drop.
    assert numbers(quick_search(admin_user, "+8916")) == []


def test_custom_field_values_are_searched(base, admin_user):
    assert numbers(quick_search(admin_user, "a-77")) == ["CL-00105"]
    assert numbers(quick_search(admin_user, "GOLD")) == ["CL-00105"]


def test_custom_search_filled_by_the_services_is_searched(admin_user):
    custom_field_save(field=None, by=admin_user, code="code_1c", label="1C code")
    custom_field_save(field=None, by=admin_user, code="pin", label="PIN", type="secret")
    alpha = client_create(
        by=admin_user,
        name="Alpha SARL",
        email="alpha@example.com",
        custom={"code_1c": "ZX-4411", "pin": "975310"},
    )
    assert numbers(quick_search(admin_user, "zx-441")) == [alpha.number]
    assert numbers(quick_search(admin_user, "975310")) == []


def test_a_short_fragment_finds_names_starting_with_it_or_the_exact_number(base, admin_user, ann):
    assert numbers(quick_search(admin_user, "Pe")) == ["CL-00105", "CL-00101"]
    assert numbers(quick_search(admin_user, "pe")) == ["CL-00105", "CL-00101"]
    assert numbers(quick_search(admin_user, "Ив")) == ["CL-00104"]
    assert numbers(quick_search(admin_user, "ив")) == ["CL-00104"]
    assert numbers(quick_search(admin_user, "ov")) == []
    short = make_client(ann, number="77", name="Zed")
    assert numbers(quick_search(admin_user, "77")) == [short.number]


def test_the_empty_text_finds_every_visible_client_and_the_limit_holds(base, admin_user, ann):
    assert numbers(quick_search(admin_user, "  ")) == [
        "CL-00105",
        "CL-00104",
        "CL-00103",
        "CL-00102",
        "CL-00101",
    ]
    assert numbers(quick_search(admin_user, "CL-001", limit=2)) == ["CL-00105", "CL-00104"]
    assert numbers(client_search_queryset(ann, "")) == ["CL-00104", "CL-00102", "CL-00101"]


def test_a_user_never_finds_a_client_out_of_sight(base, ann, bob, make_user):
    assert numbers(quick_search(ann, "petrov")) == ["CL-00101"]
    assert numbers(quick_search(bob, "petrov")) == ["CL-00105"]
    assert numbers(quick_search(ann, "dupont")) == []
    assert numbers(quick_search(ann, "Pe")) == ["CL-00101"]
    team_b_manager = make_user("tom", role="manager", unit="team_b")
    assert numbers(quick_search(team_b_manager, "example")) == ["CL-00105", "CL-00103"]
    branch_manager = make_user("mia", role="manager", unit="branch")
    assert numbers(quick_search(branch_manager, "petrov")) == ["CL-00105", "CL-00101"]


def test_merged_and_deleted_clients_are_never_found(base, admin_user):
    Client.everything.filter(pk=base["petrov"].pk).update(merged_into=base["romashka"])
    Client.everything.filter(pk=base["petrovsky"].pk).update(deleted_at=clock.now())
    assert numbers(quick_search(admin_user, "petrov")) == []
    assert numbers(quick_search(admin_user, "Pe")) == []
    assert numbers(client_search_queryset(admin_user, "")) == ["CL-00104", "CL-00103", "CL-00102"]
    found = advanced_search(admin_user, [Criterion("name", "contains", "petrov")])
    assert numbers(found) == []
    assert find_duplicates(user=admin_user, email="ivan.petrov@example.com") == []


def test_the_index_follows_changes_and_deletions(base, admin_user):
    petrov = base["petrov"]
    Client.everything.filter(pk=petrov.pk).update(
        name="Sidorov Ivan", email="ivan.sidorov@example.com", custom_search="vip"
    )
    assert numbers(quick_search(admin_user, "petrov ivan")) == []
    assert numbers(quick_search(admin_user, "sidorov")) == ["CL-00101"]
    assert numbers(quick_search(admin_user, "vip")) == ["CL-00101"]
    # Columns that are not searched change without touching the index.
    Client.everything.filter(pk=petrov.pk).update(status="inactive", city="Moscow")
    assert numbers(quick_search(admin_user, "sidorov")) == ["CL-00101"]
    Client.everything.filter(pk=petrov.pk).delete()
    assert numbers(quick_search(admin_user, "sidorov")) == []
    assert numbers(quick_search(admin_user, "ivan")) == ["CL-00104"]


def test_quick_search_takes_a_few_queries(base, admin_user, django_assert_num_queries, on_postgres):
    # SQLite: the newest ids' matches walked, then the older ones as a set. PostgreSQL: the
    # highest id, the newest ids' matches, the visible ones loaded (the base is too small
    # for more).
    expected = 3 if on_postgres else 2
    with django_assert_num_queries(expected):
        quick_search(admin_user, "petrov ivan")
    with django_assert_num_queries(expected):
        quick_search(admin_user, "8 916 123")


def test_search_syntax_in_the_text_is_taken_literally(base, admin_user, ann):
    make_client(ann, number="CL-00106", name='Say "hello" OR NOT 100%_off')
    assert numbers(quick_search(admin_user, '"hello" or')) == ["CL-00106"]
    assert numbers(quick_search(admin_user, "100%_")) == ["CL-00106"]
    assert numbers(quick_search(admin_user, "0%x")) == []
    assert numbers(quick_search(admin_user, "NOT")) == ["CL-00106"]


def test_the_index_is_on_the_document_search_builds():
    migration = importlib.import_module("clientbase.clients.migrations.0008_search_index")
    assert migration.DOCUMENT_COLUMNS == search.DOCUMENT_COLUMNS
    assert migration.SQLITE_TABLE == search.SQLITE_TABLE
    # The repair after later migrations builds what the migration built.
    assert migration.sqlite_create_statements()[1:4] == search.sqlite_trigger_statements()
    assert migration.pg_create_statements()[1] == search.pg_index_statement()


@pytest.mark.django_db
def test_the_index_is_in_place_after_every_migration():
    # A later migration that rebuilds clients_client on SQLite drops its triggers: the
    # clients app puts them back after migrate (search_index_post_migrate).
    assert search.ensure_search_index() is False


def test_a_dropped_index_is_put_back_with_every_row(base, admin_user, on_postgres):
    with connection.cursor() as cursor:
        if on_postgres:
            # Checks of deferred foreign keys pending in the test's transaction block DDL.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP INDEX {search.PG_INDEX}")
        else:
            cursor.execute(f"DROP TRIGGER {search.SQLITE_TRIGGERS[2]}")
    # Changed while nothing kept the index in step.
    Client.everything.filter(pk=base["petrov"].pk).update(name="Sidorov Ivan")
    assert search.ensure_search_index() is True
    assert search.ensure_search_index() is False
    assert numbers(quick_search(admin_user, "sidorov")) == ["CL-00101"]
    Client.everything.filter(pk=base["petrov"].pk).update(name="Kuznetsov Ivan")
    assert numbers(quick_search(admin_user, "sidorov")) == []
    assert numbers(quick_search(admin_user, "kuznetsov")) == ["CL-00101"]


@pytest.mark.postgres
def test_postgresql_uses_the_trigram_index(base):
    # Bitmap scans only: the trigram index is the one index that can answer the condition.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    found = Client.everything.alias(search_document=search.Document())
    plan = found.filter(search.Like(F("search_document"), Value("%petrov%"))).explain()
    assert "clients_client_search_trgm" in plan
    # The forms of a phone number, as one regular expression.
    plan = found.filter(search_document__iregex="(916123|7916123)").explain()
    assert "clients_client_search_trgm" in plan


def _statistics_target() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1",
            [search.PG_INDEX],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_the_planner_samples_enough_documents_also_after_a_rebuild(base):
    # Set by migration 0014; a rebuilt index (after a load, or a dropped column) gets it too.
    assert _statistics_target() == search.PG_STATISTICS == 1000
    migration = importlib.import_module(
        "clientbase.clients.migrations.0014_search_index_statistics"
    )
    assert migration.STATISTICS == search.PG_STATISTICS
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DROP INDEX {search.PG_INDEX}")
    assert search.ensure_search_index() is True
    assert _statistics_target() == 1000


@pytest.mark.postgres
def test_an_index_from_before_punctuation_was_joined_is_built_again(base, admin_user):
    columns = " || E'\\n' || ".join(f'"{c}"' for c in search.DOCUMENT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DROP INDEX {search.PG_INDEX}")
        cursor.execute(
            f"CREATE INDEX {search.PG_INDEX} ON clients_client USING gin (({columns}) gin_trgm_ops)"
        )
    assert search.ensure_search_index() is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [search.PG_INDEX])
        assert "replace(" in cursor.fetchone()[0]
    assert numbers(quick_search(admin_user, "n.petrov@")) == ["CL-00101"]


# --- Duplicates ------------------------------------------------------------------------------


def test_duplicates_by_each_identifier_with_visibility(base, ann):
    found = find_duplicates(
        user=ann,
        email="IVAN.Petrov@example.com",
        phone="+33687654321",
        tax_id="7707083893",
        national_id="1850775123456",
    )
    assert found == [
        Duplicate(client=base["petrov"], field="email", visible=True),
        Duplicate(client=base["dupont"], field="phone", visible=False),
        Duplicate(client=base["romashka"], field="tax_id", visible=True),
        Duplicate(client=base["dupont"], field="national_id", visible=False),
    ]


def test_duplicates_exclude_the_client_being_edited_and_need_exact_values(base, ann):
    assert (
        find_duplicates(user=ann, email="ivan.petrov@example.com", exclude_id=base["petrov"].pk)
        == []
    )
    assert find_duplicates(user=ann, email="petrov@example.com", tax_id="77070838") == []
    assert find_duplicates(user=ann) == []


def test_a_contact_phone_is_a_duplicate_phone(base, ann, bob):
    contact = Contact.objects.create(client=base["romashka"], last_name="Smirnov")
    ContactPhone.objects.create(contact=contact, type="mobile", number="+79161234567")
    found = find_duplicates(user=bob, phone="+79161234567")
    assert found == [
        Duplicate(client=base["romashka"], field="phone", visible=False),
        Duplicate(client=base["petrov"], field="phone", visible=False),
    ]


def test_a_client_found_by_one_identifier_is_listed_for_another_only_among_its_newest(ann, bob):
    # given six clients sharing a phone, the oldest of them also sharing the email typed
    sharing = [
        make_client(ann if n % 2 else bob, name=f"Share {n}", phone="+33611111111")
        for n in range(6)
    ]
    Client.everything.filter(pk=sharing[0].pk).update(email="first@example.com")
    contact = Contact.objects.create(client=sharing[1], last_name="Martin")
    ContactPhone.objects.create(contact=contact, type="mobile", number="+33622222222")
    # when the check runs with the email and the phone
    found = find_duplicates(user=ann, email="First@Example.com", phone="+33611111111")
    # then the email lists the oldest; the phone only the newest five, the oldest left out
    assert [(d.client.pk, d.field, d.visible) for d in found] == [
        (sharing[0].pk, "email", False),
        *((c.pk, "phone", bool(n % 2)) for n, c in reversed(list(enumerate(sharing)))),
    ][:6]
    # and a contact's phone counts beside the client's own, the newest first
    found = find_duplicates(user=bob, phone="+33622222222", tax_id="none")
    assert [(d.client.pk, d.field, d.visible) for d in found] == [(sharing[1].pk, "phone", False)]
    found = find_duplicates(user=bob, phone="+33611111111", exclude_id=sharing[5].pk)
    assert [d.client.pk for d in found] == [c.pk for c in reversed(sharing[:5])]


def test_duplicate_check_is_two_queries(base, ann, django_assert_num_queries):
    with django_assert_num_queries(2):
        find_duplicates(
            user=ann,
            email="x@example.com",
            phone="+79161234567",
            tax_id="7707083893",
            national_id="1",
        )


# --- Advanced search -------------------------------------------------------------------------


@pytest.fixture
def custom_fields(admin_user):
    custom_field_save(field=None, by=admin_user, code="code_1c", label="1C code", position=1)
    custom_field_save(
        field=None, by=admin_user, code="employees", label="Employees", type="number", position=2
    )
    custom_field_save(
        field=None, by=admin_user, code="founded", label="Founded", type="date", position=3
    )
    custom_field_save(
        field=None,
        by=admin_user,
        code="segment",
        label="Segment",
        type="choice",
        choices=["Gold", "Silver"],
        position=4,
    )
    custom_field_save(
        field=None, by=admin_user, code="vip", label="VIP", type="boolean", position=5
    )
    custom_field_save(field=None, by=admin_user, code="pin", label="PIN", type="secret")
    custom_field_save(field=None, by=admin_user, code="old", label="Old", active=False)


def test_search_fields_lists_client_fields_then_active_custom_ones_without_secrets(
    custom_fields,
):
    fields = search_fields()
    assert list(fields)[:9] == [
        "number",
        "name",
        "company_name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "tax_id",
        "national_id",
    ]
    assert list(fields)[-5:] == [
        "custom.code_1c",
        "custom.employees",
        "custom.founded",
        "custom.segment",
        "custom.vip",
    ]
    assert fields["status"] == SearchField(
        "Status", "choice", (("active", "Active"), ("inactive", "Inactive"), ("closed", "Closed"))
    )
    assert fields["created_at"] == SearchField("Created", "date")
    assert fields["custom.segment"] == SearchField(
        "Segment", "choice", (("Gold", "Gold"), ("Silver", "Silver"))
    )
    assert fields["custom.employees"].type == "number"
    assert "custom.pin" not in fields and "custom.old" not in fields


@pytest.fixture
def companies(custom_fields, ann, bob):
    """Three companies with custom values, created on 1, 2 and 3 March 2026."""
    day = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    return [
        make_client(
            ann,
            number="CO-1",
            kind="company",
            name="Alpha SARL",
            city="Lyon",
            country="FR",
            created_at=day,
            status_since=dt.date(2026, 1, 1),
            custom={"code_1c": "A-1", "employees": "12", "founded": "1999-05-01", "vip": True},
        ),
        make_client(
            ann,
            number="CO-2",
            kind="company",
            name="Beta GmbH",
            city="Paris",
            country="DE",
            status="inactive",
            tags="wholesale, north",
            created_at=day + dt.timedelta(days=1),
            custom={"employees": "250", "segment": "Gold", "vip": False},
        ),
        make_client(
            bob,
            number="CO-3",
            kind="individual",
            name="Gamma Jones",
            city="Paris",
            country="GB",
            created_at=day + dt.timedelta(days=2),
            custom={"code_1c": "B-7", "employees": "n/a", "founded": "2010-01-31"},
        ),
    ]


def search_numbers(user, *criteria, match="all") -> list[str]:
    return numbers(advanced_search(user, [Criterion(*c) for c in criteria], match=match))


def test_criteria_combine_with_and_or(companies, admin_user):
    assert search_numbers(admin_user, ("city", "equals", "paris")) == ["CO-3", "CO-2"]
    assert search_numbers(admin_user, ("city", "equals", "Paris"), ("kind", "is", "company")) == [
        "CO-2"
    ]
    assert search_numbers(
        admin_user, ("city", "equals", "Lyon"), ("status", "is", "inactive"), match="any"
    ) == ["CO-2", "CO-1"]
    assert search_numbers(admin_user) == ["CO-3", "CO-2", "CO-1"]


def test_like_wildcards_contains_and_emptiness(companies, admin_user):
    assert search_numbers(admin_user, ("name", "like", "%a SARL")) == ["CO-1"]
    assert search_numbers(admin_user, ("name", "like", "beta%")) == ["CO-2"]
    assert search_numbers(admin_user, ("name", "like", "beta")) == []
    assert search_numbers(admin_user, ("name", "like", "G_mma%")) == []
    assert search_numbers(admin_user, ("name", "contains", "MM")) == ["CO-3"]
    assert search_numbers(admin_user, ("tags", "contains", "wholesale")) == ["CO-2"]
    assert search_numbers(admin_user, ("tags", "empty")) == ["CO-3", "CO-1"]
    assert search_numbers(admin_user, ("status_since", "not_empty")) == ["CO-1"]
    assert search_numbers(admin_user, ("country", "is", "de")) == ["CO-2"]


def test_date_ranges_are_whole_company_days(companies, admin_user):
    assert search_numbers(admin_user, ("created_at", "between", "2026-03-02", "")) == [
        "CO-3",
        "CO-2",
    ]
    assert search_numbers(admin_user, ("created_at", "between", "", "2026-03-02")) == [
        "CO-2",
        "CO-1",
    ]
    assert search_numbers(admin_user, ("created_at", "equals", "2026-03-03")) == ["CO-3"]
    assert search_numbers(admin_user, ("status_since", "between", "2025-12-31", "2026-01-01")) == [
        "CO-1"
    ]


def test_custom_fields_by_type(companies, admin_user):
    assert search_numbers(admin_user, ("custom.code_1c", "contains", "b-")) == ["CO-3"]
    assert search_numbers(admin_user, ("custom.code_1c", "like", "%-1")) == ["CO-1"]
    assert search_numbers(admin_user, ("custom.code_1c", "empty")) == ["CO-2"]
    # Numbers compare as numbers ("12" < "250"), and a stray text is no number.
    assert search_numbers(admin_user, ("custom.employees", "between", "10", "100")) == ["CO-1"]
    assert search_numbers(admin_user, ("custom.employees", "between", "13", "")) == ["CO-2"]
    assert search_numbers(admin_user, ("custom.employees", "equals", "12.0")) == ["CO-1"]
    assert search_numbers(admin_user, ("custom.founded", "between", "2000-01-01", "")) == ["CO-3"]
    assert search_numbers(admin_user, ("custom.segment", "is", "gold")) == ["CO-2"]
    assert search_numbers(admin_user, ("custom.vip", "is", "yes")) == ["CO-1"]
    assert search_numbers(admin_user, ("custom.vip", "is", "no")) == ["CO-2"]
    assert search_numbers(admin_user, ("custom.vip", "empty")) == ["CO-3"]


def test_advanced_search_keeps_to_the_users_sight_and_to_live_clients(companies, ann, bob):
    assert search_numbers(ann, ("city", "equals", "Paris")) == ["CO-2"]
    assert search_numbers(bob, ("city", "equals", "Paris")) == ["CO-3"]
    Client.everything.filter(number="CO-2").update(deleted_at=clock.now())
    assert search_numbers(ann, ("city", "equals", "Paris")) == []


def test_bad_criteria_are_refused_at_their_index(custom_fields, admin_user):
    criteria = [
        Criterion("name", "contains", "ok"),
        Criterion("shoe_size", "equals", "42"),
        Criterion("created_at", "between", "2026-02-30", ""),
        Criterion("name", "between", "a", "b"),
        Criterion("custom.pin", "equals", "1234"),
        Criterion("status", "is", "asleep"),
        Criterion("created_at", "between", "2026-03-02", "2026-03-01"),
        Criterion("email", "contains", " "),
        Criterion("custom.employees", "between", "ten", ""),
        Criterion("custom.vip", "is", "maybe"),
        Criterion("status_since", "between", "", ""),
    ]
    with pytest.raises(ServiceError) as refused:
        advanced_search(admin_user, criteria)
    assert refused.value.message_dict == {
        "criteria.1": ["There is no field shoe_size to search."],
        "criteria.2": ["Enter a date as YYYY-MM-DD."],
        "criteria.3": ["This field cannot be searched with between."],
        "criteria.4": ["There is no field custom.pin to search."],
        "criteria.5": ["Choose one of the offered values."],
        "criteria.6": ["The start is after the end."],
        "criteria.7": ["Enter a value."],
        "criteria.8": ["Enter a number, e.g. 1250 or 12.5."],
        "criteria.9": ["Answer yes or no."],
        "criteria.10": ["Enter a start, an end, or both."],
    }
    with pytest.raises(ServiceError) as refused:
        advanced_search(admin_user, [], match="some")
    assert refused.value.message_dict == {"match": ['Match "all" or "any" of the criteria.']}


def test_phone_contains_matches_by_digits(base, admin_user):
    assert search_numbers(admin_user, ("phone", "contains", "8 916 123")) == ["CL-00101"]
    assert search_numbers(admin_user, ("phone", "contains", "+7916")) == ["CL-00104", "CL-00101"]


# --- Keyset pages ----------------------------------------------------------------------------


def test_keyset_pages_walk_the_list_without_counting(base, admin_user, django_assert_num_queries):
    everyone = client_search_queryset(admin_user, "")
    with django_assert_num_queries(1):
        first = keyset_page(everyone, after=None, size=2)
    assert numbers(first.items) == ["CL-00105", "CL-00104"]
    assert first.next_after == base["ivanova"].pk
    second = keyset_page(everyone, after=first.next_after, size=2)
    assert numbers(second.items) == ["CL-00103", "CL-00102"]
    last = keyset_page(everyone, after=second.next_after, size=2)
    assert last == KeysetPage(items=[base["petrov"]], next_after=None)
    exact = keyset_page(everyone, after=second.next_after, size=1)
    assert exact == KeysetPage(items=[base["petrov"]], next_after=None)
    assert keyset_page(everyone, after=base["petrov"].pk, size=2) == KeysetPage([], None)


def test_keyset_pages_of_a_search(base, admin_user):
    found = client_search_queryset(admin_user, "petrov")
    page = keyset_page(found, after=None, size=1)
    assert (numbers(page.items), page.next_after) == (["CL-00105"], base["petrovsky"].pk)
    page = keyset_page(found, after=page.next_after, size=1)
    assert (numbers(page.items), page.next_after) == (["CL-00101"], None)


def test_the_client_with_the_number_typed_comes_first(base, admin_user, ann):
    make_client(ann, number="4711", name="Oldest")
    make_client(ann, number="CL-00107", name="Newer", phone="+33647110000")
    assert numbers(quick_search(admin_user, "4711")) == ["4711", "CL-00107"]
    # Beyond the newest matches, the number is looked up on its own.
    assert numbers(quick_search(admin_user, "4711", limit=1)) == ["4711"]
    assert numbers(quick_search(admin_user, "CL-00101")) == ["CL-00101"]


def test_a_short_text_checks_only_the_newest_names_in_quick_search(base, ann, monkeypatch):
    monkeypatch.setattr(search, "SHORT_CANDIDATES", 1)
    # The newest "Pe…" is Bob's: Ann is shown none, though the full list has hers.
    assert numbers(quick_search(ann, "Pe")) == []
    assert numbers(client_search_queryset(ann, "Pe")) == ["CL-00101"]


@pytest.mark.parametrize("window", [1, 2, 4, 1000])
def test_results_do_not_depend_on_the_window_walked_first(
    base, admin_user, ann, monkeypatch, window
):
    monkeypatch.setattr(search, "WINDOW", window)
    monkeypatch.setattr(search, "SQLITE_WINDOW", window)
    page = search_page(admin_user, "example", size=2)
    assert (numbers(page.items), page.next_after) == (["CL-00105", "CL-00104"], base["ivanova"].pk)
    page = search_page(admin_user, "example", after=page.next_after, size=2)
    assert (numbers(page.items), page.next_after) == (["CL-00103", "CL-00102"], base["romashka"].pk)
    page = search_page(admin_user, "example", after=page.next_after, size=2)
    assert (numbers(page.items), page.next_after) == (["CL-00101"], None)
    assert numbers(search_page(ann, "example").items) == ["CL-00104", "CL-00102", "CL-00101"]
    assert numbers(quick_search(admin_user, "petrov")) == ["CL-00105", "CL-00101"]
    assert numbers(quick_search(admin_user, "example", limit=4)) == [
        "CL-00105",
        "CL-00104",
        "CL-00103",
        "CL-00102",
    ]
    found = client_search_queryset(admin_user, "example")
    page = keyset_page(found, after=base["ivanova"].pk, size=2)
    assert (numbers(page.items), page.next_after) == (["CL-00103", "CL-00102"], base["romashka"].pk)
    page = keyset_page(found, after=page.next_after, size=2)
    assert (numbers(page.items), page.next_after) == (["CL-00101"], None)


@pytest.mark.parametrize(("window", "walk_on"), [(1, 1), (1, 2), (1, 5000), (2, 1), (2, 3)])
def test_quick_search_finds_the_same_however_far_it_walks_on(
    base, admin_user, ann, bob, monkeypatch, window, walk_on
):
    make_client(bob, number="CL-00106", name="Newest Stranger")
    monkeypatch.setattr(search, "WINDOW", window)
    monkeypatch.setattr(search, "SQLITE_WINDOW", window)
    monkeypatch.setattr(search, "WALK_ON_ROWS", walk_on)
    assert numbers(quick_search(admin_user, "example", limit=4)) == [
        "CL-00106",
        "CL-00105",
        "CL-00104",
        "CL-00103",
    ]
    assert numbers(quick_search(ann, "example")) == ["CL-00104", "CL-00102", "CL-00101"]
    assert numbers(quick_search(ann, "example", limit=2)) == ["CL-00104", "CL-00102"]
    assert numbers(quick_search(bob, "example")) == ["CL-00106", "CL-00105", "CL-00103"]
    assert numbers(quick_search(bob, "petrov")) == ["CL-00105"]
    assert numbers(quick_search(ann, "dupont")) == []
    # Of a common fragment's older matches, only about the newest one is looked at.
    monkeypatch.setattr(search, "QUICK_CANDIDATES", 1)
    assert (
        numbers(quick_search(admin_user, "example", limit=3))
        == [
            "CL-00106",
            "CL-00105",
            "CL-00104",
        ][: window + 1]
    )


def test_quick_search_checks_only_about_the_newest_older_matches(base, ann, monkeypatch):
    monkeypatch.setattr(search, "SQLITE_WINDOW", 1)
    monkeypatch.setattr(search, "WINDOW", 1)
    monkeypatch.setattr(search, "QUICK_CANDIDATES", 1)
    # The newest id is Bob's; of the older matches only about the newest one is looked at.
    assert numbers(quick_search(ann, "example")) == ["CL-00104"]
    assert numbers(search_page(ann, "example").items) == ["CL-00104", "CL-00102", "CL-00101"]
    # A rare fragment is found however old.
    assert numbers(quick_search(ann, "sergeevich")) == ["CL-00101"]


def test_a_load_with_the_index_suspended_is_indexed_after(admin_user, ann, on_postgres):
    if on_postgres:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with search.search_index_suspended():
        make_client(ann, number="CL-00201", name="Bulk Loaded")
        make_client(ann, number="CL-00202", name="Bulk Loaded Too")
    assert search.ensure_search_index() is False
    assert numbers(quick_search(admin_user, "bulk load")) == ["CL-00202", "CL-00201"]


def _triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_clients_inserted_in_one_statement_block_are_indexed_at_its_end(admin_user, ann):
    # given a client already indexed
    make_client(ann, number="CL-00301", name="Kept Before")
    # when two are inserted in a block that indexes in one statement
    with transaction.atomic():
        with search.search_index_in_one_statement():
            make_client(ann, number="CL-00302", name="Bulk Statement")
            make_client(ann, number="CL-00303", name="Bulk Statement Too")
        # then they are found within the same transaction, and the insert trigger is back
        assert numbers(quick_search(admin_user, "bulk statement")) == ["CL-00303", "CL-00302"]
    if connection.vendor == "sqlite":
        assert set(search.SQLITE_TRIGGERS) <= _triggers()
    assert numbers(quick_search(admin_user, "kept before")) == ["CL-00301"]
    # and a client inserted afterwards is indexed by the trigger as before
    make_client(ann, number="CL-00304", name="Bulk Statement After")
    assert numbers(quick_search(admin_user, "statement after")) == ["CL-00304"]
    # and the index holds exactly one entry per client (nothing indexed twice)
    assert search.ensure_search_index() is False
    assert numbers(quick_search(admin_user, "bulk")) == ["CL-00304", "CL-00303", "CL-00302"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_one_statement_block_leaves_the_index_and_its_trigger_as_they_were(
    admin_user, ann
):
    with (
        pytest.raises(ZeroDivisionError),
        transaction.atomic(),
        search.search_index_in_one_statement(),
    ):
        make_client(ann, number="CL-00311", name="Rolled Back")
        1 / 0  # noqa: B018
    assert Client.objects.filter(number="CL-00311").exists() is False
    assert numbers(quick_search(admin_user, "rolled back")) == []
    if connection.vendor == "sqlite":
        assert set(search.SQLITE_TRIGGERS) <= _triggers()
    make_client(ann, number="CL-00312", name="Rolled Back Not")
    assert numbers(quick_search(admin_user, "rolled back")) == ["CL-00312"]


@pytest.mark.django_db(transaction=True)
def test_the_one_statement_block_needs_a_transaction(on_postgres):
    if on_postgres:
        pytest.skip("PostgreSQL keeps its index by the insert itself")
    with (
        pytest.raises(RuntimeError, match="inside the transaction"),
        search.search_index_in_one_statement(),
    ):
        pass


def test_a_search_page_within_some_clients(base, admin_user, bob):
    mine = Client.objects.filter(owner=bob).select_related("owner")
    page = search_page(admin_user, "example", within=mine, size=1)
    assert (numbers(page.items), page.next_after) == (["CL-00105"], base["petrovsky"].pk)
    assert page.items[0].owner == bob
    page = search_page(admin_user, "example", within=mine, after=page.next_after, size=1)
    assert (numbers(page.items), page.next_after) == (["CL-00103"], None)
    assert numbers(search_page(bob, "petrov", within=Client.objects.all()).items) == ["CL-00105"]
