"""Bank statement parsing (BIL-11): 1C client-bank exchange, camt.053 and CSV, good and bad files.

No database: parsing reads bytes and returns values. Line numbers in the expectations are
counted in the sample texts below (line 1 is the first line).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientbase.billing.statements import (
    Statement,
    StatementError,
    StatementLine,
    parse_statement,
)

SAMPLES = Path(__file__).parent / "statements"
OUR_ACCOUNT = "40702810502080001823"
UNKNOWN_FORMAT = (
    "Unknown statement format: expected CSV, 1C client-bank exchange (1CClientBankExchange) "
    "or ISO 20022 camt.053."
)

# The seed's payment order (ООО "Тех.промышлен" paying invoice 72815) as a bank client exports
# it for 1C, with the amount the brief asks for. Lines 21-42 are the document.
SEED_1C = """\
1CClientBankExchange
ВерсияФормата=1.03
Кодировка=Windows
Отправитель=Бухгалтерия предприятия, редакция 3.0
Получатель=
ДатаСоздания=26.02.2019
ВремяСоздания=09:15:00
ДатаНачала=25.02.2019
ДатаКонца=26.02.2019
РасчСчет=40702810502080001823
Документ=Платежное поручение
СекцияРасчСчет
ДатаНачала=25.02.2019
ДатаКонца=26.02.2019
РасчСчет=40702810502080001823
НачальныйОстаток=100000.00
ВсегоПоступило=15000.00
ВсегоСписано=0.00
КонечныйОстаток=115000.00
КонецРасчСчет
СекцияДокумент=Платежное поручение
Номер=27
Дата=25.02.2019
Сумма=15000.00
ПлательщикСчет=40702810200470918965
ДатаСписано=25.02.2019
Плательщик=ИНН 7814695160 ООО "Тех.промышлен"
ПлательщикИНН=7814695160
Плательщик1=ООО "Тех.промышлен"
ПлательщикКПП=781401001
ПлательщикБанк1=ФИЛИАЛ "СЕВЕРО-ЗАПАДНЫЙ" БАНКА ВТБ (ПАО)
ПлательщикБИК=044030832
ПолучательСчет=40702810502080001823
ДатаПоступило=26.02.2019
Получатель=ИНН 7709983032 ООО "Лайф-технологии"
ПолучательИНН=7709983032
Получатель1=ООО "Лайф-технологии"
ПолучательКПП=770901001
ВидОплаты=01
Очередность=5
НазначениеПлатежа=Оплата по счету 88#72815 от 09.02.19; Сумма 15000-00 Без налога (НДС)
КонецДокумента
КонецФайла
"""

SEED_LINE = StatementLine(
    line_no=21,
    external_id="27|2019-02-25|40702810200470918965|15000.00",
    booked_on=dt.date(2019, 2, 26),
    amount=Decimal("15000.00"),
    currency="RUB",
    incoming=True,
    payer_name='ООО "Тех.промышлен"',
    payer_tax_id="7814695160",
    payer_account="40702810200470918965",
    purpose="Оплата по счету 88#72815 от 09.02.19; Сумма 15000-00 Без налога (НДС)",
)

# Our own payment to the bank: starts on line 43 when put before КонецФайла.
OUTGOING_1C_DOCUMENT = """\
СекцияДокумент=Платежное поручение
Номер=118
Дата=26.02.2019
Сумма=1200,50
ПлательщикСчет=40702810502080001823
ДатаСписано=27.02.2019
Плательщик1=ООО "Лайф-технологии"
ПлательщикИНН=7709983032
ПолучательСчет=70601810000000000001
Получатель1=АО "АЛЬФА-БАНК"
ПолучательИНН=7728168971
НазначениеПлатежа1=Оплата комиссии за ведение счета
НазначениеПлатежа2=за февраль 2019 г.
КонецДокумента
"""


def seed_1c(*, replace: dict[str, str] | None = None, add: str = "") -> str:
    """The seed statement with some lines swapped (whole lines) and documents added at the end."""
    text = SEED_1C.replace("КонецФайла\n", add + "КонецФайла\n")
    for old, new in (replace or {}).items():
        assert f"\n{old}\n" in text, old
        text = text.replace(f"\n{old}\n", f"\n{new}\n", 1)
    return text


def as_1c_bytes(text: str, encoding: str = "cp1251") -> bytes:
    """The bytes a Windows bank client writes: CRLF line ends, Windows-1251."""
    return text.replace("\n", "\r\n").encode(encoding)


def refused(data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse_statement(data)
    return caught.value


def assert_fault(data: bytes, line_no: int | None, message: str) -> None:
    error = refused(data)
    assert error.line_no == line_no
    assert str(error) == (f"Line {line_no}: {message}" if line_no else message)


# --- 1C client-bank exchange -----------------------------------------------------------------


def test_the_seed_payment_order_in_cp1251_reads_as_one_incoming_payment():
    # Given the seed's payment order exported by the bank client in Windows-1251
    data = as_1c_bytes(SEED_1C)

    # When it is parsed
    statement = parse_statement(data)

    # Then it is a 1C statement of our account with exactly that payment
    assert statement == Statement(format="1c", account=OUR_ACCOUNT, lines=[SEED_LINE])


def test_our_own_payment_in_1c_is_parsed_as_outgoing():
    statement = parse_statement(as_1c_bytes(seed_1c(add=OUTGOING_1C_DOCUMENT)))

    assert statement.lines == [
        SEED_LINE,
        StatementLine(
            line_no=43,
            external_id="118|2019-02-26|40702810502080001823|1200.50",
            booked_on=dt.date(2019, 2, 27),
            amount=Decimal("1200.50"),
            currency="RUB",
            incoming=False,
            payer_name='ООО "Лайф-технологии"',
            payer_tax_id="7709983032",
            payer_account=OUR_ACCOUNT,
            purpose="Оплата комиссии за ведение счета за февраль 2019 г.",
        ),
    ]


def test_1c_without_our_account_tells_incoming_by_the_date_received():
    # Given a file that never names our account (no РасчСчет lines)
    text = seed_1c(add=OUTGOING_1C_DOCUMENT).replace("РасчСчет=40702810502080001823\n", "")

    statement = parse_statement(as_1c_bytes(text))

    # Then the payment with ДатаПоступило is incoming and ours, with only ДатаСписано, is not
    assert statement.account == ""
    assert [(line.incoming, line.booked_on) for line in statement.lines] == [
        (True, dt.date(2019, 2, 26)),
        (False, dt.date(2019, 2, 27)),
    ]


def test_1c_payer_without_name_line_and_inn_zero():
    # Given a private person's payment: no Плательщик1, the INN inside Плательщик, INN "0"
    data = as_1c_bytes(
        seed_1c(
            replace={
                'Плательщик1=ООО "Тех.промышлен"': "Плательщик=ИНН 0 Иванов Иван Иванович",
                "ПлательщикИНН=7814695160": "ПлательщикИНН=0",
                'Плательщик=ИНН 7814695160 ООО "Тех.промышлен"': "ПлательщикКПП=0",
            }
        )
    )

    (line,) = parse_statement(data).lines

    assert (line.payer_name, line.payer_tax_id) == ("Иванов Иван Иванович", "")


def test_1c_inn_is_taken_from_the_payer_line_when_the_inn_key_is_missing():
    data = as_1c_bytes(
        seed_1c(
            replace={
                'Плательщик1=ООО "Тех.промышлен"': "ПлательщикБанк2=",
                "ПлательщикИНН=7814695160": "ПлательщикКПП2=",
            }
        )
    )

    (line,) = parse_statement(data).lines

    assert (line.payer_name, line.payer_tax_id) == ('ООО "Тех.промышлен"', "7814695160")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        # Some banks write UTF-8 but still declare Windows: the bytes decide.
        (SEED_1C, "utf-8"),
        ("\ufeff" + SEED_1C, "utf-8"),
        (SEED_1C.replace("Кодировка=Windows", "Кодировка=DOS"), "cp866"),
    ],
    ids=["utf-8 declared Windows", "utf-8 with BOM", "DOS cp866"],
)
def test_1c_in_other_encodings_reads_the_same(text, encoding):
    statement = parse_statement(as_1c_bytes(text, encoding))

    assert statement.lines == [SEED_LINE]


def test_1c_amount_with_a_decimal_comma_and_a_thousands_space():
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Сумма=15 000,00"}))

    (line,) = parse_statement(data).lines

    assert line.amount == Decimal("15000.00")
    assert line.external_id == SEED_LINE.external_id


def test_1c_file_without_end_of_file_is_refused_at_its_last_line():
    data = as_1c_bytes(SEED_1C.replace("КонецФайла\n", ""))

    assert_fault(data, 42, "the file ends without КонецФайла; it may be cut short.")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "the amount 'abc' is not a number."),
        (
            "-15000.00",
            "the amount '-15000.00' is negative; this format writes amounts without a sign.",
        ),
        ("0.00", "the amount '0.00' is zero; a payment has an amount."),
        ("15000.005", "the amount '15000.005' has more decimal places than RUB has."),
        ("1E+5", "the amount '1E+5' is not a number."),
        ("NaN", "the amount 'NaN' is not a number."),
    ],
)
def test_1c_bad_amount_is_refused_naming_its_line(amount, message):
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": f"Сумма={amount}"}))

    assert_fault(data, 24, message)


def test_1c_bad_date_is_refused_naming_its_line():
    data = as_1c_bytes(seed_1c(replace={"Дата=25.02.2019": "Дата=31.02.2019"}))

    assert_fault(
        data,
        23,
        "Дата '31.02.2019' is not a valid date (expected dd.mm.yyyy or yyyy-mm-dd).",
    )


def test_1c_bad_date_received_is_refused_naming_its_line():
    data = as_1c_bytes(seed_1c(replace={"ДатаПоступило=26.02.2019": "ДатаПоступило=вчера"}))

    assert_fault(
        data,
        34,
        "ДатаПоступило 'вчера' is not a valid date (expected dd.mm.yyyy or yyyy-mm-dd).",
    )


def test_1c_line_without_equals_inside_a_document_is_refused():
    data = as_1c_bytes(seed_1c(replace={"ВидОплаты=01": "ВидОплаты 01"}))

    assert_fault(data, 39, "'ВидОплаты 01' is not a key=value line inside a document.")


def test_1c_document_without_its_end_is_refused_where_the_next_one_starts():
    text = seed_1c(add=OUTGOING_1C_DOCUMENT).replace(
        "КонецДокумента\nСекцияДокумент", "СекцияДокумент"
    )

    assert_fault(
        as_1c_bytes(text),
        42,
        "the document that starts on line 21 has no КонецДокумента before this line.",
    )


def test_1c_last_document_without_its_end_is_refused_at_end_of_file():
    text = SEED_1C.replace("КонецДокумента\n", "")

    assert_fault(
        as_1c_bytes(text),
        42,
        "the document that starts on line 21 has no КонецДокумента before this line.",
    )


def test_1c_file_cut_inside_a_document_is_refused_at_the_document():
    text = SEED_1C.split("ВидОплаты=01")[0]

    assert_fault(
        as_1c_bytes(text),
        21,
        "the document that starts on this line has no КонецДокумента; the file may be cut short.",
    )


def test_1c_document_without_an_amount_is_refused_at_the_document():
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Код=0"}))

    assert_fault(data, 21, "the document has no Сумма.")


def test_1c_file_for_two_accounts_is_refused():
    text = seed_1c(
        replace={
            "КонецРасчСчет": "КонецРасчСчет\nСекцияРасчСчет\nРасчСчет=40702810000000000002\nКонецРасчСчет"
        }
    )

    assert_fault(
        as_1c_bytes(text),
        22,
        "the file holds statements for several accounts "
        "(40702810502080001823, 40702810000000000002); export one account per file.",
    )


def test_1c_in_a_currency_the_file_names():
    data = as_1c_bytes(seed_1c(replace={"ВидОплаты=01": "Валюта=USD"}))

    (line,) = parse_statement(data).lines

    assert line.currency == "USD"


def test_1c_text_that_is_not_windows_1251_is_refused_naming_the_line():
    # 0x98 is the one byte Windows-1251 leaves undefined; nothing valid as UTF-8 either
    data = as_1c_bytes(SEED_1C).replace("Номер=27".encode("cp1251"), b"\xc7\x98=27")

    assert_fault(data, 22, "the file is not readable text in the cp1251 encoding.")


# --- ISO 20022 camt.053 ----------------------------------------------------------------------


def test_camt053_version_02_reads_a_credit_and_a_debit():
    statement = parse_statement((SAMPLES / "camt053_v02.xml").read_bytes())

    assert statement == Statement(
        format="camt053",
        account="FR7630006000011234567890189",
        lines=[
            StatementLine(
                line_no=25,
                external_id="2019022500001234",
                booked_on=dt.date(2019, 2, 25),
                amount=Decimal("860.00"),
                currency="EUR",
                incoming=True,
                payer_name="Tech Industrie SARL",
                payer_tax_id="FR40303265045",
                payer_account="FR1420041010050500013M02606",
                purpose="Facture 88#72815 du 09.02.2019",
            ),
            StatementLine(
                line_no=73,
                external_id="2019022600000777",
                booked_on=dt.date(2019, 2, 26),
                amount=Decimal("120.50"),
                currency="EUR",
                incoming=False,
                payer_name="",
                payer_tax_id="",
                payer_account="",
                purpose="Loyer serveurs février",
            ),
        ],
    )


def test_camt053_version_08_with_prefixed_namespace_reads_a_credit_and_a_debit():
    statement = parse_statement((SAMPLES / "camt053_v08.xml").read_bytes())

    assert statement == Statement(
        format="camt053",
        account=OUR_ACCOUNT,
        lines=[
            StatementLine(
                line_no=19,
                # No bank reference: a hash of the entry. Pinned, because a changed id would
                # let a statement imported before an upgrade post its payments again.
                external_id="612e6b14dab84b8fe92ec8d24277575f37b4b9858afcfe8729a9a6b3d0d41062",
                booked_on=dt.date(2019, 2, 26),
                amount=Decimal("15000.00"),
                currency="RUB",
                incoming=True,
                payer_name='ООО "Тех.промышлен"',
                payer_tax_id="7814695160",
                payer_account="40702810200470918965",
                purpose="Оплата по счету 88#72815 от 09.02.19; НДС не облагается.",
            ),
            StatementLine(
                line_no=68,
                external_id="RU-0226-000451",
                booked_on=dt.date(2019, 2, 26),
                amount=Decimal("1200.50"),
                currency="RUB",
                incoming=False,
                payer_name='ООО "Лайф-технологии"',
                payer_tax_id="",
                payer_account=OUR_ACCOUNT,
                purpose="Комиссия за ведение счета за февраль 2019",
            ),
        ],
    )


def camt(entries: str, version: str = "02", *, account: str = "FR7630006000011234567890189"):
    """A camt.053 document with the given entries; the first entry's <Ntry> is on line 6."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">\n'
        "<BkToCstmrStmt>\n"
        "<Stmt>\n"
        f"<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n"
        f"{entries}"
        "</Stmt>\n"
        "</BkToCstmrStmt>\n"
        "</Document>\n"
    ).encode()


