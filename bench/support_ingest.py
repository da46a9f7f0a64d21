"""Benchmark: mail to ticket (SUP-2), `mail_ingest_batch` over a realistic corpus, beside raw
inserts and beside one message a transaction.

1. --clients demo clients and one default support department.
2. A corpus of --messages mails built in memory before any timing: subjects and bodies in
   Russian, French, Vietnamese and English, in UTF-8, KOI8-R, Windows-1251 and Latin-1 (a few
   Russian ones with no charset at all, as old mail programs send them), about 30 % with an
   HTML alternative, 30 % with a PDF- or PNG-like attachment of 10–200 KB, 40 % replies to
   an earlier mail (half by In-Reply-To, half by the ticket's subject tag), half the threads
   started by clients of the base and the rest by guests, and 2 % automatic mail.
3. Baseline: each mail's raw bytes stored as one InboundMail row by a raw INSERT in its own
   transaction (the storage alone), then removed again.
4. `mail_ingest_batch(raws, via="imap")` on --batch mails at a time, in the order they
   arrived, as the IMAP poller and the webhook deliver them; acknowledgements are queued as
   tasks (the database backend) after each batch commits, none is sent.
5. For comparison, `mail_ingest(raw, via="pipe")` on each mail of a second corpus of
   --single mails (other Message-IDs, the same kind of mail), one transaction each, as the
   mail server pipes them in.

Figures: messages/s, ms per batch (p50/p95), tickets, replies, attachments stored, and the
ratio to the baseline; `single` holds the one-a-transaction figures; `threading_ok` says
every reply of both corpora found its ticket. `--profile` prints a cProfile of the timed
batch ingest to stderr.
"""

import argparse
import cProfile
import datetime as dt
import io
import math
import os
import pstats
import random
import statistics
import sys
import time
import zlib
from dataclasses import dataclass
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings
from django.urls import get_resolver, reverse
from django.utils import translation

from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import DEFAULT_SEED, demo_clients_create
from clientbase.support import services
from clientbase.support.intake import _pool, mail_ingest, mail_ingest_batch
from clientbase.support.mailparse import parse_mail, parse_many
from clientbase.support.models import Attachment, InboundMail, Ticket, TicketMessage

DEFAULT_MESSAGES = 2_000
DEFAULT_CLIENTS = 500
DEFAULT_BATCH = 100  # as intake.BATCH: what the IMAP poller files a transaction
DEFAULT_SINGLE = 500
TARGET_PER_S = 200
SUPPORT_ADDRESS = "support@bench.example"

