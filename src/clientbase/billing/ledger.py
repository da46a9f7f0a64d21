"""The ledger: every money movement as a hash-chained entry, and the balances it sums to."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum

from clientbase.billing.models import Invoice, LedgerEntry, LedgerHead
from clientbase.core import clock
from clientbase.core.money import Money

GENESIS = "0" * 64


@dataclass(frozen=True)
class Posting:
    """A movement to write: which account of which client, why, and how much."""

    client_id: int
    account: str
    kind: str
    amount: Money
    invoice_id: int | None = None
    reference: str = ""


def entry_hash(
    *,
    seq: int,
    prev_hash: str,
    client_id: int,
    account: str,
    kind: str,
    invoice_id: int | None,
    amount_minor: int,
    currency: str,
    reference: str,
    posted_at,
) -> str:
    """SHA-256 over an entry's legal fields and the hash before it."""
    text = "|".join(
        str(part)
        for part in (
            seq,
            prev_hash,
            client_id,
            account,
            kind,
            invoice_id or "",
            amount_minor,
            currency,
            reference,
            posted_at.isoformat(timespec="microseconds"),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _locked_head() -> LedgerHead:
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        LedgerHead.objects.get_or_create(pk=1)
        head = LedgerHead.objects.select_for_update().get(pk=1)
    return head


def ledger_post(postings: list[Posting], *, by, owner_of, owners=None) -> list[LedgerEntry]:
    """Append entries at the end of the chain; call last in the action's transaction.

    The head row is the chain's single lock, taken after every other lock the action
    holds, so postings are ordered and two actions never wait on each other in a circle.
    `owner_of` is the client whose owner and unit the entries carry for visibility;
    a bulk writer passes `owners`, each posting's client by id, instead.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger entries are posted inside the transaction of their action")
    postings = [p for p in postings if p.amount.minor]
    if not postings:
        return []
    head = _locked_head()
    seq, prev = head.last_seq, head.last_hash
    # In UTC, as both databases give it back, so the hash recomputes from the stored row.
    posted_at = clock.now().astimezone(dt.UTC)
    entries = []
    for p in postings:
        seq += 1
        digest = entry_hash(
            seq=seq,
            prev_hash=prev,
            client_id=p.client_id,
            account=p.account,
            kind=p.kind,
            invoice_id=p.invoice_id,
            amount_minor=p.amount.minor,
            currency=p.amount.currency,
            reference=p.reference,
            posted_at=posted_at,
        )
        entries.append(
            LedgerEntry(
                seq=seq,
                client_id=p.client_id,
                account=p.account,
                kind=p.kind,
                invoice_id=p.invoice_id,
                amount_minor=p.amount.minor,
                currency=p.amount.currency,
                reference=p.reference,
                posted_at=posted_at,
                prev_hash=prev,
                hash=digest,
                actor=by if getattr(by, "pk", None) else None,
                owner_id=(owners[p.client_id] if owners else owner_of).owner_id,
                org_unit_id=(owners[p.client_id] if owners else owner_of).org_unit_id,
            )
        )
        prev = digest
    LedgerEntry.objects.bulk_create(entries)
    head.last_seq, head.last_hash = seq, prev
    head.save(update_fields=["last_seq", "last_hash"])
    return entries


@dataclass(frozen=True)
class VerifyResult:
    """What `ledger verify` found: entries checked and the first break, if any."""

    checked: int
    problem: str = ""
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def ledger_verify(chunk_size: int = 20_000) -> VerifyResult:
    """Walk the chain from the start and name the first entry altered, inserted or removed."""
    expected_seq, prev = 1, GENESIS
    checked = 0
    fields = (
        "seq", "prev_hash", "hash", "client_id", "account", "kind", "invoice_id",
        "amount_minor", "currency", "reference", "posted_at",
    )  # fmt: skip
    rows = LedgerEntry.objects.order_by("seq").values_list(*fields).iterator(chunk_size)
    for seq, prev_hash, digest, client_id, account, kind, invoice_id, amount, cur, ref, at in rows:
        if seq > expected_seq:
            return VerifyResult(checked, f"entries {expected_seq}–{seq - 1} were removed", seq)
        if seq < expected_seq or prev_hash != prev:
            return VerifyResult(checked, f"entry {seq} was inserted or its chain link changed", seq)
        recomputed = entry_hash(
            seq=seq,
            prev_hash=prev_hash,
            client_id=client_id,
            account=account,
            kind=kind,
            invoice_id=invoice_id,
            amount_minor=amount,
            currency=cur,
            reference=ref,
            posted_at=at,
        )
        if recomputed != digest:
            return VerifyResult(checked, f"entry {seq} was altered", seq)
        prev, expected_seq, checked = digest, seq + 1, checked + 1
    head = LedgerHead.objects.filter(pk=1).first()
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    if last_seq < expected_seq - 1:
        # Rows beyond the head were never posted through ledger_post: they were forged.
        return VerifyResult(
            checked, f"entry {last_seq + 1} was inserted after the head", last_seq + 1
        )
    if last_seq != expected_seq - 1 or last_hash != prev:
        return VerifyResult(
            checked, f"entries after {expected_seq - 1} were removed (head is {last_seq})", None
        )
    return VerifyResult(checked)


def invoice_ledger_balance(invoice: Invoice) -> int:
    """The sum of an invoice's receivable entries, in minor units."""
    total = LedgerEntry.objects.filter(
        invoice=invoice, account=LedgerEntry.Account.RECEIVABLE
    ).aggregate(s=Sum("amount_minor"))["s"]
    return total or 0


def client_sums(client_ids: list[int]) -> dict[str, dict[str, int]]:
    """Per currency: what invoices owe (receivable) and the credit held, from the ledger."""
    sums: dict[str, dict[str, int]] = {}
    rows = (
        LedgerEntry.objects.filter(client_id__in=client_ids)
        .values("currency", "account")
        .annotate(total=Sum("amount_minor"))
    )
    for row in rows:
        per = sums.setdefault(row["currency"], {"receivable": 0, "credit": 0})
        # Credit entries are negative while credit is held; shown as a positive credit.
        per[row["account"]] = row["total"] if row["account"] == "receivable" else -row["total"]
    return sums


def credit_held(client_ids: list[int], currency: str) -> Money:
    """The client's credit balance in a currency."""
    total = LedgerEntry.objects.filter(
        client_id__in=client_ids, account=LedgerEntry.Account.CREDIT, currency=currency
    ).aggregate(s=Sum("amount_minor"))["s"]
    return Money(-(total or 0), currency)
