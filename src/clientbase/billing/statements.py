"""Bank statements read into payment lines: CSV, 1C client-bank exchange and ISO 20022 camt.053.

Parsing only: no database and no matching to invoices. The format is told by the content, never
by the file name, and a file with any fault is refused whole with the line of the fault, so an
import never posts half a statement.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from django.utils.translation import gettext as _

from clientbase.core.money import currency_exponent

FORMAT_CSV = "csv"
FORMAT_1C = "1c"
FORMAT_CAMT053 = "camt053"

# A payment's id is stored beside it to refuse a second import; longer ids are hashed to this.
EXTERNAL_ID_MAX_LENGTH = 100


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One payment on a bank statement, as the bank wrote it."""

    line_no: int
    external_id: str
    booked_on: dt.date
    amount: Decimal
    currency: str
    incoming: bool
    payer_name: str
    payer_tax_id: str
    payer_account: str
    purpose: str


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed statement file: its format, our account it is for, and its payments."""

    format: str
    account: str
    lines: list[StatementLine]


class StatementError(ValueError):
    """A statement file that cannot be read; says where and what."""

    def __init__(self, message: str, line_no: int | None = None) -> None:
        self.message = message
        self.line_no = line_no
        if line_no is not None:
            message = _("Line %(line)d: %(problem)s") % {"line": line_no, "problem": message}
        super().__init__(message)


def parse_statement(data: bytes, *, default_currency: str = "RUB") -> Statement:
    """Detect the format by content (not by file name) and parse; raise StatementError."""
    currency = _currency_or_none(default_currency)
    if currency is None:
        raise ValueError(f"Unknown default currency: {default_currency!r}")
    head = data[:4096].removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"1CClientBankExchange"):
        return _parse_1c(data)
    if head.startswith(b"<") and b"BkToCstmrStmt" in data:
        return _parse_camt053(data, currency)
    return _parse_csv(data, currency)


def _unknown_format() -> StatementError:
    return StatementError(
        _(
            "Unknown statement format: expected CSV, 1C client-bank exchange "
            "(1CClientBankExchange) or ISO 20022 camt.053."
        )
    )


# --- values shared by the formats -------------------------------------------------------------

# Thousands separators banks print: spaces of several widths and the Swiss apostrophe.
_AMOUNT_TRANSLATION = str.maketrans(
    {" ": None, "\xa0": None, "\u202f": None, "\u2009": None, "'": None, "\u2212": "-"}
)
# ASCII digits only: Decimal and int() would also take other scripts' digits.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)
_GROUPED_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+|[+-]?\d{1,3}(?:\.\d{3})+", re.ASCII)
# No amount has forty digits; the cap keeps a pasted blob from becoming a huge Decimal.
_MAX_AMOUNT_LENGTH = 40
# A quadrillion is beyond any payment, and below it the amount fits the ledger's minor units.
_MAX_AMOUNT_DIGITS = 15


def _number(text: str) -> Decimal | None:
    """A number as banks write it ("15 000,00", "1,234.50", "-860"), or None if it is not one."""
    value = text.translate(_AMOUNT_TRANSLATION)
    commas, dots = value.count(","), value.count(".")
    if commas and dots:
        decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
        if value.count(decimal_mark) != 1:
            return None
        grouping = "." if decimal_mark == "," else ","
        value = value.replace(grouping, "").replace(decimal_mark, ".")
    elif commas == 1:
        value = value.replace(",", ".")
    elif commas > 1 or dots > 1:
        if not _GROUPED_THOUSANDS.fullmatch(value):
            return None
        value = value.replace(",", "").replace(".", "")
    if len(value) > _MAX_AMOUNT_LENGTH or not _PLAIN_NUMBER.fullmatch(value):
        return None
    return Decimal(value)


@lru_cache(maxsize=64)
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def _amount(text: str, currency: str, line_no: int, *, signed: bool = False) -> Decimal:
    """The amount in `text` to the currency's places; negative only when `signed`, never zero."""
    # Brought to the currency's places so that ids spell "15000" and "15000.00" alike.
    value = _number(text)
    if value is None:
        raise StatementError(
            _("the amount '%(amount)s' is not a number.") % {"amount": text}, line_no
        )
    if not value:
        raise StatementError(
            _("the amount '%(amount)s' is zero; a payment has an amount.") % {"amount": text},
            line_no,
        )
    if value < 0 and not signed:
        raise StatementError(
            _("the amount '%(amount)s' is negative; this format writes amounts without a sign.")
            % {"amount": text},
            line_no,
        )
    if value.adjusted() >= _MAX_AMOUNT_DIGITS:
        raise StatementError(
            _("the amount '%(amount)s' is too large for a payment.") % {"amount": text}, line_no
        )
    # A fraction finer than the currency's smallest coin would be rounded away silently later.
    exact = value.quantize(_quantum(currency))
    if exact != value:
        raise StatementError(
            _("the amount '%(amount)s' has more decimal places than %(currency)s has.")
            % {"amount": text, "currency": currency},
            line_no,
        )
    return exact


