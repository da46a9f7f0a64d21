"""Invoice PDFs (BIL-6): the client snapshot, the text an invoice prints, the zip of many."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
import zlib
from decimal import Decimal

import pytest
import typst

from clientbase.billing import pdf
from clientbase.billing.models import Invoice, InvoiceLine
from clientbase.clients.models import Address, Client

from .conftest import eur, line, rub

# --- reading text back out of a typst PDF ---------------------------------------------------
# Typst writes plain (uncompressed) objects whose streams are deflated, fonts as Type0 with
# Identity-H codes and a ToUnicode map, and each run of text as one Tj/TJ inside BT … ET
# placed by a `cm` before it. Enough to read back exactly what a page says, line by line.

_OBJECT = re.compile(rb"(\d+) 0 obj\s*(.*?)endobj", re.S)
_NUMBER = rb"(-?[\d.]+)\s+"
# A placement `a b c d e f cm`, a font `/f0 9.5 Tf`, or a string or array shown by Tj/TJ.
_TOKEN = re.compile(
    rb"(?P<cm>" + _NUMBER * 6 + rb"cm)|/(?P<font>\w+) [\d.]+ Tf|(?P<show>\(|\[)",
)
_ESCAPES = {b"n": 10, b"r": 13, b"t": 9, b"b": 8, b"f": 12, b"(": 40, b")": 41, b"\\": 92}


def _stream(body: bytes) -> bytes:
    data = body.split(b"stream", 1)[1].lstrip(b"\r\n").rsplit(b"endstream", 1)[0]
    return zlib.decompress(data)


def _shown(content: bytes, i: int) -> tuple[bytes, int]:
    """The bytes of the literal strings in the Tj operand or TJ array at i, and where it ends."""
    out, depth, array = bytearray(), 0, content[i : i + 1] == b"["
    while i < len(content):
        c = content[i : i + 1]
        if depth == 0:
            if c == b"(":
                depth = 1
            elif c == b"]" or (not array and out):
                return bytes(out), i + 1
        elif c == b"\\":
            nxt = content[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 1
            else:
                octal = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4]).group()
                out.append(int(octal, 8))
                i += len(octal)
        elif c == b"(":  # balanced parentheses need no escape
            depth += 1
            out += c
        elif c == b")":
            depth -= 1
            if depth:
                out += c
            elif not array:
                return bytes(out), i + 1
        else:
            out += c
        i += 1
    return bytes(out), i


def _cmap(data: bytes) -> dict[int, str]:
    """A ToUnicode map (typst writes bfchar entries: one glyph to one or more characters)."""
    mapping = {}
    for code, text in re.findall(rb"^<([0-9A-Fa-f]{4})> <([0-9A-Fa-f]+)>$", data, re.M):
        mapping[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return mapping


def _runs(content: bytes, fonts: dict) -> list[tuple[float, float, str]]:
    """(y, x, text) of each run of text, placed by the last `cm` before it."""
    runs, x, y, font, i = [], 0.0, 0.0, None, 0
    while match := _TOKEN.search(content, i):
        i = match.end()
        if match["cm"]:
            x, y = float(match.group(6)), float(match.group(7))
        elif match["font"]:
            font = fonts[match["font"].decode()]
        else:
            codes, i = _shown(content, match.start())
            text = "".join(
                font.get(int.from_bytes(codes[k : k + 2], "big"), "\ufffd")
                for k in range(0, len(codes), 2)
            )
            runs.append((y, x, text))
    return runs


def pdf_lines(document: bytes) -> list[str]:
    """The text of every page, one string per printed line from the top, runs on a line
    joined by a space when neither brings one (as table cells)."""
    objects = {int(n): body for n, body in _OBJECT.findall(document)}
    lines = []
    for body in objects.values():
        if not body.startswith(b"<</Type/Page/"):
            continue
        resources = objects[int(re.search(rb"/Resources (\d+) 0 R", body).group(1))]
        fonts = {}
        for name, ref in re.findall(rb"/(f\d+) (\d+) 0 R", resources):
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", objects[int(ref)]).group(1)
            fonts[name.decode()] = _cmap(_stream(objects[int(to_unicode)]))
        content = _stream(objects[int(re.search(rb"/Contents (\d+) 0 R", body).group(1))])
        by_y: dict[int, list] = {}
        for y, x, text in _runs(content, fonts):
            by_y.setdefault(round(y), []).append((x, text))
        for y in sorted(by_y, reverse=True):
            parts = sorted(by_y[y])
            line_text = parts[0][1]
            for _x, text in parts[1:]:
                glue = "" if line_text.endswith(" ") or text.startswith(" ") else " "
                line_text += glue + text
            if line_text.strip():
                lines.append(line_text.strip())
    return lines


def pdf_text(document: bytes) -> str:
    return "\n".join(pdf_lines(document))


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def draft(clerk, make_client):
    """Make a draft invoice directly, with lines whose amounts are given."""

    def make(client=None, lines=(), **fields) -> Invoice:
        client = client or make_client()
        fields.setdefault("currency", client.currency)
        fields.setdefault("issued_on", dt.date(2025, 3, 1))
        fields.setdefault("due_on", dt.date(2025, 3, 15))
        invoice = Invoice.objects.create(client=client, **fields)
        for position, values in enumerate(lines, start=1):
            InvoiceLine.objects.create(invoice=invoice, position=position, **values)
        return invoice

    return make


def hosting_line(**fields) -> dict:
    values = {
        "description": "Hosting",
        "quantity": Decimal(2),
        "unit_price": Decimal("12.5000"),
        "net_minor": 2500,
    }
    return {**values, **fields}


# --- client_snapshot --------------------------------------------------------------------------


def test_snapshot_takes_the_billing_address_and_the_seller_from_settings(make_client, settings):
    settings.COMPANY_NAME = "Acme Billing SARL"
    settings.COMPANY_ADDRESS = "1 rue de la Paix\n75002 Paris\nFrance"
    settings.COMPANY_TAX_ID = "FR40303265045"
    settings.COMPANY_BANK = ["IBAN FR76 3000 6000 0112 3456 7890 189", "BIC AGRIFRPP"]
    client = make_client(
        "ООО «Ромашка»",
        email="buh@romashka.example",
        tax_id="7707083893",
        kpp="770701001",
        language="ru",
        street="ул. Старая, 1",
        postcode="101000",
        city="Москва",
    )
    Address.objects.create(
        client=client, type="correspondence", line1="а/я 12", postcode="101001", city="Москва",
        country="RU",
    )  # fmt: skip
    Address.objects.create(
        client=client, type="billing", line1="ул. Тверская, 7", line2="офис 5",
        postcode="125009", city="Москва", country="RU",
    )  # fmt: skip

    assert pdf.client_snapshot(client) == {
        "name": "ООО «Ромашка»",
        "number": client.number,
        "email": "buh@romashka.example",
        "tax_id": "7707083893",
        "kpp": "770701001",
        "language": "ru",
        "address": ["ул. Тверская, 7", "офис 5", "125009 Москва", "Россия"],
        "company": {
            "name": "Acme Billing SARL",
            "address": ["1 rue de la Paix", "75002 Paris", "France"],
            "tax_id": "FR40303265045",
            "bank": "IBAN FR76 3000 6000 0112 3456 7890 189\nBIC AGRIFRPP",
        },
    }


def test_snapshot_falls_back_to_correspondence_then_the_clients_own_fields(make_client):
    client = make_client(
        "Jean Dupont", language="fr", country="FR", currency="EUR",
        street="3 avenue Foch", postcode="75016", city="Paris",
    )  # fmt: skip
    assert pdf.client_snapshot(client)["address"] == ["3 avenue Foch", "75016 Paris", "France"]

    Address.objects.create(
        client=client, type="correspondence", line1="BP 42", postcode="69001", city="Lyon",
        country="FR",
    )  # fmt: skip
    Address.objects.create(
        client=client, type="delivery", line1="Quai 9", city="Marseille", country="FR"
    )
    assert pdf.client_snapshot(client)["address"] == ["BP 42", "69001 Lyon", "France"]


def test_snapshot_without_company_settings_uses_the_defaults(make_client, settings):
    for name in ("COMPANY_NAME", "COMPANY_ADDRESS", "COMPANY_TAX_ID", "COMPANY_BANK"):
        if hasattr(settings, name):
            delattr(settings, name)
    snapshot = pdf.client_snapshot(make_client(language="de"))
    assert snapshot["company"] == {
        "name": "Clientbase demo company",
        "address": [],
        "tax_id": "",
        "bank": "",
    }
    assert snapshot["language"] == "en"  # a language the product does not speak


# --- one invoice --------------------------------------------------------------------------------


def test_draft_prints_title_lines_totals_and_watermark_in_english(draft, make_client):
    client = make_client("Acme Ltd", currency="EUR", country="GB", language="en",
                         street="1 High St", postcode="EC1A 1BB", city="London")  # fmt: skip
    Client.objects.filter(pk=client.pk).update(tax_id="GB123456789")
    client.refresh_from_db()
    invoice = draft(
        client,
        [
            hosting_line(
                period_start=dt.date(2025, 3, 1),
                period_end=dt.date(2025, 3, 31),
                discount_percent=Decimal("12.5"),
                tax_rate=Decimal(20),
                net_minor=2188,
                tax_minor=438,
            ),
            {
                "description": "Setup",
                "quantity": Decimal("1.5"),
                "unit_price": Decimal("10.1234"),
                "taxable": False,
                "net_minor": 1519,
            },
        ],
        subtotal_minor=3707,
        tax_minor=438,
        total_minor=4145,
        notes="Thank you!\nPay by bank transfer.",
    )

    document = pdf.invoice_pdf(invoice)

    assert document.startswith(b"%PDF-")
    assert pdf_lines(document) == [
        "Clientbase demo company",
        "Draft invoice",
        "Date Mar 1, 2025",
        "Due date Mar 15, 2025",
        f"Client number {client.number}",
        "BILL TO",
        "Acme Ltd",
        "1 High St",
        "EC1A 1BB London",
        "United Kingdom",
        "Tax id: GB123456789",
        client.email,
        "# Description Qty Unit price Discount Tax Amount",
        "1 Hosting 2 €12.50 12.5% 20% €21.88",
        "Mar 1\u2009–\u200931, 2025",
        "2 Setup 1.5 €10.1234 €15.19",
        "Subtotal €37.07",
        "Tax €4.38",
        "Total €41.45",  # a draft owes nothing yet: no balance due
        "NOTES",
        "Thank you!",
        "Pay by bank transfer.",
        "Draft",  # the watermark across the middle of the page
        "1 / 1",
    ]


def test_issued_invoice_prints_its_snapshot_payments_and_balance(
    clerk, make_client, issue, pay, seed_day, settings
):
    settings.COMPANY_NAME = "ООО «Клиентбейс»"
    settings.COMPANY_BANK = "р/с 40702810900000000001"
    client = make_client("Иван Петров", language="ru", tax_id="7707083893")
    invoice = issue(client, line("Доступ Стандарт", "3800.00"), line("Диск 5ГБ", "360.00", "2"))
    pay(client, rub("1000.00"), invoice)
    invoice.refresh_from_db()
    client.name = "Renamed after issue"
    client.save()

    lines = pdf_lines(pdf.invoice_pdf(invoice))

    r = rub  # amounts as the Russian locale writes them, e.g. "3 800,00 ₽"
    assert lines == [
        "ООО «Клиентбейс»",
        "Счёт",
        f"Номер {invoice.number}",
        "Дата 1 февр. 2019\u202fг.",
        "Срок оплаты 8 февр. 2019\u202fг.",
        f"Номер клиента {client.number}",
        "Статус Оплачен частично",
        "ПЛАТЕЛЬЩИК",
        "Иван Петров",  # the snapshot, not the renamed client
        "Россия",
        "ИНН: 7707083893",
        "client1@example.com",
        "# Описание Кол-во Цена за единицу Скидка Налог Сумма",
        f"1 Доступ Стандарт 1 {r('3800').format('ru')} {r('3800').format('ru')}",
        f"2 Диск 5ГБ 2 {r('360').format('ru')} {r('720').format('ru')}",
        f"Промежуточный итог {r('4520').format('ru')}",
        f"Итого {r('4520').format('ru')}",
        f"Оплачен {r('-1000').format('ru')}",
        f"К оплате {r('3520').format('ru')}",
        "Банковские реквизиты: р/с 40702810900000000001 1 / 1",
    ]


def test_vietnamese_and_french_text_and_currency_print_exactly(draft, make_client):
    vi = make_client("Nguyễn Văn Ánh — Công ty TNHH Đầu tư", currency="VND", country="VN",
                     language="vi")  # fmt: skip
    invoice = draft(vi, [hosting_line(description="Dịch vụ lưu trữ", unit_price=Decimal(120000),
                                      quantity=Decimal(1), net_minor=120000)],
                    subtotal_minor=120000, total_minor=120000)  # fmt: skip
    lines = pdf_lines(pdf.invoice_pdf(invoice))
    assert lines == [
        "Clientbase demo company",
        "Hóa đơn nháp",
        "Ngày 1 thg 3, 2025",
        "Hạn thanh toán 15 thg 3, 2025",
        f"Mã khách hàng {vi.number}",
        "XUẤT HÓA ĐƠN CHO",
        "Nguyễn Văn Ánh — Công ty TNHH Đầu tư",
        "Việt Nam",
        vi.email,
        "# Mô tả SL Đơn giá Chiết khấu Thuế Số tiền",
        "1 Dịch vụ lưu trữ 1 120.000\xa0₫ 120.000\xa0₫",
        "Tạm tính 120.000\xa0₫",
        "Tổng cộng 120.000\xa0₫",
        "Bản nháp",
        "1 / 1",
    ]

    fr = make_client("Société Générale d’Œuvres", currency="EUR", country="FR", language="fr")
    invoice = draft(fr, [hosting_line(unit_price=Decimal("1234.5"), quantity=Decimal(1),
                                      net_minor=123450)],
                    subtotal_minor=123450, total_minor=123450)  # fmt: skip
    text = pdf_text(pdf.invoice_pdf(invoice))
    assert "Société Générale d’Œuvres" in text
    assert eur("1234.50").format("fr") in text  # "1 234,50 €" with narrow no-break spaces


@pytest.mark.parametrize(
    "name",
    [
        '#import "x": *',
        "*bold* _under_ $x^2$ `raw` <label> @ref",
        '#{panic("boom")} \\ ] [ // not a comment',
        "= Heading\n- list",
    ],
)
def test_hostile_text_prints_literally(draft, make_client, name):
    client = make_client("Placeholder")
    client.name = name  # straight to the row: the services would tidy it
    client.save()
    invoice = draft(client, [hosting_line(description=name)], notes=name)
    invoice.refresh_from_db()

    text = pdf_text(pdf.invoice_pdf(invoice))

    for part in name.split("\n"):
        assert text.count(part) == 3  # client name, line description, notes


def test_same_invoice_gives_the_same_bytes(draft):
    invoice = draft(lines=[hosting_line()], subtotal_minor=2500, total_minor=2500)
    assert pdf.invoice_pdf(invoice) == pdf.invoice_pdf(invoice)


def test_cancelled_invoice_carries_a_watermark(clerk, make_client, issue, seed_day):
    from clientbase.billing import services

    invoice = issue(make_client(language="en"), line("Hosting", "10.00"))
    invoice = services.invoice_cancel(by=clerk, invoice=invoice, reason="Duplicate")
    lines = pdf_lines(pdf.invoice_pdf(invoice))
    assert "Cancelled" in lines  # the watermark
    assert "Status Cancelled" in lines


def test_embedded_font_covers_the_languages_without_system_fonts():
    """New Computer Modern, built into typst, has every glyph: nothing falls back."""
    sample = "Nguyễn Văn Ánh Đặng ự ỹ Иван Ёж № «» Œuvre ç ß € ₽ ₫ \u202f\u00a0"
    document = typst.compile(
        f'#set text(font: "New Computer Modern")\n{sample}'.encode(), format="pdf"
    )
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([\w-]+?)(?:-Identity-H)?/", document))
    assert fonts == {b"NewCM10-Regular"}


# --- many invoices --------------------------------------------------------------------------------


def test_zip_names_pdfs_by_number_and_drafts_by_id(clerk, make_client, issue, seed_day, draft):
    client = make_client(language="en")
    first = issue(client, line("Hosting", "10.00"))
    second = issue(client, line("Disk", "5.00"))
    pending = draft(client, [hosting_line()], subtotal_minor=2500, total_minor=2500)

    data = pdf.invoices_zip(Invoice.objects.filter(client=client).order_by("id"))

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [
            f"{first.number}.pdf",
            f"{second.number}.pdf",
            f"draft-{pending.pk}.pdf",
        ]
        assert archive.read(f"{first.number}.pdf") == pdf.invoice_pdf(first)
        assert first.number in pdf_text(archive.read(f"{first.number}.pdf"))


def test_zip_names_are_safe_and_unique(draft):
    invoice = draft(lines=[hosting_line()])
    invoice.number = "2025/../../etc:7"
    assert pdf.invoice_filename(invoice) == "2025_.._.._etc_7.pdf"
    buffer = io.BytesIO()
    names = pdf.write_invoices_zip([invoice, invoice], buffer)
    assert names == ["2025_.._.._etc_7.pdf", "2025_.._.._etc_7-2.pdf"]
    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == names


def test_empty_zip_is_a_valid_archive(db):
    with zipfile.ZipFile(io.BytesIO(pdf.invoices_zip([]))) as archive:
        assert archive.namelist() == []


def test_zip_made_by_worker_processes_holds_the_same_pdfs(clerk, make_client, issue, seed_day):
    client = make_client(language="ru")
    invoices = [issue(client, line(f"Хостинг {n}", f"{n}0.00")) for n in range(1, 6)]
    parallel, serial = io.BytesIO(), io.BytesIO()
    names = pdf.write_invoices_zip(invoices, parallel, workers=2)
    assert (
        names
        == pdf.write_invoices_zip(invoices, serial, workers=1)
        == [f"{n}.pdf" for n in range(1, 6)]
    )
    with zipfile.ZipFile(parallel) as made, zipfile.ZipFile(serial) as expected:
        for name in names:
            assert made.read(name) == expected.read(name)
        assert "Хостинг 3" in pdf_text(made.read("3.pdf"))