def entry(
    amount: str = '<Amt Ccy="EUR">50.00</Amt>',
    *,
    booked: str = "<BookgDt><Dt>2019-03-01</Dt></BookgDt>",
    more: str = "",
    details: str = "",
) -> str:
    """One Ntry written over four lines."""
    return (
        "<Ntry>\n"
        f"{amount}<CdtDbtInd>CRDT</CdtDbtInd>{more}\n"
        f"{booked}\n"
        f"<NtryDtls>{details}</NtryDtls></Ntry>\n"
    )


def test_camt053_entry_without_an_amount_is_refused_naming_the_entry():
    data = camt(entry() + entry(amount=""))

    assert_fault(data, 10, "entry 2: it has no amount (Amt).")


def test_camt053_entry_without_a_booking_date_is_refused_naming_the_entry():
    data = camt(entry() + entry() + entry(booked=""))

    assert_fault(data, 14, "entry 3: it has no booking date (BookgDt).")


def test_camt053_bad_amount_is_refused_naming_the_entry_line():
    data = camt(entry(amount='<Amt Ccy="EUR">5O.00</Amt>'))

    assert_fault(data, 6, "the amount '5O.00' is not a number.")


def test_camt053_unknown_currency_is_refused_naming_the_entry():
    data = camt(entry(amount='<Amt Ccy="EURO">50.00</Amt>'))

    assert_fault(data, 6, "entry 1: the currency 'EURO' is not an ISO 4217 code.")