_DATE = re.compile(
    r"(?:(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"|(?P<d>\d{1,2})(?P<sep>[./])(?P<m>\d{1,2})(?P=sep)(?P<y>\d{4}))"
    # Exports often add the time of day; the booking date is what counts.
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)


@lru_cache(maxsize=4096)
def _date_or_none(text: str) -> dt.date | None:
    """yyyy-mm-dd, dd.mm.yyyy or dd/mm/yyyy (a time after it is ignored); cached as dates repeat."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    if match["year"]:
        parts = match["year"], match["month"], match["day"]
    else:
        parts = match["y"], match["m"], match["d"]
    try:
        return dt.date(*(int(part) for part in parts))
    except ValueError:
        return None


def _date(text: str, line_no: int, what: str) -> dt.date:
    found = _date_or_none(text.strip())
    if found is None:
        raise StatementError(
            _("%(what)s '%(date)s' is not a valid date (expected dd.mm.yyyy or yyyy-mm-dd).")
            % {"what": what, "date": text},
            line_no,
        )
    return found


# Russian banks still write the pre-1998 rouble code for today's rouble.
_CURRENCY_ALIASES = {"RUR": "RUB", "643": "RUB", "810": "RUB", "РУБ": "RUB", "РУБ.": "RUB"}


@lru_cache(maxsize=256)
def _currency_or_none(text: str) -> str | None:
    code = text.strip().upper()
    code = _CURRENCY_ALIASES.get(code, code)
    try:
        currency_exponent(code)
    except ValueError:
        return None
    return code


def _currency(text: str, line_no: int) -> str:
    code = _currency_or_none(text)
    if code is None:
        raise StatementError(
            _("the currency '%(currency)s' is not an ISO 4217 code such as RUB or EUR.")
            % {"currency": text},
            line_no,
        )
    return code


_NOT_ID_CHARACTERS = re.compile(r"[^0-9A-Za-z]")


def _tax_id(text: str) -> str:
    """Digits and letters only; banks write "0" (or zeros) where the payer has no tax id."""
    value = _NOT_ID_CHARACTERS.sub("", text).upper()
    return "" if not value.strip("0") else value


def _account(text: str) -> str:
    """Account numbers and IBANs are printed in groups; the spaces are not part of them."""
    return "".join(text.split())


def _words(text: str) -> str:
    return " ".join(text.split())


def _bounded_id(text: str) -> str:
    if len(text) <= EXTERNAL_ID_MAX_LENGTH:
        return text
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(parts: tuple[str, ...], seen: dict[str, int]) -> str:
    """A hash of a payment's fields; the n-th identical payment in one file gets "-n" after it."""
    # Two identical transfers on one day are two payments and both must be posted; the count
    # tells them apart while giving the same ids on every parse of the file.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    count = seen.get(digest, 0) + 1
    seen[digest] = count
    return digest if count == 1 else f"{digest}-{count}"


