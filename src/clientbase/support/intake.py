"""Mail to ticket (SUP-2): received messages become tickets or replies, whichever door they
came in by.

`mail_ingest_batch` files many messages in one transaction: the IMAP poller and the inbound
webhook hand theirs over that way, and `clientbase mail ingest` (a message piped in by the
mail server) calls `mail_ingest`, which is a batch of one. Each message runs in a savepoint
of its own, so one that cannot be filed loses none of the others, and the lookups (our
addresses, departments, threads, senders' clients) are made once a batch. Filing is
idempotent: the same message (by Message-ID, or by a digest of its stable headers when it
has none) never makes two tickets or two replies, however often it is delivered, in one
batch or in several, or a poll is interrupted and rerun.
"""

import datetime as dt
import logging
import multiprocessing
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count

from clientbase.clients.models import Contact
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.support import services
from clientbase.support.mailparse import ParsedMail, human_size, parse_mail, parse_many
from clientbase.support.models import Department, InboundMail, Ticket, TicketMessage

log = logging.getLogger(__name__)
TICKET_TAG = re.compile(r"\[#(\d{4,12})\]")
BATCH = 100  # messages a transaction: past this a batch gains little and locks longer
UNKNOWN_SENDER = "unknown@sender.invalid"
NEWER = 2**62
PARALLEL_FROM = 20  # mails in a batch worth handing half of to a second process
PARSE_TIMEOUT = 300


@dataclass(frozen=True)
class IngestResult:
    """What became of a received mail."""

    outcome: str  # "ticket", "reply", "ignored", "duplicate", or "failed" (batch only)
    inbound: InboundMail | None
    ticket: Ticket | None
    message: TicketMessage | None
    reason: str = ""
    error: Exception | None = None  # why a mail of a batch failed; it was rolled back alone


def mail_ingest(
    raw: bytes, *, via: str = "pipe", department: Department | None = None
) -> IngestResult:
    """Turn a received message into a ticket or a reply on one, exactly once."""
    [result] = mail_ingest_batch([raw], via=via, department=department)
    if result.error is not None:
        raise result.error
    return result


def mail_ingest_batch(
    raws: Sequence[bytes],
    *,
    via: str = "pipe",
    department: Department | None = None,
    parallel: bool = False,
) -> list[IngestResult]:
    """File received messages in one transaction per BATCH, each exactly once, in order.

    A batch is filed whole first; if a message raises, it is filed again with a savepoint a
    message, where the one that raises is rolled back to its savepoint and comes back as
    outcome "failed" with the error; the others are kept. Acknowledgements are queued
    once the transaction commits. `parallel` reads half of a large batch in a second
    process (for a long-running poller: the process stays for the next batches).
    """
    results: list[IngestResult] = []
    for start in range(0, len(raws), BATCH):
        # Read before the transaction opens: parsing holds no lock.
        mails = _read_all(raws[start : start + BATCH], parallel)
        if len(mails) > 1:
            try:
                # First without a savepoint a mail: on PostgreSQL each one is a
                # subtransaction, and past 64 of them in one transaction every snapshot
                # gets dearer. Nearly every batch files whole; one that does not is rolled
                # back and filed again below, each mail in its savepoint.
                with transaction.atomic():
                    filed = _Intake(mails, via=via, department=department, careful=False).run()
                results.extend(filed)
                continue
            except Exception:
                pass
        try:
            with transaction.atomic():
                results.extend(_Intake(mails, via=via, department=department).run())
        except Exception as error:
            if len(mails) == 1:
                results.append(IngestResult("failed", None, None, None, str(error)[:300], error))
                continue
            # The bulk writes at the end failed, so the whole batch was rolled back: each
            # mail again in a transaction of its own, so that one bad mail loses no other.
            log.exception("filing a batch of %d mails failed; filing them one by one", len(mails))
            for mail in mails:
                try:
                    with transaction.atomic():
                        results.extend(_Intake([mail], via=via, department=department).run())
                except Exception as alone:
                    results.append(
                        IngestResult("failed", None, None, None, str(alone)[:300], alone)
                    )
    return results


@dataclass
class _Mail:
    """A received message, read, and the bytes of it that are kept."""

    raw: bytes
    kept: bytes
    parsed: ParsedMail