def test_camt053_in_other_versions_reads_alike():
    lines = {
        version: parse_statement(camt(entry(more="<AcctSvcrRef>R1</AcctSvcrRef>"), version)).lines
        for version in ("02", "04", "06", "08")
    }

    assert lines["02"] == lines["04"] == lines["06"] == lines["08"]
    assert [(line.external_id, line.amount) for line in lines["08"]] == [("R1", Decimal("50.00"))]


def test_malformed_camt053_is_refused_with_the_line_of_the_error():
    data = camt(entry()).replace(b"</NtryDtls></Ntry>", b"</NtryDtls></Ntri>")

    assert_fault(data, 9, "the XML is not well-formed (mismatched tag).")


def test_camt053_cut_short_is_refused_at_its_end():
    # Given a download that stopped right after the entry's last line (line 9)
    data = camt(entry()).split(b"</Stmt>")[0]

    assert_fault(data, 10, "the XML is not well-formed (no element found).")


@pytest.mark.parametrize("encoding", ["AUTF-8", "shift_jis", "rot13", "idna"])
def test_camt053_in_an_encoding_expat_cannot_use_is_refused(encoding):
    data = camt(entry()).replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())

    assert_fault(data, 1, "the XML declares an encoding it cannot be read in; use UTF-8.")