def _single_account(accounts: list[tuple[str, int]]) -> str:
    """Our account the statement is for; a file mixing accounts would mix up whose money it is."""
    distinct = list(dict.fromkeys(number for number, _line in accounts))
    if len(distinct) > 1:
        second_line = next(line for number, line in accounts if number == distinct[1])
        raise StatementError(
            _(
                "the file holds statements for several accounts (%(accounts)s); "
                "export one account per file."
            )
            % {"accounts": ", ".join(distinct)},
            second_line,
        )
    return distinct[0] if distinct else ""


# --- 1C client-bank exchange ------------------------------------------------------------------

_1C_DOCUMENT = "СекцияДокумент"
_1C_DOCUMENT_END = "КонецДокумента"
_1C_ACCOUNT_SECTION = "СекцияРасчСчет"
_1C_FILE_END = "КонецФайла"
# The header is written in the file's own encoding; DOS means cp866, as old bank clients wrote it.
_1C_DECLARES_DOS = re.compile(
    b"(?:"
    + re.escape("Кодировка".encode("cp866"))
    + b"|"
    + re.escape("Кодировка".encode("cp1251"))
    + rb")[ \t]*=[ \t]*dos",
    re.IGNORECASE,
)
# The standard has no currency key (it is for rouble accounts); some banks add one.
_1C_CURRENCY_KEYS = ("Валюта", "КодВалюты")
_1C_PURPOSE_PARTS = tuple(f"НазначениеПлатежа{n}" for n in range(1, 7))
_INN_PREFIX = re.compile(r"ИНН\s*([0-9]+)\s*", re.IGNORECASE)


def _decode_1c(data: bytes) -> str:
    """The file's text: UTF-8 if valid, else cp866 when it declares DOS, else Windows-1251."""
    # Some banks write UTF-8 yet declare Windows; Cyrillic in cp1251 or cp866 is never valid
    # UTF-8, so valid UTF-8 settles it.
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        encoding = "cp866" if _1C_DECLARES_DOS.search(data[:4096]) else "cp1251"
        body = data
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        raise StatementError(
            _("the file is not readable text in the %(encoding)s encoding.")
            % {"encoding": encoding},
            body.count(b"\n", 0, error.start) + 1,
        ) from None


def _parse_1c(data: bytes) -> Statement:
    text = _decode_1c(data)
    accounts: list[tuple[str, int]] = []
    currency = "RUB"
    documents: list[tuple[int, dict[str, str], dict[str, int]]] = []
    fields: dict[str, str] | None = None
    where: dict[str, int] = {}
    started = 0
    last_line = 0
    finished = False
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        last_line = number
        key, equals, value = line.partition("=")
        if fields is not None:
            if equals and key != _1C_DOCUMENT:
                key = key.rstrip()
                fields[key] = value.strip()
                where[key] = number
                continue
            if line == _1C_DOCUMENT_END:
                documents.append((started, fields, where))
                fields = None
                continue
            if key == _1C_DOCUMENT or line in (_1C_FILE_END, _1C_ACCOUNT_SECTION):
                raise StatementError(
                    _("the document that starts on line %(start)d has no %(end)s before this line.")
                    % {"start": started, "end": _1C_DOCUMENT_END},
                    number,
                )
            raise StatementError(
                _("'%(text)s' is not a key=value line inside a document.") % {"text": line},
                number,
            )
        if key == _1C_DOCUMENT:
            fields, where, started = {}, {}, number
        elif line == _1C_FILE_END:
            finished = True
            break
        elif line == _1C_DOCUMENT_END:
            raise StatementError(
                _("%(end)s without a document to end.") % {"end": _1C_DOCUMENT_END}, number
            )
        elif equals:
            key, value = key.rstrip(), value.strip()
            if key == "РасчСчет" and value:
                accounts.append((_account(value), number))
            elif key in _1C_CURRENCY_KEYS and value:
                currency = _currency(value, number)
    if fields is not None:
        raise StatementError(
            _("the document that starts on this line has no %(end)s; the file may be cut short.")
            % {"end": _1C_DOCUMENT_END},
            started,
        )
    if not finished:
        raise StatementError(
            _("the file ends without %(end)s; it may be cut short.") % {"end": _1C_FILE_END},
            max(last_line, 1),
        )
    account = _single_account(accounts)
    lines = [
        _1c_document(start, found, lines_of, account, currency)
        for start, found, lines_of in documents
    ]
    return Statement(format=FORMAT_1C, account=account, lines=lines)


