"""The ledger's hash chain: postings verify, and any change made behind its back is named."""

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from clientbase.billing.ledger import (
    GENESIS,
    Posting,
    entry_hash,
    ledger_post,
    ledger_verify,
)
from clientbase.billing.models import LedgerEntry, LedgerHead
from clientbase.core.models import AppendOnlyError

from .conftest import rub


@pytest.fixture
def chain(rub_client, clerk, seed_day):
    """Five entries on one client's credit account: -100, -200, ..., -500 roubles."""
    for n in range(1, 6):
        with transaction.atomic():
            ledger_post(
                [Posting(rub_client.pk, "credit", "adjustment", rub(f"-{n}00.00"), None, f"A{n}")],
                by=clerk,
                owner_of=rub_client,
            )
    return rub_client


def _sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _verify_command() -> str:
    with pytest.raises(CommandError) as failed:
        call_command("ledger", "verify")
    return str(failed.value)


def test_postings_chain_from_genesis_and_verify(chain, clerk):
    entries = list(LedgerEntry.objects.order_by("seq"))
    assert [(e.seq, e.amount_minor, e.reference) for e in entries] == [
        (1, -10000, "A1"), (2, -20000, "A2"), (3, -30000, "A3"), (4, -40000, "A4"),
        (5, -50000, "A5"),
    ]  # fmt: skip
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    first = entries[0]
    assert first.hash == entry_hash(
        seq=1, prev_hash=GENESIS, client_id=chain.pk, account="credit", kind="adjustment",
        invoice_id=None, amount_minor=-10000, currency="RUB", reference="A1",
        posted_at=first.posted_at,
    )  # fmt: skip
    assert (first.actor, first.owner_id, first.org_unit_id) == (
        clerk, chain.owner_id, chain.org_unit_id
    )  # fmt: skip
    head = LedgerHead.objects.get()
    assert (head.last_seq, head.last_hash) == (5, entries[-1].hash)
    result = ledger_verify()
    assert (result.ok, result.checked, result.problem, result.seq) == (True, 5, "", None)
    assert ledger_verify(chunk_size=2).checked == 5


def test_the_command_prints_the_entries_checked(chain, capsys):
    call_command("ledger", "verify")
    assert capsys.readouterr().out == "Ledger intact: 5 entries checked\n"


def test_an_empty_ledger_verifies(db, capsys):
    assert ledger_verify().checked == 0
    call_command("ledger", "verify")
    assert capsys.readouterr().out == "Ledger intact: 0 entries checked\n"


def test_zero_postings_write_nothing(chain, clerk):
    with transaction.atomic():
        assert (
            ledger_post(
                [Posting(chain.pk, "credit", "adjustment", rub("0.00"))], by=clerk, owner_of=chain
            )
            == []
        )
    assert LedgerEntry.objects.count() == 5


def test_an_altered_amount_is_named(chain):
    _sql("UPDATE billing_ledgerentry SET amount_minor = -1 WHERE seq = 3")
    result = ledger_verify()
    assert (result.ok, result.checked, result.problem, result.seq) == (
        False, 2, "entry 3 was altered", 3
    )  # fmt: skip
    assert _verify_command() == "Ledger broken after 2 good entries: entry 3 was altered"


def test_an_altered_reference_is_named(chain):
    _sql("UPDATE billing_ledgerentry SET reference = 'X' WHERE seq = 5")
    assert (ledger_verify().problem, ledger_verify().seq) == ("entry 5 was altered", 5)


def test_a_removed_middle_entry_is_named(chain):
    _sql("DELETE FROM billing_ledgerentry WHERE seq = 2")
    result = ledger_verify()
    assert (result.ok, result.checked, result.problem, result.seq) == (
        False, 1, "entries 2–2 were removed", 3
    )  # fmt: skip
    assert _verify_command() == "Ledger broken after 1 good entries: entries 2–2 were removed"


def test_a_removed_last_entry_is_named(chain):
    _sql("DELETE FROM billing_ledgerentry WHERE seq = 5")
    result = ledger_verify()
    assert (result.ok, result.checked, result.problem) == (
        False, 4, "entries after 4 were removed (head is 5)"
    )  # fmt: skip
    assert "entries after 4 were removed" in _verify_command()


def _forge(seq: int, prev_hash: str, client_id: int, amount: int, posted_at) -> None:
    digest = entry_hash(
        seq=seq, prev_hash=prev_hash, client_id=client_id, account="credit", kind="adjustment",
        invoice_id=None, amount_minor=amount, currency="RUB", reference="FORGED",
        posted_at=posted_at,
    )  # fmt: skip
    _sql(
        "INSERT INTO billing_ledgerentry (seq, client_id, account, kind, invoice_id, "
        "amount_minor, currency, reference, posted_at, prev_hash, hash) "
        "VALUES (%s, %s, 'credit', 'adjustment', NULL, %s, 'RUB', 'FORGED', %s, %s, %s)",
        (
            seq,
            client_id,
            amount,
            connection.ops.adapt_datetimefield_value(posted_at),
            prev_hash,
            digest,
        ),
    )


def test_a_forged_entry_with_a_correct_hash_after_the_head_is_named(chain):
    last = LedgerEntry.objects.order_by("seq").last()
    _forge(6, last.hash, chain.pk, -999900, last.posted_at)
    result = ledger_verify()
    assert (result.ok, result.checked, result.problem, result.seq) == (
        False, 6, "entry 6 was inserted after the head", 6
    )  # fmt: skip
    assert "entry 6 was inserted after the head" in _verify_command()


def test_a_forged_entry_in_the_middle_with_later_seqs_bumped_is_named(chain):
    # the forger shifts entries 3..5 up by one and slips a well-hashed row in at 3
    for seq in (5, 4, 3):
        _sql("UPDATE billing_ledgerentry SET seq = seq + 1 WHERE seq = %s", (seq,))
    second = LedgerEntry.objects.get(seq=2)
    _forge(3, second.hash, chain.pk, -999900, second.posted_at)
    result = ledger_verify()
    # the forged row itself hashes right, but the next one does not link to it
    assert (result.ok, result.checked, result.seq) == (False, 3, 4)
    assert result.problem == "entry 4 was inserted or its chain link changed"


def test_a_forged_entry_with_a_wrong_link_is_named(chain):
    last = LedgerEntry.objects.order_by("seq").last()
    _forge(6, GENESIS, chain.pk, -100, last.posted_at)
    result = ledger_verify()
    assert (result.problem, result.seq) == ("entry 6 was inserted or its chain link changed", 6)


def test_a_rewound_head_is_noticed(chain):
    _sql("UPDATE billing_ledgerhead SET last_hash = %s", (GENESIS,))
    result = ledger_verify()
    assert (result.ok, result.checked) == (False, 5)
    assert result.problem == "entries after 5 were removed (head is 5)"


def test_entries_refuse_updates_and_deletes_through_the_orm(chain):
    entry = LedgerEntry.objects.get(seq=1)
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(seq=1).update(amount_minor=0)
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(seq=1).delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.bulk_update([entry], ["amount_minor"])
    entry.amount_minor = 0
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    assert list(LedgerEntry.objects.values_list("amount_minor", flat=True)) == [
        -10000,
        -20000,
        -30000,
        -40000,
        -50000,
    ]
    assert ledger_verify().ok