def _read_all(raws: Sequence[bytes], parallel: bool) -> list[_Mail]:
    if not parallel or len(raws) < PARALLEL_FROM:
        return [_read(raw) for raw in raws]
    half = len(raws) // 2
    try:
        future = _pool().submit(parse_many, list(raws[half:]))
    except Exception:  # no process to be had: read them all here
        return [_read(raw) for raw in raws]
    mine = [_read(raw) for raw in raws[:half]]
    try:
        theirs = future.result(timeout=PARSE_TIMEOUT)
    except Exception:
        log.warning("reading mail in a second process failed; reading it here", exc_info=True)
        theirs = [parse_mail(raw) for raw in raws[half:]]
    return mine + [_read(raw, parsed) for raw, parsed in zip(raws[half:], theirs, strict=True)]


_POOL: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _POOL  # one helper process for the life of this one
    if _POOL is None:
        # A fresh interpreter, not a fork: a forked copy would share the database
        # connection. It imports only the mail reader (no models, no Django set-up).
        _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _POOL


def _read(raw: bytes, mail: ParsedMail | None = None) -> _Mail:
    limit = settings.SUPPORT_MAIL_MAX_BYTES
    mail = mail or parse_mail(raw)
    kept = raw
    if len(raw) > limit:
        kept = raw[:limit]
        mail.problems.append(f"the message is larger than {human_size(limit)}: its start is kept")
    return _Mail(raw, kept, mail)


def _thread_ids(mail: ParsedMail) -> list[str]:
    return [i for i in [mail.in_reply_to, *reversed(mail.references)] if i][:50]


def _is_address(value: str) -> bool:
    try:
        # An empty value cleans to no address at all, which is not an address either.
        return bool(services.clean_emails([value], field="email"))
    except ServiceError:
        return False