# language: (charsets with weights, subjects, opening lines, problem lines, signatures)
TEXTS = {
    "ru": (
        (("utf-8", 40), ("koi8-r", 30), ("windows-1251", 30)),
        ("Не работает почта на домене {n}", "Счёт N {n} не оплачивается картой",
         "Перенос сайта на новый тариф", "Ошибка 502 на сервере vps-{n}",
         "Вопрос по договору и закрывающим документам", "Не приходит SMS с кодом"),
        ("Здравствуйте!", "Добрый день.", "Доброе утро, коллеги."),
        ("С утра не отправляются письма, клиенты жалуются.",
         "Оплата картой отклоняется с ошибкой банка, хотя деньги на счёте есть.",
         "Прошу перенести сайт на тариф 'Бизнес' без простоя.",
         "Сайт отдаёт 502 каждые несколько минут, в логах ничего нет.",
         "Пришлите, пожалуйста, акт сверки за прошлый квартал."),
        ("С уважением,\nИван Петров", "Спасибо!\nМарина", "--\nООО 'Ромашка', бухгалтерия"),
    ),
    "fr": (
        (("utf-8", 80), ("iso-8859-1", 20)),
        ("Problème de facturation n°{n}", "Le site ne répond plus depuis ce matin",
         "Demande de remboursement", "Changement d'adresse de facturation",
         "Certificat SSL expiré sur {n}.fr"),
        ("Bonjour,", "Madame, Monsieur,", "Bonjour à toute l'équipe,"),
        ("Notre site affiche une erreur depuis la mise à jour d'hier soir.",
         "La facture a été débitée deux fois sur notre compte.",
         "Pourriez-vous mettre à jour l'adresse figurant sur nos factures ?",
         "Le certificat a expiré et nos clients voient un avertissement."),
        ("Cordialement,\nÉlodie Lefèvre", "Merci d'avance,\nFrançois", "Bien à vous,\nAnaïs"),
    ),
    "vi": (
        (("utf-8", 100),),
        ("Không truy cập được trang quản trị", "Hóa đơn số {n} bị sai số tiền",
         "Yêu cầu gia hạn tên miền", "Lỗi gửi thư từ máy chủ {n}"),
        ("Xin chào,", "Kính gửi bộ phận hỗ trợ,", "Chào anh chị,"),
        ("Từ sáng nay chúng tôi không đăng nhập được vào trang quản trị.",
         "Số tiền trên hóa đơn không khớp với hợp đồng đã ký.",
         "Vui lòng gia hạn tên miền thêm một năm và gửi hóa đơn cho chúng tôi."),
        ("Trân trọng,\nNguyễn Văn An", "Cảm ơn,\nTrần Thị Mai"),
    ),
    "en": (
        (("utf-8", 70), ("us-ascii", 30)),
        ("Cannot log in to the control panel", "Invoice {n} charged twice",
         "Upgrade request for account {n}", "Website down since this morning",
         "Question about the new pricing"),
        ("Hello,", "Hi team,", "Good morning,"),
        ("Since this morning nobody in our office can log in.",
         "We were charged twice for the same invoice, please refund one payment.",
         "We would like to move to the larger plan from next month.",
         "Our website returns an error for every visitor."),
        ("Best regards,\nJohn Smith", "Thanks,\nEmily", "--\nAcme Ltd, IT department"),
    ),
}  # fmt: skip
LANGUAGE_WEIGHTS = {"ru": 40, "fr": 20, "vi": 15, "en": 25}
GUEST_NAMES = {
    "ru": ("Алексей Смирнов", "Ольга Кузнецова", "Дмитрий Соколов"),
    "fr": ("Camille Martin", "Lucas Bernard", "Chloé Dubois"),
    "vi": ("Lê Văn Hùng", "Phạm Thị Lan", "Hoàng Minh Đức"),
    "en": ("Sarah Johnson", "Michael Brown", "Laura Wilson"),
}
GUEST_DOMAINS = ("mail.example", "inbox.example", "post.example", "corp.example")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- The corpus ------------------------------------------------------------------------------


@dataclass
class Mail:
    """One mail of the corpus and what intake must make of it."""

    raw: bytes
    message_id: str
    sender: str
    name: str
    language: str
    subject: str
    root: int  # index of the mail that opened the thread (itself for a new one)
    attachments: int