def test_camt053_in_windows_1251_reads():
    data = camt(entry(more="<AcctSvcrRef>R1</AcctSvcrRef>"))
    data = data.replace(b'encoding="UTF-8"', b'encoding="windows-1251"').replace(
        b"<NtryDtls>",
        "<NtryDtls><TxDtls><RmtInf><Ustrd>Оплата по счету 88#72815</Ustrd>"
        "</RmtInf></TxDtls>".encode("cp1251"),
    )

    (line,) = parse_statement(data).lines

    assert line.purpose == "Оплата по счету 88#72815"


@pytest.mark.parametrize(
    "prologue",
    [
        # Billion laughs: each entity ten times the one before
        '<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(9))
        + "]>",
        # External entity reading a local file
        '<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        # A bare DTD reference
        '<!DOCTYPE Document SYSTEM "http://example.invalid/camt.dtd">',
    ],
    ids=["entity bomb", "external entity", "external dtd"],
)
def test_camt053_with_a_dtd_or_entities_is_refused_as_unsafe(prologue):
    data = camt(entry(more="<AddtlNtryInf>&j;</AddtlNtryInf>")).replace(
        b"<Document", prologue.encode() + b"\n<Document", 1
    )

    assert_fault(
        data,
        None,
        "The file is not a safe XML document: it declares a DTD or entities, "
        "which a bank statement never does.",
    )