def _1c_document(
    start: int, fields: dict[str, str], where: dict[str, int], account: str, currency: str
) -> StatementLine:
    def required(key: str) -> tuple[str, int]:
        value = fields.get(key, "")
        if not value:
            raise StatementError(
                _("the document has no %(key)s.") % {"key": key}, where.get(key, start)
            )
        return value, where[key]

    def optional_date(key: str) -> dt.date | None:
        value = fields.get(key, "")
        return _date(value, where[key], key) if value else None

    for key in _1C_CURRENCY_KEYS:
        if fields.get(key):
            currency = _currency(fields[key], where[key])
            break
    amount_text, amount_line = required("Сумма")
    amount = _amount(amount_text, currency, amount_line)
    date_text, date_line = required("Дата")
    written_on = _date(date_text, date_line, "Дата")
    received_on = optional_date("ДатаПоступило")
    debited_on = optional_date("ДатаСписано")

    payer_account = _account(fields.get("ПлательщикСчет") or fields.get("ПлательщикРасчСчет", ""))
    payee_account = _account(fields.get("ПолучательСчет") or fields.get("ПолучательРасчСчет", ""))
    if account and payee_account == account:
        incoming = True
    elif account and payer_account == account:
        incoming = False
    else:
        incoming = received_on is not None
    booked_on = (received_on if incoming else debited_on) or written_on

    # "Плательщик" may be "ИНН 7814695160 ООО ..." when the bank writes no Плательщик1.
    payer_name = fields.get("Плательщик1", "")
    inn_in_name = ""
    if not payer_name:
        payer_name = fields.get("Плательщик", "")
        prefix = _INN_PREFIX.match(payer_name)
        if prefix:
            inn_in_name, payer_name = prefix[1], payer_name[prefix.end() :]
    payer_tax_id = _tax_id(fields.get("ПлательщикИНН", "") or inn_in_name)

    purpose = fields.get("НазначениеПлатежа", "")
    if not purpose:
        purpose = " ".join(fields[key] for key in _1C_PURPOSE_PARTS if fields.get(key))

    external_id = "|".join(
        (
            fields.get("Номер", ""),
            written_on.isoformat(),
            payer_account or payer_tax_id,
            str(amount),
        )
    )
    return StatementLine(
        line_no=start,
        external_id=_bounded_id(external_id),
        booked_on=booked_on,
        amount=amount,
        currency=currency,
        incoming=incoming,
        payer_name=_words(payer_name),
        payer_tax_id=payer_tax_id,
        payer_account=payer_account,
        purpose=_words(purpose),
    )


# --- ISO 20022 camt.053 -----------------------------------------------------------------------


class _LineNotingBuilder(TreeBuilder):
    """Builds the tree and notes the line each Stmt and Ntry starts on, for a clerk to find."""

    noted = frozenset({"Stmt", "Ntry"})

    def __init__(self) -> None:
        super().__init__()
        self.expat = None
        self.lines: dict[Element, int] = {}

    def start(self, tag, attrs):
        element = super().start(tag, attrs)
        if self.expat is not None and tag.rpartition("}")[2] in self.noted:
            self.lines[element] = self.expat.CurrentLineNumber
        return element


def _read_xml(data: bytes) -> tuple[Element, dict[Element, int]]:
    builder = _LineNotingBuilder()
    # A statement never needs a DTD; refusing it also shuts out entity expansion bombs.
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    # The defused parser is the pure-Python one and keeps its expat parser, whose position is
    # the line of each start tag; without it entries are numbered instead.
    builder.expat = getattr(parser, "parser", None)
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException:
        raise StatementError(
            _(
                "The file is not a safe XML document: it declares a DTD or entities, "
                "which a bank statement never does."
            )
        ) from None
    except ParseError as error:
        raise StatementError(
            _("the XML is not well-formed (%(reason)s).")
            % {"reason": expat.ErrorString(error.code)},
            error.position[0],
        ) from None
    except (LookupError, ValueError):
        # Expat's answer to an encoding it cannot use (unknown, multi-byte, not text); the
        # declaration that names it is always the first line.
        raise StatementError(
            _("the XML declares an encoding it cannot be read in; use UTF-8."), 1
        ) from None
    return root, builder.lines