@dataclass
class _Intake:
    """One batch: what it looked up once, and what its earlier mails added to that."""

    mails: list[_Mail]
    via: str
    department: Department | None
    # Each mail in a savepoint of its own, so that a failure undoes it alone; without, a
    # failure is raised for the whole batch to be rolled back.
    careful: bool = True
    batch: services.MailBatch = field(default_factory=services.MailBatch)
    # Our Message-IDs and the customers' that we keep: message id -> (row id, ticket id).
    threads: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Tickets named by a subject tag, to check the sender belongs to them.
    by_number: dict[str, Ticket] = field(default_factory=dict)
    contacts: dict[int, set[str]] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)  # automatic answers, last hour
    seen: dict[str, IngestResult] = field(default_factory=dict)  # keys filed in this batch
    opened: list[InboundMail] = field(default_factory=list)  # to link to their new ticket
    filed: int = 0  # messages of the batch so far: they have no id before the bulk insert

    def run(self) -> list[IngestResult]:
        self._look_up()
        results = [self._one(mail) for mail in self.mails]
        # Each new ticket's mail points at it: one statement for the batch.
        InboundMail.objects.bulk_update(self.opened, ["ticket"], batch_size=500)
        self.batch.finish()
        return results

    def _look_up(self) -> None:
        """Everything the batch's mails may ask of the database, asked once."""
        mails = [m.parsed for m in self.mails]
        self.ours = {parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower()}
        self.departments = list(Department.objects.all())
        self.ours.update(d.email.lower() for d in self.departments)
        self.known = {
            i.key: i
            for i in InboundMail.objects.defer("raw")
            .select_related("ticket")
            .filter(key__in={m.key[:998] for m in mails})
        }
        ids = {i for m in mails for i in _thread_ids(m)}
        for message_id, pk, ticket_id in TicketMessage.objects.filter(
            message_id__in=ids
        ).values_list("message_id", "id", "ticket_id"):
            if pk > self.threads.get(message_id, (0, 0))[0]:
                self.threads[message_id] = (pk, ticket_id)
        numbers = {n for m in mails for n in TICKET_TAG.findall(m.subject)}
        if numbers:
            for ticket in Ticket.objects.select_related("client").filter(number__in=numbers):
                self.by_number[ticket.number] = ticket
            clients = {t.client_id for t in self.by_number.values() if t.client_id}
            self.contacts = {pk: set() for pk in clients}
            for client_id, email in Contact._default_manager.filter(
                client_id__in=clients
            ).values_list("client_id", "email"):
                self.contacts[client_id].add(email.lower())
        senders = {m.sender_email for m in mails if m.sender_email}
        since = clock.now() - dt.timedelta(hours=1)
        self.acknowledged = dict(
            TicketMessage.objects.filter(
                kind=TicketMessage.Kind.REPLY,
                auto_generated=True,
                created_at__gte=since,
                # Through the senders' tickets (by their email index), not through every
                # message of the last hour.
                ticket__in=Ticket.objects.filter(email__in=senders).values("pk"),
            )
            .values_list("ticket__email")
            .annotate(n=Count("id"))
        )
        # Lock what the batch writes to, before any savepoint, always in the same order:
        # the number series if a ticket may be opened, then the tickets replied to.
        existing: set[int] = set()
        may_open = False
        for mail in mails:
            if mail.key[:998] in self.known or self._ignore_reason(mail):
                continue
            ticket_id = self._thread(mail)
            if ticket_id is None:
                may_open = True
            else:
                existing.add(ticket_id)
        if may_open:
            self.batch.reserve_numbers()
            self.batch.known_clients = services.clients_of(
                {m.sender_email if _is_address(m.sender_email) else UNKNOWN_SENDER for m in mails}
            )
        self.batch.lock(existing)

    def _ignore_reason(self, mail: ParsedMail) -> str:
        if mail.sender_email and mail.sender_email in self.ours:
            return "sent from one of our own addresses (a mail loop)"
        return ""

    def _may_write_to(self, ticket: Ticket, email: str) -> bool:
        """Whether a sender belongs to a ticket: its customer, its CC, or the client's people."""
        if not email:
            return False
        if email == ticket.email.lower() or email in ticket.cc:
            return True
        client = ticket.client
        if client is None:
            return False
        if client.pk not in self.contacts:
            self.contacts[client.pk] = {
                e.lower() for e in client.contacts.values_list("email", flat=True)
            }
        return client.email.lower() == email or email in self.contacts[client.pk]

    def _thread(self, mail: ParsedMail) -> int | None:
        """The ticket a mail answers: by our Message-IDs it refers to, else by the subject tag.

        A ticket number in the subject alone is easy to guess, so it threads only mail from
        somebody who belongs to that ticket; anyone else's mail opens a ticket of their own.
        """
        known = [self.threads[i] for i in _thread_ids(mail) if i in self.threads]
        if known:
            return max(known)[1]
        for number in TICKET_TAG.findall(mail.subject):
            ticket = self.by_number.get(number)
            if ticket is not None and self._may_write_to(ticket, mail.sender_email):
                return ticket.pk
        return None

    def _one(self, received: _Mail) -> IngestResult:
        """File one mail in a savepoint; a failure undoes it alone."""
        mail = received.parsed
        key = mail.key[:998]
        earlier = self.seen.get(key) or self._known(key)
        if earlier is not None:
            return IngestResult("duplicate", earlier.inbound, earlier.ticket, None, "seen before")
        if not self.careful:
            result = self._file(received, key)
            self.seen[key] = result
            return result
        mark = self.batch.mark()
        added = (len(self.opened), set(self.threads), set(self.by_number), dict(self.acknowledged))
        try:
            with transaction.atomic():
                result = self._file(received, key)
        except Exception as error:
            self.batch.undo(mark)
            opened, threads, numbers, self.acknowledged = added
            del self.opened[opened:]
            for gone in set(self.threads) - threads:
                del self.threads[gone]
            for gone in set(self.by_number) - numbers:
                del self.by_number[gone]
            if isinstance(error, IntegrityError):
                # Filed at this very moment through another door: a duplicate.
                existing = InboundMail.objects.defer("raw").filter(key=key).first()
                if existing is not None:
                    return IngestResult("duplicate", existing, existing.ticket, None, "seen before")
            return IngestResult("failed", None, None, None, str(error)[:300], error=error)
        self.seen[key] = result
        return result

    def _known(self, key: str) -> IngestResult | None:
        inbound = self.known.get(key)
        return None if inbound is None else IngestResult("", inbound, inbound.ticket, None)

    def _file(self, received: _Mail, key: str) -> IngestResult:
        mail = received.parsed
        reason = self._ignore_reason(mail)
        ticket_id = None if reason else self._thread(mail)
        ticket = None
        if ticket_id is not None:
            ticket = self.batch.ticket(ticket_id)
            if ticket.merged_into_id is not None:
                ticket = self.batch.ticket(ticket.merged_into_id)
        if reason:
            outcome = InboundMail.Outcome.IGNORED
        elif ticket is not None:
            outcome = InboundMail.Outcome.REPLY
        else:
            outcome = InboundMail.Outcome.TICKET
        inbound = InboundMail(
            key=key,
            via=self.via[:8],
            sender=mail.sender_email,
            subject=mail.subject,
            raw=received.kept,
            size=len(received.raw),
            outcome=outcome,
            reason=reason,
            ticket=ticket,
            problems=mail.problems,
        )
        # The unique key first: a second delivery stops here, before anything is filed.
        inbound.save(force_insert=True)
        if reason:
            return IngestResult("ignored", inbound, None, None, reason)
        attachments = [services.NewAttachment(n, t, c) for n, t, c in mail.attachments]
        fields = {
            "body_html": mail.html,
            "message_id": mail.message_id,
            "in_reply_to": mail.in_reply_to,
            "to": mail.recipients[:20],
            "cc": mail.cc[:20],
            "auto_generated": mail.auto_submitted,
            "problems": mail.problems,
            "inbound": inbound,
        }
        body = mail.text
        if not body and not mail.html:
            body = "" if mail.attachments else "(empty message)"
        if ticket is not None:
            message = self.batch.message_add(
                ticket=ticket,
                body=body,
                from_email=mail.sender_email,
                from_name=mail.sender_name,
                attachments=attachments,
                message_fields=fields,
            )
            self._threads_to(message)
            return IngestResult("reply", inbound, message.ticket, message)
        department = self.department or services.department_for_address(
            [*mail.recipients, *mail.cc], self.departments
        )
        if department is None:
            return self._not_filed(inbound, "no support department is set up")
        sender = mail.sender_email if _is_address(mail.sender_email) else UNKNOWN_SENDER
        try:
            ticket, message = self.batch.ticket_open(
                department=department,
                subject=mail.subject or "(no subject)",
                body=body,
                email=sender,
                name=mail.sender_name,
                cc=[a for a in mail.cc if a not in self.ours and _is_address(a)][: services.MAX_CC],
                attachments=attachments,
                message_fields=fields,
            )
        except ServiceError as refused:
            # E.g. the department was closed meanwhile: the mail is kept for a person to
            # look at rather than bounced back or lost.
            return self._not_filed(inbound, f"not filed: {'; '.join(refused.messages)}")
        inbound.ticket = ticket
        self.opened.append(inbound)
        self.by_number[ticket.number] = ticket
        self._threads_to(message)
        if self._answerable(mail):
            self._threads_to(self.batch.acknowledge(ticket, message))
            self.acknowledged[mail.sender_email] = self.acknowledged.get(mail.sender_email, 0) + 1
        return IngestResult("ticket", inbound, ticket, message)

    def _not_filed(self, inbound: InboundMail, reason: str) -> IngestResult:
        inbound.outcome = InboundMail.Outcome.IGNORED
        inbound.reason = reason[:300]
        inbound.save(update_fields=["outcome", "reason"])
        return IngestResult("ignored", inbound, None, None, inbound.reason)

    def _threads_to(self, message: TicketMessage) -> None:
        # Newer than any stored message, as its id will be: the latest message wins.
        self.filed += 1
        if message.message_id:
            self.threads[message.message_id] = (NEWER + self.filed, message.ticket_id)

    def _answerable(self, mail: ParsedMail) -> bool:
        """Whether an automatic acknowledgement may go back: never to robots or in a loop."""
        if mail.auto_submitted or mail.return_path == "<>" or not _is_address(mail.sender_email):
            return False
        recent = self.acknowledged.get(mail.sender_email, 0)
        return recent < settings.SUPPORT_AUTOREPLY_PER_HOUR