def test_camt053_reversal_of_a_debit_is_not_an_incoming_payment():
    data = camt(entry(more="<RvslInd>true</RvslInd><AcctSvcrRef>R9</AcctSvcrRef>"))

    (line,) = parse_statement(data).lines

    assert (line.external_id, line.incoming) == ("R9", False)


def test_camt053_pending_entries_are_left_out():
    data = camt(
        entry(more="<Sts>PDNG</Sts><AcctSvcrRef>P1</AcctSvcrRef>")
        + entry(more="<Sts><Cd>BOOK</Cd></Sts><AcctSvcrRef>B1</AcctSvcrRef>")
    )

    assert [line.external_id for line in parse_statement(data).lines] == ["B1"]


def test_camt053_batch_entry_is_split_into_its_transactions():
    # Given one booked entry of 100.00 made of two customer transfers
    def tx(amount, name, text):
        return (
            f'<TxDtls><Amt Ccy="EUR">{amount}</Amt><RltdPties><Dbtr><Nm>{name}</Nm></Dbtr>'
            f"</RltdPties><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls>"
        )

    data = camt(
        entry(
            amount='<Amt Ccy="EUR">100.00</Amt>',
            more="<AcctSvcrRef>BATCH7</AcctSvcrRef>",
            details=tx("60.00", "Alpha SA", "Facture 101")
            + tx("40.00", "Beta SARL", "Facture 102"),
        )
    )

    lines = parse_statement(data).lines

    assert [(x.external_id, x.amount, x.payer_name, x.purpose) for x in lines] == [
        ("BATCH7/1", Decimal("60.00"), "Alpha SA", "Facture 101"),
        ("BATCH7/2", Decimal("40.00"), "Beta SARL", "Facture 102"),
    ]
    assert [x.line_no for x in lines] == [6, 6]


def test_camt053_batch_whose_parts_do_not_add_up_stays_one_payment():
    details = (
        '<TxDtls><Amt Ccy="EUR">60.00</Amt><RmtInf><Ustrd>Facture 101</Ustrd></RmtInf></TxDtls>'
        '<TxDtls><Amt Ccy="EUR">30.00</Amt><RmtInf><Ustrd>Facture 102</Ustrd></RmtInf></TxDtls>'
    )
    data = camt(entry(amount='<Amt Ccy="EUR">100.00</Amt>', details=details))

    (line,) = parse_statement(data).lines

    assert (line.amount, line.purpose) == (Decimal("100.00"), "Facture 101 Facture 102")