def _text(element: Element, path: str) -> str:
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def _texts(element: Element, path: str) -> list[str]:
    return [text for found in element.iterfind(path) if (text := (found.text or "").strip())]


def _parse_camt053(data: bytes, default_currency: str) -> Statement:
    root, element_lines = _read_xml(data)
    # Every camt.053 version has its own namespace; local names read them all alike.
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = element.tag.rpartition("}")[2]
    report = root.find("BkToCstmrStmt")
    if root.tag != "Document" or report is None:
        raise _unknown_format()

    accounts: list[tuple[str, int]] = []
    lines: list[StatementLine] = []
    seen: dict[str, int] = {}
    ordinal = 0
    for statement in report.iterfind("Stmt"):
        number = _account(_text(statement, "Acct/Id/IBAN") or _text(statement, "Acct/Id/Othr/Id"))
        if number:
            accounts.append((number, element_lines.get(statement, 1)))
        account_currency = _text(statement, "Acct/Ccy") or default_currency
        for entry in statement.iterfind("Ntry"):
            ordinal += 1
            line_no = element_lines.get(entry, ordinal)
            lines.extend(_camt_entry(entry, ordinal, line_no, account_currency, seen))
    return Statement(format=FORMAT_CAMT053, account=_single_account(accounts), lines=lines)


def _camt_fault(message: str, ordinal: int, line_no: int) -> StatementError:
    return StatementError(
        _("entry %(entry)d: %(problem)s") % {"entry": ordinal, "problem": message}, line_no
    )


def _camt_entry(
    entry: Element, ordinal: int, line_no: int, account_currency: str, seen: dict[str, int]
) -> list[StatementLine]:
    # Pending and information-only entries are not money on the account yet.
    status = _text(entry, "Sts") or _text(entry, "Sts/Cd")
    if status and status.upper() != "BOOK":
        return []

    amount_element = entry.find("Amt")
    amount_text, written_currency = "", account_currency
    if amount_element is not None:
        amount_text = (amount_element.text or "").strip()
        written_currency = amount_element.get("Ccy") or account_currency
    if not amount_text:
        raise _camt_fault(_("it has no amount (Amt)."), ordinal, line_no)
    currency = _currency_or_none(written_currency)
    if currency is None:
        raise _camt_fault(
            _("the currency '%(currency)s' is not an ISO 4217 code.")
            % {"currency": written_currency},
            ordinal,
            line_no,
        )
    amount = _amount(amount_text, currency, line_no)

    booked_text = _text(entry, "BookgDt/Dt") or _text(entry, "BookgDt/DtTm")[:10]
    if not booked_text:
        raise _camt_fault(_("it has no booking date (BookgDt)."), ordinal, line_no)
    booked_on = _date(booked_text, line_no, "BookgDt")

    direction = _text(entry, "CdtDbtInd").upper()
    if direction not in ("CRDT", "DBIT"):
        raise _camt_fault(
            _("the credit/debit indicator '%(value)s' is neither CRDT nor DBIT.")
            % {"value": direction},
            ordinal,
            line_no,
        )
    # A reversed entry is money going back where it came from (a returned refund, say), not a
    # customer paying: it must not settle an invoice.
    reversal = _text(entry, "RvslInd").lower() in ("true", "1")
    incoming = direction == "CRDT" and not reversal

    def line(tx: Element | None, value: Decimal, purpose: str, external_id: str) -> StatementLine:
        name, tax_id, account = _camt_party(tx) if tx is not None else ("", "", "")
        if not external_id:
            # NtryRef is often a sequence within one statement and EndToEndId is chosen by the
            # payer, so neither alone is unique across statements: they go into a hash.
            end_to_end = _text(tx, "Refs/EndToEndId") if tx is not None else ""
            fields = (
                _text(entry, "NtryRef"),
                "" if end_to_end.upper() == "NOTPROVIDED" else end_to_end,
                booked_on.isoformat(),
                str(value),
                currency,
                direction,
                name,
                tax_id,
                account,
                purpose,
            )
            external_id = _digest(fields, seen)
        return StatementLine(
            line_no=line_no,
            external_id=_bounded_id(external_id),
            booked_on=booked_on,
            amount=value,
            currency=currency,
            incoming=incoming,
            payer_name=name,
            payer_tax_id=tax_id,
            payer_account=account,
            purpose=purpose,
        )

    entry_reference = _text(entry, "AcctSvcrRef")
    transactions = entry.findall("NtryDtls/TxDtls")
    batch = _camt_batch(transactions, amount, currency)
    if batch:
        # A batch booking: each transaction is a payment of its own, maybe for its own invoice.
        return [
            line(
                tx,
                value,
                _camt_purpose(tx, entry),
                _text(tx, "Refs/AcctSvcrRef") or (entry_reference and f"{entry_reference}/{n}"),
            )
            for n, (tx, value) in enumerate(batch, 1)
        ]
    first = transactions[0] if transactions else None
    purposes = dict.fromkeys(p for tx in transactions if (p := _camt_purpose(tx, None)))
    purpose = " ".join(purposes) or _words(_text(entry, "AddtlNtryInf"))
    tx_reference = _text(first, "Refs/AcctSvcrRef") if first is not None else ""
    return [line(first, amount, purpose, entry_reference or tx_reference)]