def _pdf_like(rng: random.Random, size: int) -> bytes:
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    stream = zlib.compress(rng.randbytes(size // 2), 1)
    body = b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
    return (head + body + stream + rng.randbytes(max(size - len(stream), 0)))[:size] + (
        b"\nendstream\nendobj\n%%EOF\n"
    )


def _png_like(rng: random.Random, size: int) -> bytes:
    ihdr = b"\x00\x00\x00\rIHDR\x00\x00\x03\x20\x00\x00\x02\x58\x08\x06\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + ihdr + rng.randbytes(size) + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _charset(rng: random.Random, language: str) -> str:
    choices = TEXTS[language][0]
    return rng.choices([c for c, _w in choices], [w for _c, w in choices])[0]


def _text_part(text: str, subtype: str, charset: str) -> MIMEText:
    return MIMEText(text, subtype, "utf-8" if charset == "us-ascii" else charset)


def _html(text: str, rng: random.Random) -> str:
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
    extra = ""
    if rng.random() < 0.2:  # what a sanitiser is there for
        extra = '<script>track()</script><img src="https://t.example/p.gif" onload="x()">'
    return (
        '<html><head><style>p{margin:0}</style></head><body><div dir="auto">'
        f'{paragraphs}{extra}<a href="https://example.com/help">help</a></div></body></html>'
    )


def _undeclared(
    sender: str, subject: str, body: str, message_id: str, date: str, threading: str
) -> bytes:
    """A Russian mail in Windows-1251 whose text part names no charset at all."""
    headers = (
        f"From: {sender}\r\nTo: {SUPPORT_ADDRESS}\r\n"
        f"Subject: {Header(subject, 'windows-1251').encode()}\r\nDate: {date}\r\n"
        f"Message-ID: {message_id}\r\n{threading}MIME-Version: 1.0\r\n"
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return headers.encode("ascii") + body.replace("\n", "\r\n").encode("cp1251")


def build_corpus(
    count: int, clients: list[tuple[str, str]], seed: int, *, first_number: int = 1, tag: str = "b"
) -> list[Mail]:
    """`count` mails as they arrive, replies after the mail they answer; the first new
    thread becomes ticket `first_number`."""
    rng = random.Random(seed)
    languages = list(LANGUAGE_WEIGHTS)
    weights = list(LANGUAGE_WEIGHTS.values())
    corpus: list[Mail] = []
    started = first_number - 1  # threads opened so far: the next one's ticket number
    numbers: dict[int, str] = {}
    when = clock.now()
    for index in range(count):
        date = format_datetime(when.replace(microsecond=0))
        message_id = make_msgid(idstring=f"{tag}{index}", domain="mail.bench.example")
        reply_to = corpus[rng.randrange(len(corpus))] if corpus and rng.random() < 0.40 else None
        if reply_to is not None:
            language, email, name = reply_to.language, reply_to.sender, reply_to.name
            root = reply_to.root
            subject = "Re: " + corpus[root].subject
            by_tag = rng.random() < 0.5
            if by_tag:
                subject += f" [#{numbers[root]}]"
            opening, problem, closing = (rng.choice(TEXTS[language][i]) for i in (2, 3, 4))
            quoted = "\n".join("> " + line for line in corpus[root].subject.split("\n"))
            body = f"{opening}\n\n{problem}\n\n{closing}\n\n{quoted}\n"
        else:
            language = rng.choices(languages, weights)[0]
            _c, subjects, openings, problems, closings = TEXTS[language]
            if clients and rng.random() < 0.5:
                email, name = rng.choice(clients)
            else:
                name = rng.choice(GUEST_NAMES[language])
                email = f"guest{rng.randrange(10**6)}@{rng.choice(GUEST_DOMAINS)}"
            root = index
            started += 1
            numbers[index] = f"{started:06d}"
            subject = rng.choice(subjects).format(n=rng.randrange(1000, 99999))
            lines = rng.sample(problems, min(2, len(problems)))
            body = f"{rng.choice(openings)}\n\n" + "\n".join(lines) + f"\n\n{rng.choice(closings)}"
            by_tag = False
        charset = _charset(rng, language)
        sender = formataddr((name, email), charset="utf-8")
        with_html = rng.random() < 0.30
        files = []
        if rng.random() < 0.30:
            size = rng.randint(10_000, 200_000)
            if rng.random() < 0.5:
                files.append(("scan.pdf", "application", "pdf", _pdf_like(rng, size)))
            else:
                files.append(("screenshot.png", "image", "png", _png_like(rng, size)))
        if language == "ru" and not files and not with_html and rng.random() < 0.05:
            threading = ""
            if reply_to is not None and not by_tag:
                threading = f"In-Reply-To: {reply_to.message_id}\r\n"
            raw = _undeclared(sender, subject, body, message_id, date, threading)
        else:
            text = _text_part(body, "plain", charset)
            if with_html:
                part = MIMEMultipart("alternative")
                part.attach(text)
                part.attach(_text_part(_html(body, rng), "html", charset))
            else:
                part = text
            if files:
                message = MIMEMultipart("mixed")
                message.attach(part)
                for filename, main, sub, content in files:
                    cls = MIMEImage if main == "image" else MIMEApplication
                    attachment = cls(content, sub)
                    attachment.add_header("Content-Disposition", "attachment", filename=filename)
                    message.attach(attachment)
            else:
                message = part
            message["From"] = sender
            message["To"] = SUPPORT_ADDRESS
            if rng.random() < 0.05:
                message["Cc"] = f"colleague{rng.randrange(100)}@{email.split('@')[1]}"
            message["Subject"] = Header(subject, "utf-8" if charset == "us-ascii" else charset)
            message["Date"] = date
            message["Message-ID"] = message_id
            if reply_to is not None and not by_tag:
                message["In-Reply-To"] = reply_to.message_id
                message["References"] = f"{corpus[root].message_id} {reply_to.message_id}"
            if rng.random() < 0.02:
                message["Auto-Submitted"] = "auto-replied"
            raw = message.as_bytes()
        corpus.append(
            Mail(raw, message_id, email, name, language, subject, root, len(files))
        )  # fmt: skip
        when += dt.timedelta(seconds=rng.randint(1, 120))
    return corpus


# --- Baseline --------------------------------------------------------------------------------


def _baseline(corpus: list[Mail]) -> float:
    """Seconds to store each mail's raw bytes as one row, one transaction each; then undone."""
    quote = connection.ops.quote_name
    table = quote(InboundMail._meta.db_table)
    columns = ("key", "received_at", "via", "sender", "subject", "raw", "size", "outcome",
               "reason", "problems")  # fmt: skip
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    now = connection.ops.adapt_datetimefield_value(clock.now())
    started = time.perf_counter()
    for index, mail in enumerate(corpus):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                sql,
                [f"baseline:{index}", now, "pipe", mail.sender, mail.subject[:300], mail.raw,
                 len(mail.raw), "ignored", "", "[]"],
            )  # fmt: skip
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {quote('key')} LIKE 'baseline:%%'")
    return seconds


# --- The run ---------------------------------------------------------------------------------


def _timed_parse(raw: bytes) -> float:
    started = time.perf_counter()
    parse_mail(raw)
    return time.perf_counter() - started


def _ingest(
    corpus: list[Mail], batch: int, profile: bool, parallel: bool
) -> tuple[list[float], dict[str, int], float]:
    """Seconds per batch, outcomes, and the total, filing `batch` mails at a time."""
    outcomes: dict[str, int] = {}
    times: list[float] = []
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    for start in range(0, len(corpus), batch):
        raws = [mail.raw for mail in corpus[start : start + batch]]
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        results = mail_ingest_batch(raws, via="imap", parallel=parallel)
        if profiler is not None:
            profiler.disable()
        times.append(time.perf_counter() - began)
        for result in results:
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    seconds = time.perf_counter() - started
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        print(out.getvalue(), file=sys.stderr)
    return times, outcomes, seconds


def _ingest_single(corpus: list[Mail]) -> tuple[list[float], dict[str, int], float]:
    """Seconds per mail, outcomes, and the total, one mail a transaction."""
    outcomes: dict[str, int] = {}
    times: list[float] = []
    started = time.perf_counter()
    for mail in corpus:
        began = time.perf_counter()
        result = mail_ingest(mail.raw, via="pipe")
        times.append(time.perf_counter() - began)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return times, outcomes, time.perf_counter() - started


def _misthreaded(corpus: list[Mail]) -> int:
    """Mails not in the ticket their thread's first mail opened."""
    ids = {mail.message_id for mail in corpus}
    by_message_id = dict(
        TicketMessage.objects.filter(
            kind=TicketMessage.Kind.CUSTOMER, message_id__in=ids
        ).values_list("message_id", "ticket__number")
    )
    return sum(
        1
        for mail in corpus
        if by_message_id.get(mail.message_id) != by_message_id.get(corpus[mail.root].message_id)
        or mail.message_id not in by_message_id
    )


def run(argv: list[str]) -> dict:
    """Build the corpus, time the raw baseline, then ingest every mail and check threading."""
    parser = argparse.ArgumentParser(prog="clientbase bench support_ingest")
    parser.add_argument("--messages", type=_positive, default=DEFAULT_MESSAGES)
    parser.add_argument("--clients", type=_positive, default=DEFAULT_CLIENTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--batch", type=_positive, default=DEFAULT_BATCH, help="mails a transaction"
    )
    parser.add_argument(
        "--serial",
        dest="parallel",
        action="store_false",
        help="read every mail in this process (the poller hands half a batch to another)",
    )
    parser.add_argument(
        "--single",
        type=int,
        default=None,
        help=f"mails filed one a transaction for comparison (default: up to {DEFAULT_SINGLE})",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr")
    options = parser.parse_args(argv)
    if Ticket.objects.exists() or InboundMail.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds tickets")

    org = ensure_demo_org()
    demo_clients_create(clients=options.clients, org=org, seed=options.seed)
    services.department_save(
        by=None,
        name="Support",
        email=SUPPORT_ADDRESS,
        org_unit=org.units["Clientbase Demo"],
        is_default=True,
    )
    people = list(Client.objects.order_by("id").values_list("email", "name"))
    built = time.perf_counter()
    corpus = build_corpus(options.messages, people, options.seed)
    expected_tickets = sum(1 for i, m in enumerate(corpus) if m.root == i)
    single_count = (
        min(options.messages, DEFAULT_SINGLE) if options.single is None else options.single
    )
    single_corpus = build_corpus(
        single_count, people, options.seed + 1, first_number=expected_tickets + 1, tag="s"
    )
    build_seconds = time.perf_counter() - built
    expected_single = sum(1 for i, m in enumerate(single_corpus) if m.root == i)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    # A running server has its URLconf loaded; the first reverse() (the link in the first
    # acknowledgement) would otherwise import every view and API router inside the timing.
    get_resolver().url_patterns  # noqa: B018
    # It also knows each language's URLs (built at the first link in that language): the
    # acknowledgements are written in the customer's.
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            reverse("support:guest_ticket", args=["x"])
    # No mail leaves the machine: acknowledgements are queued, and sent nowhere if run.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        load_before = os.getloadavg()[0]
        baseline_seconds = _baseline(corpus)
        parse_times = [_timed_parse(mail.raw) for mail in corpus]
        if options.parallel:
            # The poller's helper process is started by its first batch, once a process.
            _pool().submit(parse_many, [m.raw for m in corpus[:5]]).result()
        cpu_started = time.process_time()
        times, outcomes, seconds = _ingest(corpus, options.batch, options.profile, options.parallel)
        cpu_seconds = time.process_time() - cpu_started
        tickets = Ticket.objects.count()
        acknowledgements = TicketMessage.objects.filter(
            kind=TicketMessage.Kind.REPLY, auto_generated=True
        ).count()
        misthreaded = _misthreaded(corpus)
        stored = Attachment.objects.exclude(sha256="").count()
        cpu_started = time.process_time()
        single_times, single_outcomes, single_seconds = (
            _ingest_single(single_corpus) if single_corpus else ([], {}, 0.0)
        )
        single_cpu = time.process_time() - cpu_started
    count = len(corpus)
    rate = count / seconds
    baseline_rate = count / baseline_seconds
    replies = TicketMessage.objects.filter(
        kind=TicketMessage.Kind.CUSTOMER,
        inbound__outcome=InboundMail.Outcome.REPLY,
        inbound__via="imap",
    ).count()
    single_misthreaded = _misthreaded(single_corpus)
    single_tickets = Ticket.objects.count() - tickets
    single = {
        "messages": len(single_corpus),
        "outcomes": single_outcomes,
        "tickets": single_tickets,
    }
    if single_corpus:
        single_rate = len(single_corpus) / single_seconds
        single.update(
            seconds=round(single_seconds, 2),
            messages_per_s=round(single_rate, 1),
            p50_ms=_ms(statistics.median(single_times)),
            p95_ms=_ms(_p95(single_times)),
            ratio=round(single_rate / baseline_rate, 3),
            cpu_seconds=round(single_cpu, 2),
            messages_per_cpu_s=round(len(single_corpus) / single_cpu, 1),
        )
    return {
        "database": connection.vendor,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "messages": count,
        "clients": options.clients,
        "corpus_mb": round(sum(len(m.raw) for m in corpus) / 2**20, 1),
        "corpus_build_seconds": round(build_seconds, 1),
        "batch": options.batch,
        "seconds": round(seconds, 2),
        "messages_per_s": round(rate, 1),
        "parallel_reading": options.parallel,
        # This process's own CPU time (the reading process and PostgreSQL not counted):
        # what the machine's load does not change.
        "cpu_seconds": round(cpu_seconds, 2),
        "messages_per_cpu_s": round(count / cpu_seconds, 1),
        # Time to file one batch (the last one may be smaller).
        "batch_p50_ms": _ms(statistics.median(times)),
        "batch_p95_ms": _ms(_p95(times)),
        "batch_max_ms": _ms(max(times)),
        # Reading the mail alone (parse_mail, timed apart): its share of each message.
        "parse_p50_ms": _ms(statistics.median(parse_times)),
        "parse_p95_ms": _ms(_p95(parse_times)),
        "parse_share": round(sum(parse_times) / seconds, 3),
        "outcomes": outcomes,
        "tickets": tickets,
        "replies": replies,
        "attachments_sent": sum(m.attachments for m in corpus),
        "attachments_stored": stored,
        "acknowledgements_queued": acknowledgements,
        "threading_ok": misthreaded == 0
        and tickets == expected_tickets
        and single_misthreaded == 0
        and single_tickets == expected_single,
        "misthreaded": misthreaded + single_misthreaded,
        "baseline_seconds": round(baseline_seconds, 2),
        "baseline_messages_per_s": round(baseline_rate, 1),
        "ratio": round(rate / baseline_rate, 3),
        "target_messages_per_s": TARGET_PER_S,
        "within_target": rate >= TARGET_PER_S,
        "single": single,
    }