def test_camt053_file_for_two_accounts_is_refused():
    # Given a second Stmt, starting on line 11, for another account
    second_statement = (
        "</Stmt>\n<Stmt>\n<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n"
    )
    data = camt(entry() + second_statement + entry())

    assert_fault(
        data,
        11,
        "the file holds statements for several accounts "
        "(FR7630006000011234567890189, DE89370400440532013000); export one account per file.",
    )


def test_xml_that_is_not_a_camt053_statement_is_an_unknown_format():
    data = (
        b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02">'
        b"<BkToCstmrAcctRpt><Note>not a BkToCstmrStmt</Note></BkToCstmrAcctRpt></Document>"
    )

    assert_fault(data, None, UNKNOWN_FORMAT)


# --- CSV -------------------------------------------------------------------------------------

RUSSIAN_CSV = """\
Дата;Сумма;Валюта;Плательщик;ИНН;Счет;Назначение платежа;Номер
25.02.2019;15 000,00;RUB;ООО "Тех.промышлен";7814695160;40702810200470918965;Оплата по счету 88#72815 от 09.02.19;27
26.02.2019;-1 200,50;RUB;ООО "Лайф-технологии";7709983032;40702810502080001823;Комиссия за ведение счета;
"""


def test_csv_with_semicolons_and_decimal_commas_in_cp1251():
    statement = parse_statement(RUSSIAN_CSV.replace("\n", "\r\n").encode("cp1251"))

    assert statement.format == "csv"
    assert statement.account == ""
    assert statement.lines[0] == StatementLine(
        line_no=2,
        external_id="27|2019-02-25|15000.00|7814695160",
        booked_on=dt.date(2019, 2, 25),
        amount=Decimal("15000.00"),
        currency="RUB",
        incoming=True,
        payer_name='ООО "Тех.промышлен"',
        payer_tax_id="7814695160",
        payer_account="40702810200470918965",
        purpose="Оплата по счету 88#72815 от 09.02.19",
    )
    second = statement.lines[1]
    assert (second.line_no, second.amount, second.incoming) == (3, Decimal("1200.50"), False)
    assert re.fullmatch(r"[0-9a-f]{64}", second.external_id)


def test_csv_in_english_with_commas_quotes_and_a_default_currency():
    data = (
        "\ufeffBooking date,Value date,Amount,Payer,VAT,IBAN,Purpose,Reference\n"
        '2019-03-01,2019-03-02,"1,234.50",Tech Industrie SARL,FR 40 303265045,'
        'FR14 2004 1010 0505 0001 3M02 606,"Invoice 72815, March",TX-1\n'
    ).encode()

    (line,) = parse_statement(data, default_currency="EUR").lines

    assert line == StatementLine(
        line_no=2,
        external_id="TX-1|2019-03-01|1234.50|FR40303265045",
        booked_on=dt.date(2019, 3, 1),
        amount=Decimal("1234.50"),
        currency="EUR",
        incoming=True,
        payer_name="Tech Industrie SARL",
        payer_tax_id="FR40303265045",
        payer_account="FR1420041010050500013M02606",
        purpose="Invoice 72815, March",
    )


def test_csv_in_french_with_tabs_and_day_first_slashed_dates():
    data = (
        "Date\tMontant\tDevise\tPayeur\tN° TVA\tCompte\tLibellé\tRéférence\n"
        "01/03/2019\t1 234,56\tEUR\tAlpha SA\tFR12345678901\tFR7630006000011234567890189\t"
        "Facture 101\tVIR-9\n"
    ).encode()

    (line,) = parse_statement(data).lines

    assert (line.booked_on, line.amount, line.currency, line.payer_tax_id, line.purpose) == (
        dt.date(2019, 3, 1),
        Decimal("1234.56"),
        "EUR",
        "FR12345678901",
        "Facture 101",
    )