def _camt_batch(
    transactions: list[Element], amount: Decimal, currency: str
) -> list[tuple[Element, Decimal]]:
    """The transactions of a batch entry with their amounts, if they add up to the entry's."""
    if len(transactions) < 2:
        return []
    batch = []
    for tx in transactions:
        value = _camt_tx_amount(tx, currency)
        if value is None:
            return []
        batch.append((tx, value))
    # Amounts in another currency, or a bank's rounding: the entry stays one payment.
    return batch if sum(value for _tx, value in batch) == amount else []


def _camt_tx_amount(tx: Element, currency: str) -> Decimal | None:
    """A transaction's own amount, or None when it has none usable (the entry then stays whole)."""
    written = tx.find("Amt")
    if written is None:
        written = tx.find("AmtDtls/TxAmt/Amt")
    if written is None or written.get("Ccy", currency) != currency:
        return None
    try:
        return _amount((written.text or "").strip(), currency, 0)
    except StatementError:
        return None


def _camt_party(tx: Element) -> tuple[str, str, str]:
    """The debtor's name, tax id and account; versions from .08 wrap the party in Pty."""
    debtor = tx.find("RltdPties/Dbtr/Pty")
    if debtor is None:
        debtor = tx.find("RltdPties/Dbtr")
    name = tax_id = ""
    if debtor is not None:
        name = _words(_text(debtor, "Nm"))
        tax_id = _camt_tax_id(debtor)
    account = _account(
        _text(tx, "RltdPties/DbtrAcct/Id/IBAN") or _text(tx, "RltdPties/DbtrAcct/Id/Othr/Id")
    )
    return name, tax_id, account


def _camt_tax_id(party: Element) -> str:
    """The id under the tax scheme (TXID) if one is named, else an organisation's first id."""
    organisation = party.findall("Id/OrgId/Othr")
    for other in (*organisation, *party.findall("Id/PrvtId/Othr")):
        scheme = (_text(other, "SchmeNm/Cd") or _text(other, "SchmeNm/Prtry")).upper()
        if scheme in ("TXID", "INN", "VAT"):
            return _tax_id(_text(other, "Id"))
    return _tax_id(_text(organisation[0], "Id")) if organisation else ""


def _camt_purpose(tx: Element, entry: Element | None) -> str:
    parts = _texts(tx, "RmtInf/Ustrd")
    # A structured creditor reference (RF…) or a referred document number names the invoice too.
    parts += _texts(tx, "RmtInf/Strd/CdtrRefInf/Ref") + _texts(tx, "RmtInf/Strd/RfrdDocInf/Nb")
    if not parts:
        parts = _texts(tx, "AddtlTxInf")
    if not parts and entry is not None:
        parts = _texts(entry, "AddtlNtryInf")
    return _words(" ".join(parts))