def test_csv_with_credit_and_debit_columns_and_lines_above_the_header():
    # Given a bank export with two lines about the account above the header
    data = (
        "Выписка по счету 40702810502080001823\n"
        "Период: 01.03.2019 - 02.03.2019\n"
        "Дата операции;Дебет;Кредит;Контрагент;Назначение\n"
        "01.03.2019 10:15;;860,00;ООО Ромашка;Оплата по счету 88#72816\n"
        "02.03.2019;1 200,50;0,00;АО Банк;Комиссия\n"
    ).encode("cp1251")

    lines = parse_statement(data).lines

    assert [(x.line_no, x.booked_on, x.amount, x.incoming, x.payer_name) for x in lines] == [
        (4, dt.date(2019, 3, 1), Decimal("860.00"), True, "ООО Ромашка"),
        (5, dt.date(2019, 3, 2), Decimal("1200.50"), False, "АО Банк"),
    ]


def test_csv_blank_lines_are_skipped_and_line_numbers_stay_true():
    data = b"date;amount\n\n2019-03-01;10\n;\n2019-03-02;20\n"

    lines = parse_statement(data).lines

    assert [(x.line_no, x.amount) for x in lines] == [(3, Decimal("10")), (5, Decimal("20"))]


def test_csv_multi_line_purpose_reports_the_line_its_row_starts_on():
    data = b'date;amount;purpose\n2019-03-01;10;"two\nlines"\n2019-03-02;oops;x\n'

    assert_fault(data, 4, "the amount 'oops' is not a number.")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("25.02.2019;abc;RUB", "the amount 'abc' is not a number."),
        ("25.02.2019;0,00;RUB", "the amount '0,00' is zero; a payment has an amount."),
        ("25.02.2019;;RUB", "the amount is missing."),
        (
            "2019-02-30;10,00;RUB",
            "Дата '2019-02-30' is not a valid date (expected dd.mm.yyyy or yyyy-mm-dd).",
        ),
        (
            "02-25-2019;10,00;RUB",
            "Дата '02-25-2019' is not a valid date (expected dd.mm.yyyy or yyyy-mm-dd).",
        ),
        (";10,00;RUB", "the date is missing."),
        (
            "25.02.2019;10,00;рубли",
            "the currency 'рубли' is not an ISO 4217 code such as RUB or EUR.",
        ),
        ("25.02.2019;10,001;RUB", "the amount '10,001' has more decimal places than RUB has."),
    ],
)
def test_csv_bad_row_is_refused_naming_its_line(row, message):
    data = f"Дата;Сумма;Валюта\n25.02.2019;10,00;RUB\n{row}\n25.02.2019;20,00;RUB\n".encode()

    assert_fault(data, 3, message)


def test_csv_row_with_both_credit_and_debit_is_refused():
    data = b"date;debit;credit\n2019-03-01;5;7\n"

    assert_fault(data, 2, "the row has both a credit and a debit amount.")


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("1 234 567,89", "1234567.89"),
        ("1.234.567,89", "1234567.89"),
        ("1,234,567.89", "1234567.89"),
        ("1,234,567", "1234567"),
        ("1\u00a0234,5", "1234.5"),
        ("+15,00", "15.00"),
        ("−15,00", "15.00"),
    ],
)
def test_csv_amounts_as_banks_write_them(written, amount):
    (line,) = parse_statement(f'date;amount\n2019-03-01;"{written}"\n'.encode()).lines

    assert line.amount == Decimal(amount)


# --- formats that are not statements ---------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"  \r\n\t\n",
        random.Random(11).randbytes(4096),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
        b'<?xml version="1.0"?>\n<Invoice><Number>72815</Number></Invoice>\n',
        b"<!DOCTYPE html>\n<html><body><p>Statement</p></body></html>\n",
        "Дата;Плательщик\n25.02.2019;ООО Ромашка\n".encode(),
    ],
    ids=["empty", "blank", "random binary", "pdf", "zip", "other xml", "html", "no amount"],
)
def test_anything_else_is_an_unknown_format(data):
    assert_fault(data, None, UNKNOWN_FORMAT)


def test_an_unknown_default_currency_is_a_programming_error():
    with pytest.raises(ValueError, match="Unknown default currency: 'EURO'"):
        parse_statement(RUSSIAN_CSV.encode(), default_currency="EURO")


# --- external ids: stable across imports, distinct between payments --------------------------

ALL_SAMPLES = {
    "1c": as_1c_bytes(seed_1c(add=OUTGOING_1C_DOCUMENT)),
    "camt053 v02": (SAMPLES / "camt053_v02.xml").read_bytes(),
    "camt053 v08": (SAMPLES / "camt053_v08.xml").read_bytes(),
    "csv": RUSSIAN_CSV.encode(),
}


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_parsing_the_same_bytes_again_gives_the_same_ids(name):
    first = parse_statement(ALL_SAMPLES[name])
    again = parse_statement(bytes(ALL_SAMPLES[name]))

    assert [x.external_id for x in again.lines] == [x.external_id for x in first.lines]
    assert again == first


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_two_payments_in_one_file_get_different_ids(name):
    ids = [x.external_id for x in parse_statement(ALL_SAMPLES[name]).lines]

    assert len(ids) == 2
    assert len(set(ids)) == 2
    assert all(len(x) <= 100 for x in ids)


def test_two_identical_transfers_without_a_reference_are_two_payments():
    # Given a client who paid the same invoice twice on the same day
    row = "25.02.2019;860,00;ООО Ромашка;Оплата по счету 88#72815\n"
    data = ("Дата;Сумма;Плательщик;Назначение платежа\n" + row + row).encode()

    first, second = parse_statement(data).lines

    assert first.external_id != second.external_id
    assert second.external_id == first.external_id + "-2"
    assert [x.external_id for x in parse_statement(data).lines] == [
        first.external_id,
        second.external_id,
    ]


def test_the_same_order_number_from_two_payers_gives_two_ids():
    data = (
        "Дата;Сумма;ИНН;Номер\n25.02.2019;860,00;7814695160;1\n25.02.2019;860,00;7709983032;1\n"
    ).encode()

    ids = [x.external_id for x in parse_statement(data).lines]

    assert ids == ["1|2019-02-25|860.00|7814695160", "1|2019-02-25|860.00|7709983032"]


def test_error_keeps_its_line_number_and_reads_as_a_sentence():
    error = StatementError("the amount 'abc' is not a number.", line_no=17)

    assert isinstance(error, ValueError)
    assert (error.line_no, error.message) == (17, "the amount 'abc' is not a number.")
    assert str(error) == "Line 17: the amount 'abc' is not a number."
    assert StatementError("Whole file refused.").line_no is None


# --- odd amounts and headers -----------------------------------------------------------------


def test_1c_whole_amount_reads_to_the_currency_places_and_keeps_the_id():
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Сумма=15000"}))

    (line,) = parse_statement(data).lines

    assert str(line.amount) == "15000.00"
    assert line.external_id == SEED_LINE.external_id


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1" * 16 + ",00", f"the amount '{'1' * 16},00' is too large for a payment."),
        ("1" * 41, f"the amount '{'1' * 41}' is not a number."),
        # Arabic-Indic digits: Decimal would take them, a bank statement never has them
        ("١٥٠٠٠", "the amount '١٥٠٠٠' is not a number."),
    ],
    ids=["too large", "too long", "other digits"],
)
def test_csv_amounts_no_payment_has_are_refused(written, message):
    assert_fault(f"date;amount\n2019-03-01;{written}\n".encode(), 2, message)


def test_csv_number_sign_header_names_the_reference():
    data = "Дата;Сумма;№ документа;ИНН\n25.02.2019;860,00;27;7814695160\n".encode()

    (line,) = parse_statement(data).lines

    assert line.external_id == "27|2019-02-25|860.00|7814695160"


# --- whatever the bytes, the answer is a statement or a StatementError -----------------------


def mutated(sample: bytes, start: int, length: int, junk: bytes) -> bytes:
    """The sample with a slice replaced by junk, as a damaged download or a bad edit would."""
    start %= len(sample) + 1
    return sample[:start] + junk + sample[start + length :]


@given(
    sample=st.sampled_from(list(ALL_SAMPLES.values())),
    start=st.integers(min_value=0),
    length=st.integers(min_value=0, max_value=40),
    junk=st.binary(max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_damaged_statements_are_read_or_refused_never_crash(sample, start, length, junk):
    try:
        statement = parse_statement(mutated(sample, start, length, junk))
    except StatementError as error:
        assert str(error)
        assert error.line_no is None or error.line_no >= 1
    else:
        assert all(line.amount > 0 for line in statement.lines)
        assert all(len(line.external_id) <= 100 for line in statement.lines)


@given(data=st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_are_read_or_refused_never_crash(data):
    try:
        statement = parse_statement(data)
    except StatementError as error:
        assert str(error)
    else:
        assert statement.format == "csv"