# --- CSV --------------------------------------------------------------------------------------


_NOT_WORD = re.compile(r"[^\w]+")


def _header_key(text: str) -> str:
    """A header as compared: lower case, no accents (so ё reads as е), punctuation as spaces."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


# Earlier names win when a file has two columns for one field ("booking date", "value date").
# Headers are compared as _header_key spells them: "№ документа" reads "no документа".
_CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "date": (
        "date", "дата", "booking date", "transaction date", "date operation",
        "date de l operation", "date comptable", "дата операции", "дата проводки",
        "дата платежа", "дата поступления", "value date", "date de valeur",
    ),
    "amount": (
        "amount", "сумма", "montant", "sum", "сумма операции", "сумма платежа",
        "montant operation", "transaction amount",
    ),
    "credit": (
        "credit", "кредит", "приход", "поступление", "сумма по кредиту", "credit amount",
        "montant credit",
    ),
    "debit": (
        "debit", "дебет", "расход", "списание", "сумма по дебету", "debit amount",
        "montant debit",
    ),
    "currency": ("currency", "валюта", "devise", "ccy", "currency code", "код валюты"),
    "payer": (
        "payer", "плательщик", "payeur", "payer name", "наименование плательщика",
        "контрагент", "counterparty", "donneur d ordre", "emetteur",
    ),
    "payer_tax_id": (
        "payer tax id", "inn", "инн", "tax id", "vat", "инн плательщика", "payer inn",
        "vat number", "tva", "numero de tva", "numero tva", "n tva", "инн контрагента",
    ),
    "payer_account": (
        "account", "счет", "payer account", "счет плательщика", "compte", "iban",
        "payer iban", "counterparty account", "счет контрагента", "compte emetteur",
    ),
    "purpose": (
        "purpose", "назначение платежа", "назначение", "libelle", "reference text",
        "description", "details", "libelle operation", "motif", "comment", "комментарий",
    ),
    "reference": (
        "reference", "id", "номер", "transaction id", "номер документа", "no документа", "ref",
        "numero", "reference operation", "reference de l operation",
    ),
}  # fmt: skip
_CSV_HEADER_TABLE: dict[str, tuple[str, int]] = {
    _header_key(alias): (field, rank)
    for field, aliases in _CSV_ALIASES.items()
    for rank, alias in enumerate(aliases)
}
_CSV_DELIMITERS = (";", ",", "\t")
# Banks put a few lines about the account above the header row.
_CSV_HEADER_SEARCH_ROWS = 20


def _csv_columns(record: list[str]) -> dict[str, int]:
    best: dict[str, tuple[int, int]] = {}
    for index, header in enumerate(record):
        found = _CSV_HEADER_TABLE.get(_header_key(header))
        if found and (found[0] not in best or found[1] < best[found[0]][0]):
            best[found[0]] = (found[1], index)
    return {field: index for field, (_rank, index) in best.items()}


def _is_csv_header(columns: dict[str, int]) -> bool:
    return "date" in columns and not columns.keys().isdisjoint({"amount", "credit", "debit"})


def _decode_csv(data: bytes) -> str | None:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _find_csv_header(text: str) -> tuple[Any, list[str], dict[str, int]] | None:
    """A reader positioned after the header row, the header, and the column of each field."""
    found = []
    for preference, delimiter in enumerate(_CSV_DELIMITERS):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for _row in range(_CSV_HEADER_SEARCH_ROWS):
                record = next(reader, None)
                if record is None:
                    break
                columns = _csv_columns(record)
                if _is_csv_header(columns):
                    found.append((-len(columns), preference, reader, record, columns))
                    break
        except csv.Error:
            continue
    if not found:
        return None
    _count, _preference, reader, header, columns = min(found, key=lambda item: item[:2])
    return reader, header, columns


def _parse_csv(data: bytes, default_currency: str) -> Statement:
    # A NUL never occurs in a text export; it marks a binary file (or UTF-16, which banks don't).
    text = _decode_csv(data) if data.strip() and b"\x00" not in data else None
    found = _find_csv_header(text) if text is not None else None
    if found is None:
        raise _unknown_format()
    reader, header, columns = found
    # Short rows are padded to the header's width, and a field the file lacks reads the last
    # padding cell (-1), which is always blank.
    padding = [""] * (max(columns.values()) + 2)

    def column(field: str) -> int:
        return columns.get(field, -1)

    date_i, amount_i = column("date"), column("amount")
    credit_i, debit_i = column("credit"), column("debit")
    currency_i, payer_i, tax_i = column("currency"), column("payer"), column("payer_tax_id")
    account_i, purpose_i, reference_i = (
        column("payer_account"),
        column("purpose"),
        column("reference"),
    )
    has_amount = "amount" in columns
    date_header = header[date_i].strip()

    lines: list[StatementLine] = []
    seen: dict[str, int] = {}
    next_start = reader.line_num + 1
    try:
        for record in reader:
            line_no, next_start = next_start, reader.line_num + 1
            cells = record + padding
            date_text = cells[date_i].strip()
            if not date_text:
                # Checked only here: a row with a date is not blank, and most rows have one.
                if not "".join(record).strip():
                    continue
                raise StatementError(_("the date is missing."), line_no)
            booked_on = _date(date_text, line_no, date_header)
            currency_text = cells[currency_i].strip()
            currency = _currency(currency_text, line_no) if currency_text else default_currency
            if has_amount:
                amount_text = cells[amount_i].strip()
                if not amount_text:
                    raise StatementError(_("the amount is missing."), line_no)
                signed = _amount(amount_text, currency, line_no, signed=True)
            else:
                signed = _credit_or_debit(
                    cells[credit_i].strip(), cells[debit_i].strip(), currency, line_no
                )
            payer = _words(cells[payer_i])
            tax_id = _tax_id(cells[tax_i])
            account = _account(cells[account_i])
            purpose = _words(cells[purpose_i])
            reference = cells[reference_i].strip()
            if reference:
                # "Номер" is often the payer's order number, unique only per payer and day.
                external_id = "|".join(
                    (
                        reference,
                        booked_on.isoformat(),
                        str(signed),
                        tax_id or account or payer,
                    )
                )
            else:
                fields = (booked_on.isoformat(), str(signed), payer, purpose, *record)
                external_id = _digest(fields, seen)
            lines.append(
                StatementLine(
                    line_no=line_no,
                    external_id=_bounded_id(external_id),
                    booked_on=booked_on,
                    amount=-signed if signed < 0 else signed,
                    currency=currency,
                    incoming=signed > 0,
                    payer_name=payer,
                    payer_tax_id=tax_id,
                    payer_account=account,
                    purpose=purpose,
                )
            )
    except csv.Error as error:
        raise StatementError(
            _("the row cannot be read as CSV (%(reason)s).") % {"reason": error},
            reader.line_num,
        ) from None
    return Statement(format=FORMAT_CSV, account="", lines=lines)


_ZERO = Decimal(0)


def _credit_or_debit(credit_text: str, debit_text: str, currency: str, line_no: int) -> Decimal:
    """A signed amount from separate credit and debit columns: money in is positive."""
    credit = debit = _ZERO
    if _nonzero(credit_text):
        credit = _amount(credit_text, currency, line_no, signed=True)
    if _nonzero(debit_text):
        debit = _amount(debit_text, currency, line_no, signed=True)
    if credit and debit:
        raise StatementError(_("the row has both a credit and a debit amount."), line_no)
    if not (credit or debit):
        raise StatementError(_("the amount is missing."), line_no)
    # Some banks write debits with a minus sign and some without: either way it is money out.
    return abs(credit) if credit else -abs(debit)


def _nonzero(text: str) -> bool:
    """Blank and "0,00" both mean the other column holds the amount."""
    if not text:
        return False
    value = _number(text)
    return value is None or value != 0
