"""Client import and export (PLT-5): safe reading of uploads, column mapping, upsert, lists out.

Reading: CSV and TXT (comma, semicolon, tab or pipe; UTF-8 with or without BOM, UTF-16 with
BOM, cp1251 as Russian 1C writes it, cp1252) and XLSX, recognised by content, not by name.
Writing goes through the client services only; reads go through visibility.
"""

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import multiprocessing
import re
import threading
import traceback
import unicodedata
import warnings
import zipfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any, BinaryIO

import openpyxl
from defusedxml import DefusedXmlException
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import EmptyResultSet, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, IntegrityError, OperationalError, connection, models, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_countries import countries
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from clientbase.accounts.models import User
from clientbase.clients import search, services, validation
from clientbase.clients.models import Client, ImportMapping
from clientbase.core import clock, customfields
from clientbase.core.audit import audit_create, audit_update, is_empty, snapshot
from clientbase.core.demo_clients import roomy_sqlite_cache
from clientbase.core.errors import ServiceError
from clientbase.core.events import EVENT_TYPES
from clientbase.core.models import AuditAction, AuditEntry, CustomField, Event
from clientbase.core.money import currency_exponent
from clientbase.core.numbering import reserve_numbers
from clientbase.core.visibility import may_assign, scope_filter, visible

# --- limits ------------------------------------------------------------------------------------

MAX_FILE_BYTES = 200 * 1024 * 1024  # a million-row CSV fits; bigger is surely a mistake
MAX_ROWS = 1_000_000
MAX_COLUMNS = 200
# An XLSX is a zip: refuse before inflating anything whose members would expand past this,
# or any large member packed tighter than real spreadsheets ever are (a zip bomb).
MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
MAX_ZIP_MEMBERS = 10_000
# Errors kept for the report; more are counted but not listed.
MAX_REPORTED_ERRORS = 100_000
PREVIEW_ROWS = 5
HEADER_SEARCH_ROWS = 20
# Rows read, matched and written together: one transaction a chunk, which holds the client
# number series, so a clerk adding a client waits for at most one chunk.
CHUNK_ROWS = 5_000
# A chunk that met another writer (an email taken, a client changed meanwhile) is matched
# and written again this many times in all, then row by row.
CHUNK_ATTEMPTS = 3
# From this size up, a file is read and its rows checked in a second process while this one
# matches and writes (checking a phone number and a tax id is half of a row's work).
PARALLEL_FROM_BYTES = 1024 * 1024
# The SQLite page cache of an import's connection while it runs, in KiB.
SQLITE_CACHE_KIB = 48 * 1024
# Rows the reading process sends at once.
_SENT_ROWS = 500
_SNIFF_CHARS = 64 * 1024
_READ_BYTES = 1024 * 1024

CSV = "csv"
XLSX = "xlsx"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# File columns map onto these client fields (status changes only through its own service);
# those the client services do not take (yet) are left out.
_IMPORTABLE: dict[str, Any] = {
    "number": gettext_lazy("Client number"),
    "kind": gettext_lazy("Kind"),
    "name": gettext_lazy("Name"),
    "company_name": gettext_lazy("Company name"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
    "tax_id": gettext_lazy("Tax id"),
    "kpp": gettext_lazy("KPP"),
    "national_id": gettext_lazy("National id"),
    "street": gettext_lazy("Street"),
    "postcode": gettext_lazy("Postcode"),
    "city": gettext_lazy("City"),
    "country": gettext_lazy("Country"),
    "currency": gettext_lazy("Currency"),
    "language": gettext_lazy("Language"),
    "owner": gettext_lazy("Owner (username)"),
}
FIELDS: dict[str, Any] = {
    name: label
    for name, label in _IMPORTABLE.items()
    if name == "number" or name in services.EDITABLE
}
MATCH_FIELDS = ("number", "email")


class UploadError(ServiceError):
    """A file refused as a whole, with the reason at the `file` field."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


# --- reading files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """What inspecting an upload found: its format, how to read it, and its column headers."""

    format: str
    headers: tuple[str, ...]
    header_row: int = 1
    encoding: str = ""
    delimiter: str = ","

    def as_dict(self) -> dict:
        """The sheet as JSON can keep it."""
        return {
            "format": self.format,
            "headers": list(self.headers),
            "header_row": self.header_row,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Sheet":
        """A sheet kept by as_dict."""
        return cls(
            format=data["format"],
            headers=tuple(data["headers"]),
            header_row=int(data["header_row"]),
            encoding=data["encoding"],
            delimiter=data["delimiter"],
        )

    @property
    def labels(self) -> list[str]:
        """Each column's name as the reports show it: its header, or its letter."""
        return [
            header or _("Column %(letter)s") % {"letter": get_column_letter(index + 1)}
            for index, header in enumerate(self.headers)
        ]


def _binary(source) -> BinaryIO:
    """The raw binary file under a Django File or upload."""
    return getattr(source, "file", source)


def _size(source: BinaryIO) -> int:
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(0)
    return size


def inspect_upload(source) -> Sheet:
    """Check an upload by content and read its headers, or raise UploadError saying why not."""
    raw = _binary(source)
    size = _size(raw)
    if size > MAX_FILE_BYTES:
        raise UploadError(
            _("The file is %(size)s; an import takes files of at most %(max)s.")
            % {"size": filesizeformat(size), "max": filesizeformat(MAX_FILE_BYTES)}
        )
    if size == 0:
        raise UploadError(_("The file is empty."))
    head = raw.read(8)
    raw.seek(0)
    if head.startswith(_OLE_MAGIC):
        raise UploadError(
            _(
                "This is an old Excel file (.xls) or a password-protected workbook: "
                "save it as .xlsx without a password, or as CSV, and upload it again."
            )
        )
    if head.startswith(_ZIP_MAGIC):
        _check_workbook_archive(raw)
        sheet = Sheet(format=XLSX, headers=())
    else:
        encoding, lines = _text_encoding(raw)
        sheet = Sheet(
            format=CSV, headers=(), encoding=encoding, delimiter=_delimiter(raw, encoding)
        )
        # Lines overcount rows when cells hold line breaks (addresses do): count rows then.
        if lines > MAX_ROWS + HEADER_SEARCH_ROWS and _more_records(
            raw, sheet, MAX_ROWS + HEADER_SEARCH_ROWS
        ):
            raise _too_many_rows()
    header_row, headers = _find_headers(raw, sheet)
    if len(headers) > MAX_COLUMNS:
        raise UploadError(
            _("The file has %(count)s columns; an import takes at most %(max)s.")
            % {"count": len(headers), "max": MAX_COLUMNS}
        )
    return Sheet(
        format=sheet.format,
        headers=tuple(h.strip() for h in headers),
        header_row=header_row,
        encoding=sheet.encoding,
        delimiter=sheet.delimiter,
    )


def _more_records(raw: BinaryIO, sheet: Sheet, limit: int) -> bool:
    """Whether the text has more rows than the limit (a row may span lines)."""
    records = _text_records(raw, sheet)
    try:
        for count, _record in enumerate(records, start=1):
            if count > limit:
                return True
    except UploadError:
        return False  # the rows read stop there: reading says so, with the row
    finally:
        records.close()  # rewinds the file
    return False


def _too_many_rows() -> UploadError:
    return UploadError(
        _("The file has more than %(max)s rows; split it into smaller files.")
        % {"max": intcomma(MAX_ROWS)}
    )


def _check_workbook_archive(raw: BinaryIO) -> None:
    """Refuse a zip that is no workbook, or that would inflate past the limits, before opening."""
    try:
        with zipfile.ZipFile(raw) as archive:
            members = archive.infolist()
    except Exception:  # zipfile has no single error for a damaged archive
        raise UploadError(
            _("This file looks like a zip archive but is damaged; save the workbook again.")
        ) from None
    finally:
        raw.seek(0)
    names = {member.filename for member in members}
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise UploadError(
            _(
                "This zip archive is not an Excel workbook: upload an .xlsx file, "
                "or a CSV or TXT file."
            )
        )
    if len(members) > MAX_ZIP_MEMBERS:
        raise UploadError(_("This workbook has too many parts to be a spreadsheet of clients."))
    if any(member.flag_bits & 0x1 for member in members):
        raise UploadError(_("This workbook is encrypted: save it without a password."))
    total = sum(member.file_size for member in members)
    bomb = any(
        member.file_size > 1024 * 1024
        and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1)
        for member in members
    )
    if total > MAX_UNCOMPRESSED_BYTES or bomb:
        raise UploadError(
            _(
                "This workbook would unpack to %(size)s, far more than its data can need; "
                "it was refused to protect the server (a “zip bomb”)."
            )
            % {"size": filesizeformat(total)}
        )


def _text_encoding(raw: BinaryIO) -> tuple[str, int]:
    """The text's encoding, after a full pass (so no row fails to decode later), and its lines."""
    head = raw.read(4)
    raw.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export: UTF-16 with a byte order mark, tab-separated.
        encoding = "utf-16"
        decoder = codecs.getincrementaldecoder(encoding)()
        lines = 0
        try:
            while chunk := raw.read(_READ_BYTES):
                lines += decoder.decode(chunk).count("\n")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _not_text() from None
        finally:
            raw.seek(0)
        return encoding, lines
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    lines = 0
    sample = b""
    while chunk := raw.read(_READ_BYTES):
        if b"\x00" in chunk:
            raw.seek(0)
            raise _not_text()
        if len(sample) < _READ_BYTES:
            sample += chunk[: _READ_BYTES - len(sample)]
        lines += chunk.count(b"\n") or chunk.count(b"\r")
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
    raw.seek(0)
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if utf8:
        return "utf-8-sig", lines
    # Both leave a few bytes undefined: the file must decode in full in the one chosen.
    for encoding in _single_byte_encodings(sample):
        try:
            while chunk := raw.read(_READ_BYTES):
                chunk.decode(encoding)
        except UnicodeDecodeError:
            continue
        finally:
            raw.seek(0)
        return encoding, lines
    raise _not_text()


def _not_text() -> UploadError:
    return UploadError(
        _(
            "This file is neither a spreadsheet (.xlsx) nor text (CSV or TXT); "
            "save it in one of these formats."
        )
    )


# Russian words are whole runs of bytes from 0xC0 up; French or Vietnamese letters with
# accents stand mostly alone between ASCII letters.
_HIGH_RUN = re.compile(rb"[\xc0-\xff]{3,}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _single_byte_encodings(sample: bytes) -> tuple[str, str]:
    """cp1251 (Russian 1C exports) and cp1252 (Western Excel), the likelier first."""
    high = len(_HIGH_BYTE.findall(sample))
    in_runs = sum(len(run) for run in _HIGH_RUN.findall(sample))
    return ("cp1251", "cp1252") if high and in_runs * 2 >= high else ("cp1252", "cp1251")


_DELIMITERS = (",", ";", "\t", "|")


def _delimiter(raw: BinaryIO, encoding: str) -> str:
    """The delimiter that splits the first lines into the most columns, the same in each."""
    text = _open_text(raw, encoding)
    try:
        sample = text.read(_SNIFF_CHARS)
    finally:
        text.detach()
        raw.seek(0)
    lines = sample.splitlines()
    if len(sample) == _SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    lines = [line for line in lines[:50] if line.strip()]
    best, best_score = ",", (0.0, 1)
    for candidate in _DELIMITERS:
        try:
            widths = [len(record) for record in csv.reader(lines, delimiter=candidate)]
        except csv.Error:
            continue
        if not widths:
            continue
        width = max(widths, key=widths.count)
        if width < 2:
            continue
        score = (widths.count(width) / len(widths), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _open_text(raw: BinaryIO, encoding: str) -> io.TextIOWrapper:
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=encoding, newline="")  # type: ignore[arg-type]


def _records(source, sheet: Sheet) -> Iterator[list[str]]:
    """Every row of the file from the first, as text cells; UploadError if it cannot go on."""
    raw = _binary(source)
    if sheet.format == XLSX:
        yield from _workbook_records(raw)
    else:
        yield from _text_records(raw, sheet)


def _text_records(raw: BinaryIO, sheet: Sheet) -> Iterator[list[str]]:
    text = _open_text(raw, sheet.encoding)
    row = 0
    try:
        reader = csv.reader(text, delimiter=sheet.delimiter)
        while True:
            row += 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as broken:
                raise UploadError(
                    _("Row %(row)s cannot be read (%(reason)s); nothing after it was read.")
                    % {"row": row, "reason": broken}
                ) from None
            # PostgreSQL cannot store NUL, and no clerk typed one (UTF-16 files may carry it).
            yield (
                [cell.replace("\x00", "") for cell in record]
                if sheet.encoding == "utf-16"
                else record
            )
    finally:
        text.detach()
        raw.seek(0)


def _entity_bomb() -> UploadError:
    return UploadError(
        _(
            "This workbook contains XML entity or DTD declarations, which spreadsheets never "
            "need and attacks use (an “XML bomb”); it was refused. Save it again from Excel "
            "or LibreOffice."
        )
    )


def _unreadable_workbook() -> UploadError:
    return UploadError(
        _("This workbook cannot be read; open it in Excel or LibreOffice and save it again.")
    )


def _refused_xml(failure: BaseException | None) -> bool:
    """Whether defusedxml refused the XML, directly or under openpyxl's own error."""
    while failure is not None:
        if isinstance(failure, DefusedXmlException):
            return True
        failure = failure.__cause__ or failure.__context__
    return False


def _workbook_records(raw: BinaryIO) -> Iterator[list[str]]:
    # A damaged workbook can make openpyxl, zipfile or zlib raise nearly anything (KeyError,
    # ValueError, ParseError, zlib.error and more): they share no base but
    # Exception, so every failure while reading becomes a refusal of the file.
    raw.seek(0)
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it skips; they do not matter here.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(raw, read_only=True, data_only=True, keep_links=False)
    except Exception as failure:  # a damaged workbook: see above
        raise _entity_bomb() if _refused_xml(failure) else _unreadable_workbook() from None
    try:
        if not book.worksheets:
            raise UploadError(_("This workbook has no worksheet."))
        sheet = book.worksheets[0]
        # The declared size may lie; without it rows come as wide as their last cell.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(min_row=1, min_col=1, values_only=True)
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except Exception as failure:  # a damaged workbook: see above
                raise _entity_bomb() if _refused_xml(failure) else _unreadable_workbook() from None
            yield [_cell_text(value) for value in values[: MAX_COLUMNS + 1]]
    finally:
        book.close()
        raw.seek(0)


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a clerk sees in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        # Postcodes, phones and tax ids typed as numbers come back as floats.
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _find_headers(source, sheet: Sheet) -> tuple[int, list[str]]:
    """The header row: the first with two filled cells, after any title lines (1C writes one)."""
    first: tuple[int, list[str]] | None = None
    for row, record in enumerate(_records(source, sheet), start=1):
        filled = sum(1 for cell in record if cell.strip())
        if filled and first is None:
            first = (row, record)
        if filled >= 2:
            return row, _trim(record)
        if row >= HEADER_SEARCH_ROWS:
            break
    if first is None:
        raise UploadError(_("The file has no rows."))
    return first[0], _trim(first[1])


def _trim(record: list[str]) -> list[str]:
    """The row without its trailing empty cells."""
    end = len(record)
    while end and not record[end - 1].strip():
        end -= 1
    return record[:end]


def read_rows(source, sheet: Sheet) -> Iterator[tuple[int, list[str]]]:
    """The data rows under the header, as (row number in the file, cells); empty rows skipped.

    Row numbers count from the file's first row, as a spreadsheet shows them (a CSV record
    spanning lines counts once). UploadError when the file cannot be read on or is too long.
    """
    width = len(sheet.headers)
    for row, record in enumerate(_records(source, sheet), start=1):
        if row <= sheet.header_row:
            continue
        if row > MAX_ROWS + sheet.header_row:
            raise _too_many_rows()
        if not any(cell.strip() for cell in record):
            continue
        yield row, (record + [""] * (width - len(record)))[:width]


def preview(source, sheet: Sheet, count: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first rows under the header, for the mapping page."""
    shown = []
    for _row, cells in read_rows(source, sheet):
        shown.append(cells)
        if len(shown) == count:
            break
    return shown


# --- column mapping ----------------------------------------------------------------------------


def _key(text: str) -> str:
    """A header or value reduced to its letters and digits: no case, accents or punctuation."""
    text = unicodedata.normalize(
        "NFKD", text.casefold().replace("đ", "d").replace("\u0451", "\u0435")
    )
    return "".join(c for c in text if c.isalnum())


# Headers as other systems and clerks write them, in English, Russian, French and Vietnamese.
_HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "number": (
        "number", "client number", "client no", "customer number", "customer no",
        "account number", "client code", "customer code", "номер", "номер клиента",
        "код", "код клиента", "код контрагента", "лицевой счет", "numéro", "numéro client",
        "n° client", "code client", "référence client", "mã khách hàng", "mã kh",
        "số khách hàng",
    ),
    "kind": (
        "kind", "type", "client type", "customer type", "тип", "тип клиента", "вид",
        "вид контрагента", "тип контрагента", "type de client", "loại", "loại khách hàng",
    ),
    "name": (
        "name", "client name", "customer name", "full name", "наименование",
        "полное наименование", "название", "фио", "клиент", "контрагент", "nom", "nom complet",
        "client", "tên", "họ tên", "họ và tên", "tên khách hàng", "khách hàng",
    ),
    "company_name": (
        "company", "company name", "organisation", "organization", "организация",
        "наименование организации", "компания", "raison sociale", "société", "entreprise",
        "tên công ty", "công ty",
    ),
    "first_name": ("first name", "given name", "имя", "prénom", "tên riêng"),
    "last_name": ("last name", "surname", "family name", "фамилия", "nom de famille", "họ"),
    "kpp": ("kpp", "кпп"),
    "national_id": (
        "national id", "id number", "passport", "паспорт", "numéro d'identité",
        "pièce d'identité", "cccd", "cmnd", "số cccd", "số cmnd",
    ),
    "email": (
        "email", "e-mail", "mail", "email address", "e-mail address", "почта",
        "электронная почта", "эл. почта", "адрес электронной почты", "courriel",
        "adresse e-mail", "adresse électronique", "mél", "thư điện tử", "địa chỉ email",
    ),
    "phone": (
        "phone", "telephone", "tel", "phone number", "mobile", "телефон", "тел",
        "мобильный", "номер телефона", "téléphone", "tél", "portable",
        "numéro de téléphone", "số điện thoại", "điện thoại", "sđt", "di động",
    ),
    "tax_id": (
        "tax id", "tax number", "vat", "vat number", "tin", "inn", "инн", "siren", "siret",
        "n° tva", "numéro de tva", "tva intracommunautaire", "mst", "mã số thuế",
    ),
    "street": (
        "street", "address", "address line", "street address", "улица", "адрес", "rue",
        "adresse", "địa chỉ", "đường",
    ),
    "postcode": (
        "postcode", "postal code", "post code", "zip", "zip code", "индекс",
        "почтовый индекс", "code postal", "cp", "mã bưu điện", "mã bưu chính",
    ),
    "city": (
        "city", "town", "город", "населенный пункт", "ville", "commune", "thành phố",
        "tỉnh/thành phố",
    ),
    "country": ("country", "country code", "страна", "код страны", "pays", "quốc gia"),
    "currency": ("currency", "валюта", "devise", "monnaie", "tiền tệ", "loại tiền"),
    "language": ("language", "lang", "язык", "langue", "ngôn ngữ"),
    "owner": (
        "owner", "manager", "account manager", "responsible", "sales rep", "ответственный",
        "менеджер", "владелец", "responsable", "commercial", "gestionnaire",
        "người phụ trách", "nhân viên phụ trách", "người quản lý",
    ),
}  # fmt: skip


def _header_table() -> dict[str, str]:
    """Header key → field: the words above plus the field labels in every shipped language."""
    table: dict[str, str] = {}
    for name, words in _HEADER_WORDS.items():
        for word in words:
            table.setdefault(_key(word), name)
    for code, _label in settings.LANGUAGES:
        with translation.override(code):
            for name, label in FIELDS.items():
                table.setdefault(_key(str(label)), name)
                table.setdefault(_key(str(Client._meta.get_field(name).verbose_name)), name)
    for key, name in list(table.items()):
        if name not in FIELDS:
            del table[key]
    return table


_HEADERS: dict[str, str] | None = None


def guess_field(header: str) -> str:
    """The client field a header most likely names, or "" when none."""
    global _HEADERS
    if _HEADERS is None:
        _HEADERS = _header_table()
    return _HEADERS.get(_key(header), "")


def guess_mapping(headers: Iterable[str], saved: dict[str, str] | None = None) -> list[str]:
    """A field (or "") per column: from a saved mapping by header, else guessed; each field once."""
    saved = saved or {}
    taken: set[str] = set()
    mapping = []
    for header in headers:
        name = saved[header] if header in saved else guess_field(header)
        if name in taken or name not in FIELDS:
            name = ""
        if name:
            taken.add(name)
        mapping.append(name)
    return mapping


def check_mapping(sheet: Sheet, mapping: list[str]) -> list[str]:
    """The mapping (a field or "" per column) if it can work, else ServiceError at `mapping`."""
    if len(mapping) != len(sheet.headers):
        raise ServiceError(_("Choose a field (or none) for every column."), field="mapping")
    labels = sheet.labels
    seen: dict[str, int] = {}
    for index, name in enumerate(mapping):
        if not name:
            continue
        if name not in FIELDS:
            raise ServiceError(
                _("“%(field)s” is not a client field that can be imported.") % {"field": name},
                field="mapping",
            )
        if name in seen:
            raise ServiceError(
                _("Columns “%(first)s” and “%(second)s” both go to %(field)s; choose one.")
                % {"first": labels[seen[name]], "second": labels[index], "field": FIELDS[name]},
                field="mapping",
            )
        seen[name] = index
    if not any(name in seen for name in MATCH_FIELDS):
        raise ServiceError(
            _(
                "Map a column to the client number or to the email: rows are matched to "
                "existing clients by one of them."
            ),
            field="mapping",
        )
    return mapping


def mapping_from_headers(sheet: Sheet, named: dict[str, str]) -> list[str]:
    """A mapping given by header name ({"E-mail": "email"}); columns not named are guessed."""
    unknown = [header for header in named if header not in sheet.headers]
    if unknown:
        raise ServiceError(
            _("The file has no column “%(header)s”.") % {"header": unknown[0]}, field="mapping"
        )
    guessed = guess_mapping(sheet.headers)
    chosen = {named[h] for h in sheet.headers if named.get(h)}
    mapping = []
    for header, guess in zip(sheet.headers, guessed, strict=True):
        if header in named:
            mapping.append(named[header] or "")
        else:
            mapping.append("" if guess in chosen else guess)
    return check_mapping(sheet, mapping)


# --- saved mappings ----------------------------------------------------------------------------

# The mapping page offers the newest of them.
SAVED_MAPPINGS_SHOWN = 200


def saved_mappings() -> list[ImportMapping]:
    """The column mappings staff saved, newest first; shared by everyone who imports."""
    return list(ImportMapping.objects.order_by("-updated_at", "-id")[:SAVED_MAPPINGS_SHOWN])


def saved_mapping(source: str) -> ImportMapping:
    """The mapping saved under this name, or ServiceError at `mapping_source`."""
    found = ImportMapping.objects.filter(source=source.strip()).first()
    if found is None:
        raise ServiceError(
            _("No column mapping is saved as “%(source)s”.") % {"source": source.strip()},
            field="mapping_source",
        )
    return found


def matching_mapping(sheet: Sheet, mappings: Iterable[ImportMapping]) -> ImportMapping | None:
    """The first (newest) of the mappings made for a file with exactly these headers."""
    headers = set(sheet.headers)
    return next((m for m in mappings if set(m.columns) == headers), None)


def mapping_save(*, source: str, sheet: Sheet, mapping: list[str], by: User) -> ImportMapping:
    """Save a file's mapping (header → field) under a source name, replacing one of that name."""
    source = source.strip()
    limit = ImportMapping._meta.get_field("source").max_length
    if not source:
        raise ServiceError(_("Name the source of such files."), field="source")
    if len(source) > limit:
        raise ServiceError(
            _("At most %(max)s characters; this has %(count)s.")
            % {"max": limit, "count": len(source)},
            field="source",
        )
    columns = dict(zip(sheet.headers, check_mapping(sheet, mapping), strict=True))
    with transaction.atomic():
        saved = ImportMapping.objects.select_for_update().filter(source=source).first()
        if saved is None:
            try:
                # A savepoint: a clerk saving the same name at the same moment wins, and this
                # save then changes theirs.
                with transaction.atomic():
                    saved = ImportMapping.objects.create(
                        source=source, columns=columns, updated_by=by, updated_at=clock.now()
                    )
            except IntegrityError:
                saved = ImportMapping.objects.select_for_update().get(source=source)
            else:
                audit_create(saved, by=by)
                return saved
        before = snapshot(saved)
        saved.columns, saved.updated_by, saved.updated_at = columns, by, clock.now()
        saved.save(update_fields=["columns", "updated_by", "updated_at"])
        audit_update(saved, before, by=by)
    return saved


# --- value parsing -----------------------------------------------------------------------------

_KIND_WORDS = {
    Client.Kind.INDIVIDUAL: (
        "individual", "person", "private", "private person", "consumer", "b2c", "физлицо",
        "физ. лицо", "физическое лицо", "частное лицо", "ип", "particulier",
        "personne physique", "cá nhân", "khách lẻ",
    ),
    Client.Kind.COMPANY: (
        "company", "business", "organisation", "organization", "b2b", "юрлицо",
        "юр. лицо", "юридическое лицо", "организация", "компания", "entreprise", "société",
        "personne morale", "professionnel", "công ty", "doanh nghiệp", "tổ chức",
    ),
}  # fmt: skip

_CURRENCY_SIGNS = {
    "€": "EUR", "euro": "EUR", "euros": "EUR", "евро": "EUR",
    "$": "USD", "us$": "USD",
    "£": "GBP",
    "₽": "RUB", "руб": "RUB", "рубль": "RUB", "рубли": "RUB", "рублей": "RUB", "rur": "RUB",
    "₫": "VND", "đ": "VND", "đồng": "VND", "dong": "VND",
}  # fmt: skip

_LANGUAGE_WORDS = {
    "en": ("english", "anglais", "английский", "tiếng anh"),
    "ru": ("russian", "russe", "русский", "tiếng nga"),
    "fr": ("french", "français", "французский", "tiếng pháp"),
    "vi": ("vietnamese", "vietnamien", "вьетнамский", "tiếng việt"),
}


# Codes people write that ISO does not have.
_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}


def _lookup_table(words: dict[str, Iterable[str]]) -> dict[str, str]:
    return {_key(word): value for value, group in words.items() for word in (value, *group)}


# Distinct values a parser remembers; a file of endless made-up values is read, not kept.
_REMEMBERED = 10_000


class _Values:
    """Parses coded values (kind, country, currency, language, owner), remembering answers."""

    def __init__(self) -> None:
        self.kinds = _lookup_table(_KIND_WORDS)
        for code, _label in settings.LANGUAGES:
            with translation.override(code):
                for value, label in Client.Kind.choices:
                    self.kinds.setdefault(_key(str(label)), value)
        self.languages = _lookup_table(_LANGUAGE_WORDS)
        for code, name in settings.LANGUAGES:
            self.languages.setdefault(_key(name), code)
        self.codes = [code for code, _name in settings.LANGUAGES]
        # Signs have no letters, so they are looked up as written, words without accents.
        self.currencies = {sign: code for sign, code in _CURRENCY_SIGNS.items()}
        self.currencies |= {_key(s): code for s, code in _CURRENCY_SIGNS.items() if _key(s)}
        self.owners: dict[str, User | None] = {}
        # text → (value, "") or ("", message), per parser
        self.known: dict[str, dict[str, tuple[Any, str]]] = {
            "kind": {},
            "country": {},
            "currency": {},
            "language": {},
        }

    def _remembered(self, parser: str, text: str, parse) -> Any:
        known = self.known[parser]
        answer = known.get(text)
        if answer is None:
            try:
                answer = (parse(text), "")
            except ValidationError as refused:
                answer = ("", refused.messages[0])
            if len(known) < _REMEMBERED:
                known[text] = answer
        if answer[1]:
            raise ValidationError(answer[1])
        return answer[0]

    def kind(self, text: str) -> str:
        return self._remembered("kind", text, self._kind)

    def country(self, text: str) -> str:
        return self._remembered("country", text, self._country)

    def currency(self, text: str) -> str:
        return self._remembered("currency", text, self._currency)

    def language(self, text: str) -> str:
        return self._remembered("language", text, self._language)

    def _kind(self, text: str) -> str:
        found = self.kinds.get(_key(text))
        if found is None:
            raise ValidationError(
                _("Unknown kind “%(value)s”: write individual or company.") % {"value": text}
            )
        return found

    @staticmethod
    def _country(text: str) -> str:
        code = countries.alpha2(_COUNTRY_ALIASES.get(text.strip().upper(), text.strip().upper()))
        if code:
            return code
        for language, _name in settings.LANGUAGES:
            code = countries.by_name(text.strip(), language=language, insensitive=True)
            if code:
                return code
        raise ValidationError(
            _("Unknown country “%(value)s”: use a two-letter code such as FR, RU or VN.")
            % {"value": text}
        )

    def _currency(self, text: str) -> str:
        code = self.currencies.get(text.strip().casefold()) or self.currencies.get(
            _key(text) or "?"
        )
        code = code or text.strip().upper()
        try:
            currency_exponent(code)
        except ValueError:
            raise ValidationError(
                _("Unknown currency “%(value)s”: use a three-letter code such as EUR.")
                % {"value": text}
            ) from None
        return code

    def _language(self, text: str) -> str:
        value = text.strip().lower().replace("_", "-")
        if value in self.codes:
            return value
        if value.split("-")[0] in self.codes:
            return value.split("-")[0]
        found = self.languages.get(_key(text))
        if found is None:
            raise ValidationError(
                _("Unknown language “%(value)s”: use one of %(codes)s.")
                % {"value": text, "codes": ", ".join(self.codes)}
            )
        return found

    def owner(self, text: str) -> User:
        name = text.strip().casefold()
        if name not in self.owners:
            users = User.objects.select_related("org_unit").filter(is_active=True)
            found = users.filter(username__iexact=name).first()
            if found is None and "@" in name:
                matches = list(users.filter(email__iexact=name)[:2])
                found = matches[0] if len(matches) == 1 else None
            if len(self.owners) < _REMEMBERED:
                self.owners[name] = found
        else:
            found = self.owners[name]
        if found is None:
            raise ValidationError(
                _("No active user has the username “%(value)s”.") % {"value": text.strip()}
            )
        return found


def _unquoted(text: str) -> str:
    """A cell without the apostrophe our exports put before =, +, -, @ (so exports re-import)."""
    if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_STARTS:
        return text[1:]
    return text


# --- importing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One problem of the file: its row as a spreadsheet numbers it, the column, what is wrong."""

    row: int
    column: str
    message: str


@dataclass
class ImportResult:
    """What an import did, or what a dry run would do, row by row."""

    dry_run: bool
    all_or_nothing: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    # All-or-nothing with a failed row: nothing was saved, the counts say what would have been.
    rolled_back: bool = False

    @property
    def saved(self) -> bool:
        """Whether the import wrote its rows."""
        return not self.dry_run and not self.rolled_back

    def add_error(self, error: RowError) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    def as_dict(self) -> dict:
        """The result as JSON can keep it."""
        return {
            "dry_run": self.dry_run,
            "all_or_nothing": self.all_or_nothing,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": [[e.row, e.column, e.message] for e in self.errors],
            "errors_total": self.errors_total,
            "rolled_back": self.rolled_back,
        }


class _FirstRows:
    """Which row of the file first used each key: a hash table in flat arrays.

    A million keys take about 40 MB here, a dict of a million emails several times that.
    Text keys are kept as two independent 64-bit hashes, so two different keys pass for one
    about once in 10^26 imports; integer keys (client ids) are kept as they are.
    """

    def __init__(self, slots: int = 1 << 12) -> None:
        self._used = 0
        self._allocate(slots)

    def _allocate(self, slots: int) -> None:
        self._mask = slots - 1
        self._keys = array("q", bytes(8 * slots))  # 0: an empty slot
        self._checks = array("q", bytes(8 * slots))
        self._rows = array("i", bytes(4 * slots))

    @staticmethod
    def _hashes(key: str | int) -> tuple[int, int]:
        if isinstance(key, int):
            return key or -1, 0
        # hash() never gives -1, which stands in for 0, the mark of an empty slot.
        return hash(key) or -1, hash(key[::-1] + "\x00")

    def _slot(self, key: int, check: int) -> int:
        keys, checks, mask = self._keys, self._checks, self._mask
        # Spread the bits (Fibonacci hashing): consecutive ids would otherwise fill one long
        # run of slots, and every miss would walk it to the end.
        slot = ((key * 0x9E3779B97F4A7C15) >> 24) & mask
        while keys[slot] and (keys[slot] != key or checks[slot] != check):
            slot = (slot + 1) & mask
        return slot

    def get(self, key: str | int) -> int:
        """The row that used the key, or 0."""
        return self._rows[self._slot(*self._hashes(key))]

    def first(self, key: str | int, row: int) -> int:
        """The row that used the key first, noting this row when it is the first."""
        hashed, check = self._hashes(key)
        slot = self._slot(hashed, check)
        if self._keys[slot]:
            return self._rows[slot]
        self._keys[slot], self._checks[slot], self._rows[slot] = hashed, check, row
        self._used += 1
        if self._used * 10 > self._mask * 7:
            self._grow()
        return row

    def _grow(self) -> None:
        old = zip(self._keys, self._checks, self._rows, strict=True)
        self._allocate((self._mask + 1) * 2)
        for key, check, row in old:
            if key:
                slot = self._slot(key, check)
                self._keys[slot], self._checks[slot], self._rows[slot] = key, check, row


@dataclass(slots=True)
class _Row:
    """One data row: its number in the file, the values read from it, what is wrong with it."""

    number: int
    clean: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field or "", message)
    # The owner's cell, looked up by the importer (the reader may run where no database is),
    # and how many of the errors come from columns before it.
    owner: str = ""
    owner_at: int = 0
    # The phone and tax id checked ahead for the row's own country and kind (by a reader in
    # a second process): field → (country, kind, text, value, message); used when they hold.
    checked: dict[str, tuple[str, str, str, str, str]] | None = None


_CREATE, _UPDATE, _UNCHANGED = "create", "update", "unchanged"


@dataclass(slots=True)
class _Plan:
    """What one attempt at a chunk makes of a row: a new client, a change, nothing, or errors."""

    row: _Row
    kind: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)
    current: dict[str, Any] | None = None  # the matched client's values, as the lookup read them
    values: dict[str, Any] = field(default_factory=dict)  # new: every column; change: fields
    client: Client | None = None  # a change: the client as it will be saved
    changes: dict[str, dict] = field(default_factory=dict)  # a change: audit log changes
    columns: list[str] = field(default_factory=list)  # a change: the columns to write


class _Retry(Exception):
    """A chunk met another writer (a client changed, an email taken meanwhile): match it again."""


# The lookup reads these of each client a row may match; what the file has is compared to them.
_COMPARED = tuple(name for name in FIELDS if name not in ("number", "owner"))
_CURRENT = ("pk", "number", "version", "owner_id", "org_unit_id", *_COMPARED)
# Columns a new client gets from the import; the others take their model defaults.
_NEW_DEFAULTS: dict[str, Any] = {
    "kind": Client.Kind.COMPANY.value,
    "name": "",
    "first_name": "",
    "last_name": "",
    "company_name": "",
    "kpp": "",
    "national_id": "",
    "email": "",
    "phone": "",
    "tax_id": "",
    "street": "",
    "postcode": "",
    "city": "",
    "country": "",
    "language": Client._meta.get_field("language").default,
}
_NEW_COLUMNS = ("number", *_NEW_DEFAULTS, "currency", "owner_id", "org_unit_id")
_NEW_FIELDS = (*_NEW_COLUMNS[:-2], "owner", "org_unit", "created_at")
# The text fields the client services strip (services._TEXT_FIELDS that an import fills).
_STRIPPED = ("first_name", "last_name", "company_name", "national_id")
_AUDIT_FIELDS = (
    "at", "actor", "org_unit", "owner", "action", "object_type", "object_id", "object_repr",
    "changes",
)  # fmt: skip
_EVENT_FIELDS = (
    "occurred_at", "actor", "client", "org_unit", "owner", "category", "type", "reference",
    "subject_type", "subject_id", "details",
)  # fmt: skip


def _json_text(value: Any) -> str:
    """A str, int or None as JSON, as the JSON fields write it (json.dumps, ASCII only)."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    return "null" if value is None else json.dumps(value, cls=DjangoJSONEncoder)


def _db_errors() -> tuple[tuple[type[Exception], ...], ...]:
    """The database's (clashes, waits, refusals), as Django and as the driver raise them.

    COPY goes to psycopg directly, so its errors come unwrapped.
    """
    driver = connection.Database
    return (
        (IntegrityError, driver.IntegrityError),
        (OperationalError, driver.OperationalError),
        (DataError, driver.DataError),
    )


def _insert(model: type[models.Model], fields: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows of database-ready values: one prepared statement, or COPY on PostgreSQL.

    The same as core.demo_clients._insert, which cannot be imported here without Faker.
    """
    meta = model._meta
    named = [meta.get_field(name) for name in fields]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f not in named]
    defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
    if defaults:
        rows = [row + defaults for row in rows]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in named + rest)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * (len(named) + len(rest)))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


class _History:
    """Audit entries and newsfeed events of an import, as client_create and client_update write them."""

    def __init__(self, by: User) -> None:
        self.by_id = by.pk
        self.client_type = ContentType.objects.get_for_model(Client).pk
        self.created_type = EVENT_TYPES["client.created"]
        self.changed_type = EVENT_TYPES["client.changed"]
        # A new client's audit entry lists every field's first value that is not empty, as
        # audit_create does. Those an import does not fill are the same for all, so their
        # JSON is made once; the filled ones are added per client, empty ones left out (as
        # json.dumps writes them, so the entry reads back as audit_create's).
        # (a fixed value as JSON, None) or (a filled field's name, the head of its JSON)
        self.parts: list[tuple[str, str | None]] = []
        for name, value in snapshot(Client()).items():
            head = f'{encode_basestring_ascii(name)}: {{"before": null, "after": '
            if name in _NEW_COLUMNS or name == "created_at":
                self.parts.append((name, head))
            elif not is_empty(value):
                self.parts.append((f"{head}{_json_text(value)}}}", None))

    def _created_changes(self, values: dict[str, Any]) -> str:
        texts = []
        for part, head in self.parts:
            if head is None:
                texts.append(part)
            # Filled values are text, ids or None: is_empty inlined, as this runs per field.
            elif (value := values[part]) is not None and value != "":
                text = encode_basestring_ascii(value) if isinstance(value, str) else str(value)
                texts.append(f"{head}{text}}}")
        return "{" + ", ".join(texts) + "}"

    def created(self, plans: list["_Plan"], ids: dict[str, int], now: dt.datetime) -> None:
        at = connection.ops.adapt_datetimefield_value(now)
        created_at = DjangoJSONEncoder().default(now)
        audit, events = [], []
        for plan in plans:
            values = plan.values
            values["created_at"] = created_at
            pk, number = ids[values["number"]], values["number"]
            owner, unit = values["owner_id"], values["org_unit_id"]
            audit.append(
                (
                    at, self.by_id, unit, owner, AuditAction.CREATE, self.client_type, str(pk),
                    f"{number} {values['name']}"[:200], self._created_changes(values),
                )
            )  # fmt: skip
            events.append(
                (
                    at, self.by_id, pk, unit, owner, self.created_type.category.value,
                    self.created_type.code, number, self.client_type, str(pk),
                    f'{{"name": {_json_text(values["name"])}}}',
                )
            )  # fmt: skip
        _insert(AuditEntry, _AUDIT_FIELDS, audit)
        _insert(Event, _EVENT_FIELDS, events)

    def changed(self, plans: list["_Plan"], now: dt.datetime) -> None:
        at = connection.ops.adapt_datetimefield_value(now)
        audit, events = [], []
        for plan in plans:
            client = plan.client
            assert client is not None
            owner, unit = client.owner_id, client.org_unit_id
            audit.append(
                (
                    at, self.by_id, unit, owner, AuditAction.UPDATE, self.client_type,
                    str(client.pk), str(client)[:200],
                    json.dumps(plan.changes, cls=DjangoJSONEncoder),
                )
            )  # fmt: skip
            fields = sorted(services.FIELD_BY_COLUMN[column] for column in plan.changes)
            events.append(
                (
                    at, self.by_id, client.pk, unit, owner, self.changed_type.category.value,
                    self.changed_type.code, client.number, self.client_type, str(client.pk),
                    json.dumps({"fields": fields}),
                )
            )  # fmt: skip
        _insert(AuditEntry, _AUDIT_FIELDS, audit)
        _insert(Event, _EVENT_FIELDS, events)


_PRECHECKED = ("phone", "tax_id")


class _Reader:
    """Reads a row's cells into values, each checked alone; no database, so any process can."""

    def __init__(self, columns: list[tuple[int, str]], values: "_Values") -> None:
        self.values = values
        self.parsers = [(index, name, self._parser(name)) for index, name in columns]
        self.limits = {
            name: Client._meta.get_field(name).max_length
            for name in FIELDS
            if name not in ("owner",)
        }
        # In a second process: check the phone and tax id at once, for the row's own
        # country and kind, which they are checked against unless the row matches a client.
        self.ahead = False

    def read(self, number: int, cells: list[str]) -> _Row:
        """A row's values read and checked one by one; the owner's cell is left to the importer."""
        row = _Row(number=number)
        clean = row.clean
        for index, name, parser in self.parsers:
            text = cells[index].strip()
            if not text:
                continue  # an empty cell leaves the client's value as it is
            if text[0] == "'":
                text = _unquoted(text)
            if parser is None:
                row.owner, row.owner_at = text, len(row.errors)
                continue
            try:
                clean[name] = parser(text)
            except ValidationError as refused:
                row.errors.append((name, refused.messages[0]))
        if self.ahead and not row.errors and ("phone" in clean or "tax_id" in clean):
            country = clean.get("country", "")
            kind = str(clean.get("kind", Client.Kind.COMPANY.value))
            row.checked = {}
            for name in _PRECHECKED:
                if name in clean:
                    try:
                        value, message = self.normal(name, clean[name], country, kind), ""
                    except ValidationError as refused:
                        value, message = "", refused.messages[0]
                    row.checked[name] = (country, kind, clean[name], value, message)
        return row

    def normal(self, name: str, text: str, country: str, kind: str) -> str:
        """The phone or tax id in canonical form, or ValidationError, as the client form says."""
        if name == "phone":
            return self.fits("phone", validation.normalize_phone(text, country=country))
        return self.fits("tax_id", validation.normalize_tax_id(text, country=country, kind=kind))

    def _parser(self, name: str):
        if name == "owner":
            return None  # looked up by the importer
        if name in ("kind", "country", "currency", "language"):
            return getattr(self.values, name)
        if name == "email":
            return lambda text: self.fits("email", _email(text))
        if name in _PRECHECKED:
            return str  # checked once the row's country and kind are known
        return lambda text: self.fits(name, text)

    def fits(self, name: str, text: str) -> str:
        limit = self.limits[name]
        if limit and len(text) > limit:
            raise ValidationError(
                _("At most %(max)s characters; this has %(count)s.")
                % {"max": limit, "count": len(text)}
            )
        return text


class _Importer:
    """Reads, checks, matches and writes rows, remembering what earlier rows of the file held."""

    def __init__(self, sheet: Sheet, mapping: list[str], by: User, result: ImportResult) -> None:
        self.by = by
        self.result = result
        self.columns = [(index, name) for index, name in enumerate(mapping) if name]
        labels = sheet.labels
        self.label = {name: labels[index] for index, name in self.columns}
        self.values = _Values()
        self.reader = _Reader(self.columns, self.values)
        self.emails = _FirstRows()  # lowercased email → first row using it
        self.numbers = _FirstRows()
        self.clients = _FirstRows()  # client id → the row that changes it
        self.may_give: dict[tuple[int, int], bool] = {}
        self.sees_all = scope_filter(Client, by) is None
        self.history = _History(by)
        # Read once, so checking the custom values of a client costs no query.
        self.custom = _CustomFields()

    # reading one row -----------------------------------------------------------------------

    def take(self, row: _Row) -> _Row:
        """A row as the reader left it, its owner looked up and checked against earlier rows."""
        if row.owner:
            try:
                row.clean["owner"] = self.values.owner(row.owner)
            except ValidationError as refused:
                row.errors.insert(row.owner_at, ("owner", refused.messages[0]))
        if not row.errors:
            self._file_duplicates(row)
        return row

    def _file_duplicates(self, row: _Row) -> None:
        number = row.clean.get("number")
        email = row.clean.get("email", "").lower()
        if number and (first := self.numbers.first(number, row.number)) != row.number:
            row.errors.append(
                ("number", _("This client number is also in row %(row)s of this file.")
                 % {"row": first})
            )  # fmt: skip
        if email and (first := self.emails.first(email, row.number)) != row.number:
            row.errors.append(
                ("email", _("This email is also in row %(row)s of this file.") % {"row": first})
            )

    # matching rows to clients --------------------------------------------------------------

    def plan(self, rows: list[_Row], claimed: dict[int, int], *, locking: bool) -> list[_Plan]:
        """Match a chunk's rows to clients (a query per key) and work out what each row does."""
        numbers = {row.clean["number"] for row in rows if "number" in row.clean}
        emails = {row.clean["email"].lower() for row in rows if "email" in row.clean}
        by_number = _live_by_number(numbers) if numbers else {}
        by_email = _live_by_email(emails) if emails else {}
        found = {c["pk"] for c in (*by_number.values(), *by_email.values())}
        if self.sees_all or not found:
            seen = found
        else:
            visible_ones = visible(Client.everything.filter(pk__in=found), self.by).order_by()
            seen = set(visible_ones.values_list("pk", flat=True))
        plans = [self._match(row, by_number, by_email, seen, claimed) for row in rows]
        for plan in plans:
            if not plan.errors:
                self._complete(plan)
        self._changes([plan for plan in plans if plan.kind == _UPDATE], locking=locking)
        return plans

    def _match(
        self, row: _Row, by_number: dict, by_email: dict, seen: set[int], claimed: dict[int, int]
    ) -> _Plan:
        plan = _Plan(row=row)
        number = row.clean.get("number")
        email = row.clean.get("email", "").lower()
        client = by_number.get(number) if number else None
        if client is not None and client["pk"] not in seen:
            plan.errors.append(("number", _("No client you may see has this number.")))
            return plan
        owner_of_email = by_email.get(email) if email else None
        if client is None and owner_of_email is not None:
            if owner_of_email["pk"] not in seen:
                plan.errors.append(("email", _("This email belongs to a client you may not see.")))
                return plan
            client = owner_of_email
        elif (
            client is not None
            and owner_of_email is not None
            and owner_of_email["pk"] != client["pk"]
        ):
            message = (
                _("Client %(number)s already uses this email.")
                % {"number": owner_of_email["number"]}
                if owner_of_email["pk"] in seen
                else _("Another client already uses this email.")
            )
            plan.errors.append(("email", message))
            return plan
        if client is not None:
            first = self.clients.get(client["pk"]) or claimed.get(client["pk"])
            if first:
                plan.errors.append(
                    ("", _("Row %(row)s of this file already changes this client.")
                     % {"row": first})
                )  # fmt: skip
                return plan
            claimed[client["pk"]] = row.number
        plan.current = client
        return plan

    def _complete(self, plan: _Plan) -> None:
        """Check what depends on several fields, and on the client when there is one."""
        client, clean, errors = plan.current, dict(plan.row.clean), plan.errors
        clean.pop("number", None)
        if client is None:
            if not any(name in clean for name in ("name", "company_name", "last_name")):
                errors.append(("name", _("A new client needs a name.")))
            if "email" not in clean:
                errors.append(("email", _("A new client needs an email.")))
        country = clean.get("country", client["country"] if client else "")
        kind = clean.get("kind", client["kind"] if client else Client.Kind.COMPANY)
        if (
            kind == Client.Kind.COMPANY
            and "name" in clean
            and "company_name" in FIELDS
            and "company_name" not in clean
        ):
            # A company's name is its company name; the services derive one from the other.
            clean["company_name"] = clean["name"]
        if (
            kind == Client.Kind.INDIVIDUAL
            and "company_name" in clean
            and not any(name in clean for name in ("name", "first_name", "last_name"))
        ):
            # One name column for people and companies alike: a person's is their name.
            clean["name"] = clean.pop("company_name")
        # A cell the same as the client's value changes nothing, so it costs no check.
        if "kpp" in clean and not (client and clean["kpp"] == client["kpp"]):
            try:
                clean["kpp"] = validation.validate_kpp(clean["kpp"])
            except ValidationError as refused:
                errors.append(("kpp", refused.messages[0]))
        checked = plan.row.checked or {}
        for name in _PRECHECKED:
            if name not in clean or (client and clean[name] == client[name]):
                continue
            ahead = checked.get(name)
            if ahead is not None and ahead[:3] == (country, kind, clean[name]):
                if ahead[4]:
                    errors.append((name, ahead[4]))
                else:
                    clean[name] = ahead[3]
                continue
            try:
                clean[name] = self.reader.normal(name, clean[name], country, kind)
            except ValidationError as refused:
                errors.append((name, refused.messages[0]))
        owner = clean.get("owner", self.by)
        if client is None or ("owner" in clean and owner.pk != client["owner_id"]):
            unit = owner.org_unit if owner is not None else None
            if unit is None:
                errors.append(("owner", _("This user belongs to no unit, so cannot own clients.")))
            elif not self._may_give(owner, unit):
                errors.append(
                    ("owner", _("You can give clients only to people and units within your reach."))
                )
            else:
                clean["owner"] = owner
                clean["org_unit"] = unit
        if errors:
            return
        if client is None:
            plan.kind = _CREATE
            plan.values = _new_client(clean, errors, self.custom)
            return
        for name in list(clean):
            # Related rows compare by id, so an unchanged owner costs no query.
            if name in ("owner", "org_unit"):
                current, value = client[f"{name}_id"], clean[name].pk
            else:
                current, value = client[name], clean[name]
            if name == "email":
                # The address matched in any case; its case alone is no reason to write.
                current, value = current.lower(), value.lower()
            if current == value:
                del clean[name]
        plan.kind = _UPDATE if clean else _UNCHANGED
        plan.values = clean

    def _may_give(self, owner: User, unit) -> bool:
        key = (owner.pk, unit.pk)
        if key not in self.may_give:
            self.may_give[key] = may_assign(self.by, owner=owner, org_unit=unit)
        return self.may_give[key]

    def _changes(self, plans: list[_Plan], *, locking: bool) -> None:
        """Apply each change to its client as client_update would, noting the audit changes."""
        if not plans:
            return
        # By id from every row, not the live ones: see _live_by_number.
        ids = [plan.current["pk"] for plan in plans if plan.current is not None]
        found = Client.everything.filter(pk__in=ids)
        if locking and connection.features.has_select_for_update:
            found = found.select_for_update(of=("self",))
        clients = {client.pk: client for client in found.order_by()}
        for plan in plans:
            current = plan.current
            assert current is not None
            client = clients.get(current["pk"])
            if (
                client is None
                or client.version != current["version"]
                or client.merged_into_id is not None
                or client.deleted_at is not None
            ):
                if locking:
                    raise _Retry
                plan.kind, plan.errors = "", [("", str(_CHANGED_MEANWHILE))]
                continue
            _apply_change(plan, client, self.custom)

    # writing ------------------------------------------------------------------------------

    def write(self, plans: list[_Plan]) -> None:
        """Save a chunk's new and changed clients with their history, in the caller's transaction."""
        now = clock.now()
        created = [plan for plan in plans if plan.kind == _CREATE and not plan.errors]
        changed = [plan for plan in plans if plan.kind == _UPDATE and not plan.errors]
        if created:
            numbers = reserve_numbers("client", len(created))
            at = connection.ops.adapt_datetimefield_value(now)
            rows = []
            columns = itemgetter(*_NEW_COLUMNS)
            for plan, number in zip(created, numbers, strict=True):
                plan.values["number"] = number.text
                rows.append((*columns(plan.values), at))
            # New rows get greater ids than any now, so they are read back by a range of the
            # primary key: cheaper than looking up thousands of numbers. On PostgreSQL others'
            # rows may be in the range too; the numbers tell which are ours.
            last = Client.everything.order_by("-pk").values_list("pk", flat=True).first() or 0
            with search.search_index_in_one_statement():
                _insert(Client, _NEW_FIELDS, rows)
            ours = {number.text for number in numbers}
            found = Client.everything.filter(pk__gt=last).order_by()
            ids = {n: pk for n, pk in found.values_list("number", "pk") if n in ours}
            for plan in created:
                plan.values["pk"] = ids[plan.values["number"]]
            self.history.created(created, ids, now)
        if changed:
            _save_changes(changed)
            _move_merged(changed)
            self.history.changed(changed, now)

    def settle(self, rows: list[_Row], plans: list[_Plan]) -> None:
        """Count and report a chunk's rows once its plans are final (written, or a dry run)."""
        result = self.result
        for plan in plans:
            if plan.errors:
                plan.row.errors.extend(plan.errors)
            elif plan.kind == _CREATE:
                result.created += 1
                if "pk" in plan.values:
                    self.clients.first(plan.values["pk"], plan.row.number)
            elif plan.kind == _UPDATE:
                result.updated += 1
            else:
                result.unchanged += 1
            if plan.current is not None:
                self.clients.first(plan.current["pk"], plan.row.number)
        for row in rows:
            if row.errors:
                self.report(row)

    def report(self, row: _Row) -> None:
        self.result.failed += 1
        for name, message in row.errors:
            labels = (self.label.get(n) for n in (name, *_COLUMNS_OF_FIELD.get(name, ())))
            self.result.add_error(RowError(row.number, next(filter(None, labels), ""), message))


def _live_by_number(numbers: set[str]) -> dict[str, dict[str, Any]]:
    """The live clients with these numbers, as the lookup reads them, by number.

    Read from every row and sorted out here: with the live clients' condition
    (merged_into IS NULL…) in the query and a long IN list, SQLite without statistics takes
    the merged_into index, which every live client is in, and reads them all.
    """
    found = Client.everything.filter(number__in=numbers).order_by()
    return {
        c["number"]: c
        for c in found.values(*_CURRENT, "merged_into_id", "deleted_at")
        if c.pop("merged_into_id") is None and c.pop("deleted_at") is None
    }


def _live_by_email(emails: set[str]) -> dict[str, dict[str, Any]]:
    """The live clients with these emails (lowercased), by email.

    The query names the unique index on LOWER(email) of live clients to SQLite, for the same
    reason as in _live_by_number.
    """
    meta = Client._meta
    quote = connection.ops.quote_name
    email = quote(meta.get_field("email").column)
    columns = ", ".join(
        quote(meta.pk.column if n == "pk" else meta.get_field(n).column) for n in _CURRENT
    )
    index = " INDEXED BY client_email_unique_ci" if connection.vendor == "sqlite" else ""
    sql = (
        f"SELECT {columns}, LOWER({email}) FROM {quote(meta.db_table)}{index} "
        f"WHERE LOWER({email}) IN ({', '.join(['%s'] * len(emails))}) "
        f"AND {quote('merged_into_id')} IS NULL AND {quote('deleted_at')} IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(emails))
        return {row[-1]: dict(zip(_CURRENT, row, strict=False)) for row in cursor.fetchall()}


_CHANGED_MEANWHILE = gettext_lazy(
    "Someone else changed this client while the file was imported; import the file again."
)
# A service names the unit when the owner is at fault; the file has only the owner column.
_FIELD_OF_ERROR = {"org_unit": "owner", "__all__": ""}
# A field the file has no column for is reported at the column its value came from.
_COLUMNS_OF_FIELD = {
    "name": ("company_name", "last_name"),
    "company_name": ("name",),
    "last_name": ("name", "company_name"),
    "first_name": ("name", "company_name"),
}


# An address this plain passes Django's email validator as it is (its domain lowercased);
# the check costs a tenth of the validator's, and anything else still goes through it.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*"
    r"\.(?!-)[A-Za-z-]{2,63}(?<!-)"
)


def _email(text: str) -> str:
    """validation.normalize_email, quicker for the common plain address."""
    if len(text) <= 320 and _PLAIN_EMAIL.fullmatch(text):
        local, _at, domain = text.rpartition("@")
        return f"{local}@{domain.lower()}"
    return validation.normalize_email(text)


class _CustomFields:
    """The clients' custom field definitions, read once for an import (customfields.clean_values)."""

    def __init__(self) -> None:
        self.fields = {f.code: f for f in customfields.fields_for(CustomField.AppliesTo.CLIENT)}
        self.secret = customfields.secret_codes()
        # A field with a rule that may require it; a new client from a file has no values.
        self.may_require = [f for f in self.fields.values() if f.required or f.required_when_field]

    def required_of_new(self, values: dict[str, Any], found: dict[str, list[str]]) -> None:
        """clean_values for a new client, which has no custom values: the required ones."""
        kind = values["kind"]
        wanted = [f for f in self.may_require if customfields.applies_to_kind(f, kind)]
        if not wanted:
            return
        record = Client(**{name: values[name] for name in _NEW_COLUMNS if name in values})
        for wanted_field in wanted:
            if customfields.is_required(wanted_field, record):
                found[f"custom.{wanted_field.code}"] = [
                    _("%(field)s is required.") % {"field": wanted_field.label}
                ]

    def clean(self, client: Client, found: dict[str, list[str]]) -> None:
        """clean_values with no new values: the kind's fields kept, the required ones there."""
        kind = client.kind
        values = dict(client.custom or {})
        kept = {
            code: values[code]
            for code, definition in self.fields.items()
            if customfields.applies_to_kind(definition, kind) and code in values
        }
        kept |= {code: value for code, value in values.items() if code not in self.fields}
        client.custom = kept
        for code, definition in self.fields.items():
            if (
                customfields.applies_to_kind(definition, kind)
                and code not in kept
                and f"custom.{code}" not in found
                and customfields.is_required(definition, client)
            ):
                found[f"custom.{code}"] = [
                    _("%(field)s is required.") % {"field": definition.label}
                ]
        client.custom_search = customfields.search_text(kept, self.secret)


def _new_client(
    clean: dict[str, Any], errors: list[tuple[str, str]], custom: _CustomFields
) -> dict[str, Any]:
    """A new client's columns from a row, as client_create would make them (services._clean).

    The row's values are already normalised and checked one by one; what remains is what
    depends on several fields: the name by kind, which clients may have a KPP, and the
    custom fields a new client must have.
    """
    values = {**_NEW_DEFAULTS, "currency": settings.DEFAULT_CURRENCY}
    for name, value in clean.items():
        if name in ("owner", "org_unit"):
            values[f"{name}_id"] = value.pk
        else:
            values[name] = value
    for name in _STRIPPED:
        values[name] = values[name].strip()
    values["name"] = values["name"].strip()
    found: dict[str, list[str]] = {}
    # services._clean_identity, on the fields an import fills
    if values["kind"] == Client.Kind.INDIVIDUAL:
        if values["first_name"] or values["last_name"]:
            if not values["last_name"]:
                found["last_name"] = [_("A person needs a last name.")]
            values["name"] = f"{values['first_name']} {values['last_name']}".strip()
        values["company_name"] = ""
    else:
        values["first_name"] = values["last_name"] = ""
        if values["company_name"]:
            values["name"] = values["company_name"]
        else:
            values["company_name"] = values["name"]
    if not values["name"] and "last_name" not in found:
        name = "last_name" if values["kind"] == Client.Kind.INDIVIDUAL else "company_name"
        found[name] = [_("A client needs a name.")]
    if values["kpp"] and (values["kind"] != Client.Kind.COMPANY or values["country"] != "RU"):
        found["kpp"] = [_("Only Russian companies have a KPP.")]
    custom.required_of_new(values, found)
    errors.extend((_FIELD_OF_ERROR.get(name, name), m) for name, ms in found.items() for m in ms)
    return values


def _checked(found: dict[str, list[str]], name: str, check) -> str | None:
    try:
        return check()
    except ValidationError as refused:
        found[name] = refused.messages
        return None


def _apply_change(plan: _Plan, client: Client, custom: _CustomFields) -> None:
    """Change a loaded client as client_update would, without saving: checks, audit changes."""
    fields = plan.values
    before = snapshot(client)
    search_before = client.custom_search
    if "name" in fields and not {"first_name", "last_name", "company_name"} & set(fields):
        # A bare new name renames the client as it is (as client_update does).
        client.first_name = client.last_name = client.company_name = ""
    for name, value in fields.items():
        setattr(client, name, value)
    found: dict[str, list[str]] = {}
    services._clean_identity(client, found)
    if client.parent_id is not None or client.bill_to_parent:
        # A member company's group is checked again, as client_update does (queries: rare).
        services._clean_parent(client, found)
    # The rest of services._clean: the whole client is checked again, not only what changed.
    # The email's owner and the new owner's reach were checked when the row was matched.
    client.country = client.country.strip().upper()
    if client.country and client.country not in countries:
        found["country"] = [_("Unknown country code; use two letters, e.g. FR.")]
    country = client.country if "country" not in found else ""
    if (email := _checked(found, "email", lambda: _email(client.email))) is not None:
        client.email = email
        if not email:
            found["email"] = [_("A client needs an email address.")]
    phone = _checked(
        found, "phone", lambda: validation.normalize_phone(client.phone, country=country)
    )
    if phone is not None:
        client.phone = phone
    if client.kind in Client.Kind.values:
        tax_id = _checked(
            found,
            "tax_id",
            lambda: validation.normalize_tax_id(client.tax_id, country=country, kind=client.kind),
        )
        if tax_id is not None:
            client.tax_id = tax_id
    if client.kpp:
        if client.kind != Client.Kind.COMPANY or country != "RU":
            found["kpp"] = [_("Only Russian companies have a KPP.")]
        elif (
            kpp := _checked(found, "kpp", lambda: validation.validate_kpp(client.kpp))
        ) is not None:
            client.kpp = kpp
    try:
        currency_exponent(client.currency)
    except ValueError:
        found["currency"] = [_("Unknown currency code.")]
    if client.kind not in Client.Kind.values:
        found["kind"] = [_("Choose individual or company.")]
    if client.org_unit_id is None:
        found["org_unit"] = [_("Choose the unit the client belongs to.")]
    if client.kind in Client.Kind.values:
        custom.clean(client, found)
    if found:
        plan.kind = ""
        plan.errors.extend(
            (_FIELD_OF_ERROR.get(name, name), m) for name, ms in found.items() for m in ms
        )
        return
    after = snapshot(client)
    plan.changes = {
        name: {"before": before.get(name), "after": value}
        for name, value in after.items()
        if before.get(name) != value
    }
    if not plan.changes:
        plan.kind = _UNCHANGED
        return
    # Saved with the change though the audit log leaves it out, as client_update saves it.
    plan.columns = sorted(plan.changes)
    if client.custom_search != search_before:
        plan.columns.append("custom_search")
    client.version += 1
    plan.client = client


def _save_changes(plans: list[_Plan]) -> None:
    """Write changed columns and the new version, grouped by the columns a change touches."""
    meta = Client._meta
    quote = connection.ops.quote_name
    by_columns: dict[tuple[str, ...], list[tuple]] = {}
    fields = {f.attname: f for f in meta.concrete_fields}
    for plan in plans:
        client = plan.client
        assert client is not None
        columns = tuple(plan.columns)
        values = [
            fields[name].get_db_prep_save(getattr(client, name), connection) for name in columns
        ]
        by_columns.setdefault(columns, []).append(
            (*values, client.version, client.pk, client.version - 1)
        )
    with connection.cursor() as cursor:
        for columns, params in by_columns.items():
            assignments = ", ".join(f"{quote(fields[name].column)} = %s" for name in columns)
            cursor.executemany(
                f"UPDATE {quote(meta.db_table)} SET {assignments}, {quote('version')} = %s "
                f"WHERE {quote('id')} = %s AND {quote('version')} = %s",
                params,
            )
            if cursor.rowcount != len(params):
                raise _Retry


def _move_merged(plans: list[_Plan]) -> None:
    """Clients merged into a client given to another owner follow it (as client_update does)."""
    moved: dict[tuple[int, int], list[int]] = {}
    for plan in plans:
        if "owner_id" in plan.changes or "org_unit_id" in plan.changes:
            client = plan.client
            assert client is not None
            moved.setdefault((client.owner_id, client.org_unit_id), []).append(client.pk)
    for (owner_id, org_unit_id), ids in moved.items():
        Client.everything.filter(merged_into__in=ids).update(
            owner_id=owner_id, org_unit_id=org_unit_id
        )


def import_clients(
    source,
    sheet: Sheet,
    mapping: list[str],
    *,
    by: User,
    dry_run: bool = False,
    all_or_nothing: bool = False,
) -> ImportResult:
    """Create or update a client per row, matched by client number, else by email.

    Rows go in chunks: each is matched with a query per key, and its new clients, changes
    and their history are written in bulk in one transaction. A row that fails is reported
    and left out; with `all_or_nothing` one failed row undoes the whole import. A dry run
    checks every row and writes nothing. Unchanged rows write nothing either, so importing
    the same file twice changes nothing.
    """
    check_mapping(sheet, mapping)
    result = ImportResult(dry_run=dry_run, all_or_nothing=all_or_nothing)
    importer = _Importer(sheet, mapping, by, result)
    # A new client goes into a dozen indexes, four of them (email, name, phone, tax id) at
    # random places: with SQLite's default 2 MB cache nearly each insert reads its page again.
    with roomy_sqlite_cache(SQLITE_CACHE_KIB):
        if all_or_nothing and not dry_run:
            with transaction.atomic():
                _run(importer, source, sheet, dry_run)
                if result.failed:
                    transaction.set_rollback(True)
                    result.rolled_back = True
        else:
            _run(importer, source, sheet, dry_run)
    return result


def _run(importer: _Importer, source, sheet: Sheet, dry_run: bool) -> None:
    result = importer.result
    rows: list[_Row] = []
    try:
        for row in _read(importer, source, sheet):
            rows.append(importer.take(row))
            if len(rows) == CHUNK_ROWS:
                _chunk(importer, rows, dry_run)
                rows = []
        _chunk(importer, rows, dry_run)
    except UploadError as broken:
        # The file breaks off here: what was read stays, the reason goes to the report.
        _chunk(importer, rows, dry_run)
        result.add_error(RowError(0, "", " ".join(broken.messages)))
        result.failed += 1


def _read(importer: _Importer, source, sheet: Sheet) -> Iterator[_Row]:
    """The file's rows as the reader makes them: in a second process for a big file, which
    then reads and checks the next rows while this one matches and writes."""
    copy = _worker_copy(source)
    if copy is None:
        reader = importer.reader
        for number, cells in read_rows(source, sheet):
            yield reader.read(number, cells)
        return
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    worker = multiprocessing.get_context("fork").Process(
        target=_read_beside, args=(importer.reader, copy, sheet, sending), daemon=True
    )
    worker.start()
    sending.close()
    if copy is not source:
        copy.close()
    try:
        while True:
            try:
                what, batch = receiving.recv()
            except EOFError:
                raise RuntimeError("the import's reading process ended unexpectedly") from None
            if what == "rows":
                # Sent as tuples of plain values: unpickling them costs a fraction of rows'.
                for fields in batch:
                    yield _Row(*fields)
            elif what == "broken":
                raise UploadError(batch)
            elif what == "failed":
                raise RuntimeError(f"the import's reading process failed:\n{batch}")
            else:
                return
    finally:
        receiving.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _worker_copy(source):
    """The upload for a reading process, or None to read it here.

    A second process only pays for itself on a big file, and is forked only from a process
    with one thread (a fork copies no other thread, nor what their locks guard). A file on
    disk is opened again, so the two processes never share a read position.
    """
    raw = _binary(source)
    if _size(raw) < PARALLEL_FROM_BYTES or threading.active_count() > 1:
        return None
    try:
        descriptor = raw.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return source  # in memory: the fork copies it
    try:
        return open(f"/proc/self/fd/{descriptor}", "rb")  # closed by the caller
    except OSError:
        return None


def _read_beside(reader: _Reader, source, sheet: Sheet, sending) -> None:
    """In the reading process: the file's rows, read and checked, sent in batches."""
    reader.ahead = True
    batch: list[tuple] = []
    try:
        for number, cells in read_rows(source, sheet):
            row = reader.read(number, cells)
            if "kind" in row.clean:
                row.clean["kind"] = str(row.clean["kind"])  # not the enum, to pickle less
            batch.append((number, row.clean, row.errors, row.owner, row.owner_at, row.checked))
            if len(batch) == _SENT_ROWS:
                sending.send(("rows", batch))
                batch = []
        sending.send(("rows", batch))
        sending.send(("end", None))
    except UploadError as broken:
        sending.send(("rows", batch))
        sending.send(("broken", " ".join(broken.messages)))
    except Exception:  # anything else is a bug: the importer reports it as one
        sending.send(("failed", traceback.format_exc()))
    finally:
        sending.close()


def _chunk(importer: _Importer, rows: list[_Row], dry_run: bool) -> None:
    if not rows:
        return
    importer.result.rows += len(rows)
    ready = [row for row in rows if not row.errors]
    # A dry run opens no transaction: on SQLite that would take the write lock.
    plans = importer.plan(ready, {}, locking=False) if dry_run else _written(importer, ready)
    importer.settle(rows, plans)


def _written(importer: _Importer, rows: list[_Row]) -> list[_Plan]:
    """A chunk matched and written in one transaction; matched again if another writer got in
    the way, and at last row by row, so that a row the database refuses stops only itself."""
    clashes, waits, refusals = _db_errors()
    for _attempt in range(CHUNK_ATTEMPTS):
        try:
            with transaction.atomic():
                plans = importer.plan(rows, {}, locking=True)
                importer.write(plans)
            return plans
        except (_Retry, *clashes, *waits):
            continue
        except refusals:
            break
    plans = []
    claimed: dict[int, int] = {}
    for row in rows:
        try:
            with transaction.atomic():
                [plan] = importer.plan([row], claimed, locking=True)
                importer.write([plan])
        except clashes:
            plan = _Plan(row=row, errors=[("email", _("Another client already uses this email."))])
        except refusals:
            plan = _Plan(
                row=row, errors=[("", _("The database refused this row; nothing of it was saved."))]
            )
        except _Retry:
            plan = _Plan(row=row, errors=[("", str(_CHANGED_MEANWHILE))])
        plans.append(plan)
    return plans


# --- exporting ---------------------------------------------------------------------------------

# Spreadsheets run a cell that starts with these as a formula (OWASP "CSV injection"): such a
# cell gets a leading apostrophe, phone numbers like +33… included; imports take it off again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """The text, made inert for spreadsheets if it starts like a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


EXPORT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("number", gettext_lazy("Client number")),
    ("kind", gettext_lazy("Kind")),
    ("name", gettext_lazy("Name")),
    ("company_name", gettext_lazy("Company name")),
    ("first_name", gettext_lazy("First name")),
    ("last_name", gettext_lazy("Last name")),
    ("email", gettext_lazy("Email")),
    ("phone", gettext_lazy("Phone")),
    ("tax_id", gettext_lazy("Tax id")),
    ("kpp", gettext_lazy("KPP")),
    ("national_id", gettext_lazy("National id")),
    ("street", gettext_lazy("Street")),
    ("postcode", gettext_lazy("Postcode")),
    ("city", gettext_lazy("City")),
    ("country", gettext_lazy("Country")),
    ("currency", gettext_lazy("Currency")),
    ("language", gettext_lazy("Language")),
    ("status", gettext_lazy("Status")),
    ("owner__username", gettext_lazy("Owner (username)")),
    ("org_unit__name", gettext_lazy("Org unit")),
    ("created_at", gettext_lazy("Created")),
)
EXPORT_CHUNK = 2000
_FORMULA_FIRST = frozenset(_FORMULA_STARTS)


def export_rows(clients, *, dates_as_text: bool = False) -> Iterator[list[Any]]:
    """The header, then one row per client of a (visibility-scoped) queryset, cells made inert.

    Dates come as aware datetimes in the current time zone (for spreadsheet dates), or with
    `dates_as_text` as ISO 8601 text (for CSV). One query, read in chunks. The language and
    time zone are the caller's: taken now, not when the rows are streamed.
    """
    # Custom fields follow the standard columns; secret ones are never exported.
    custom = [f for f in customfields.fields_for() if f.type != CustomField.Type.SECRET]
    header = [str(label) for _name, label in EXPORT_COLUMNS] + [f.label for f in custom]
    codes = [f.code for f in custom]
    return _export_rows(clients, header, timezone.get_current_timezone(), dates_as_text, codes)


def _export_rows(
    clients, header: list[str], zone, dates_as_text: bool, codes: list[str]
) -> Iterator[list[Any]]:
    names = [name for name, _label in EXPORT_COLUMNS]
    yield header
    # Every standard column but the creation time is text (or None).
    stamp = names.index("created_at")
    after = slice(stamp + 1, len(names))
    risky = _FORMULA_FIRST
    columns = [*names, "custom"] if codes else names
    stored_zone = connection.timezone
    # Clients imported or made together share their creation time: it is worked out once.
    last_stamp: Any = None
    cell: Any = None
    for values in _raw_rows(clients.values_list(*columns)):
        # Checked inline, as this runs per cell of a million rows.
        row = [("'" + v if v[0] in risky else v) if v else "" for v in values[:stamp]]
        if values[stamp] != last_stamp:
            last_stamp = created = values[stamp]
            if created.tzinfo is None:  # SQLite's, in the database's zone
                created = created.replace(tzinfo=stored_zone)
            created = created.astimezone(zone)
            if dates_as_text:
                cell = created.isoformat(timespec="seconds")
            else:
                cell = created.replace(microsecond=0)
        row.append(cell)
        if stamp + 1 < len(names):
            row.extend(("'" + v if v[0] in risky else v) if v else "" for v in values[after])
        if codes:
            custom = values[-1]
            if isinstance(custom, str):  # SQLite's JSON, as text
                custom = json.loads(custom)
            row.extend(_custom_cell((custom or {}).get(code)) for code in codes)
        yield row


def _raw_rows(query) -> Iterator[tuple]:
    """A values_list query's rows as the driver gives them, read in chunks as iterator() does.

    Without Django's per-row converters, which cost the export a third of its time: the
    caller makes the creation time aware and reads the JSON itself.
    """
    try:
        sql, params = query.query.sql_with_params()
    except EmptyResultSet:
        return
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(EXPORT_CHUNK):
            yield from rows


def _custom_cell(value: Any) -> str:
    """A custom value as an export cell: yes/no for booleans, text made inert."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    return neutralise(str(value))


# Rows a csv writer takes at once: its C loop writes them with no Python call per row.
_CSV_BATCH_ROWS = 256


def csv_chunks(rows: Iterable[list[Any]], *, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """Rows as UTF-8 CSV (with the BOM Excel needs to read it as UTF-8), in chunks to stream.

    Cells are written as str() gives them: give dates as text (export_rows does).
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    rows = iter(rows)
    while batch := list(itertools.islice(rows, _CSV_BATCH_ROWS)):
        writer.writerows(batch)
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Pipe(io.RawIOBase):
    """Where zipfile writes: keeps the bytes until they are taken away to be sent."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


_SPREADSHEETML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        f'<Relationships xmlns="{_PACKAGE_RELATIONSHIPS}">'
        f'<Relationship Id="rId1" Type="{_RELATIONSHIPS}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_PACKAGE_RELATIONSHIPS}">'
        f'<Relationship Id="rId1" Type="{_RELATIONSHIPS}/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_RELATIONSHIPS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
    # Cell styles: 0 plain, 1 a date and time, 2 bold (the header).
    "xl/styles.xml": (
        f'<styleSheet xmlns="{_SPREADSHEETML}">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        "</cellStyleXfs>"
        '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" '
        'applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        "</cellXfs>"
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Spreadsheets count days from here, in wall-clock time (compared here as if it were UTC).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30, tzinfo=dt.UTC)
_SHEET_NAME_REFUSED = re.compile(r"[\[\]:*?/\\]")
_XLSX_FLUSH_ROWS = 500


def _xml_text(value: str) -> str:
    if not value.isprintable():
        # XML cannot carry most control characters at all.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xlsx_row(number: int, row: list[Any], letters: list[str], style: str) -> str:
    cells = []
    for letter, value in zip(letters, row, strict=False):
        if value is None or value == "":
            continue
        where = f'<c r="{letter}{number}"{style}'
        if isinstance(value, str):
            cells.append(
                f'{where} t="inlineStr"><is><t xml:space="preserve">{_xml_text(value)}</t></is></c>'
            )
        elif isinstance(value, bool):
            cells.append(f'{where} t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, dt.datetime):
            if timezone.is_aware(value):
                value = timezone.localtime(value)
            serial = (value.replace(tzinfo=dt.UTC) - _EXCEL_EPOCH) / dt.timedelta(days=1)
            cells.append(f'<c r="{letter}{number}" s="1"><v>{serial!r}</v></c>')
        elif isinstance(value, int | float):
            cells.append(f"{where}><v>{value!r}</v></c>")
        else:
            cells.append(
                f'{where} t="inlineStr"><is><t xml:space="preserve">{_xml_text(str(value))}</t></is></c>'
            )
    return f'<row r="{number}">{"".join(cells)}</row>'


def xlsx_chunks(rows: Iterable[list[Any]], *, title: str) -> Iterator[bytes]:
    """Rows as a one-sheet workbook (first row in bold), zipped and sent as it is written.

    A few lines of SpreadsheetML instead of openpyxl, whose writer builds every cell as an
    object and its XML in pure Python here: 50 times slower, and a workbook must be complete
    before openpyxl hands over its first byte.
    """
    pipe = _Pipe()
    name = _xml_text(_SHEET_NAME_REFUSED.sub(" ", title)[:31].strip() or "Sheet1")
    parts = _XLSX_PARTS | {
        "xl/workbook.xml": (
            f'<workbook xmlns="{_SPREADSHEETML}" xmlns:r="{_RELATIONSHIPS}"><sheets>'
            f'<sheet name="{name.replace(chr(34), "&quot;")}" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>"
        )
    }
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for part, xml in parts.items():
            book.writestr(part, _XML_HEAD + xml)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'{_XML_HEAD}<worksheet xmlns="{_SPREADSHEETML}"><sheetData>'.encode())
            letters: list[str] = []
            lines = []
            for number, row in enumerate(rows, start=1):
                if len(letters) < len(row):
                    letters = [get_column_letter(i + 1) for i in range(len(row))]
                lines.append(_xlsx_row(number, row, letters, ' s="2"' if number == 1 else ""))
                if len(lines) == _XLSX_FLUSH_ROWS:
                    sheet.write("".join(lines).encode())
                    lines.clear()
                    yield pipe.take()
            sheet.write(("".join(lines) + "</sheetData></worksheet>").encode())
    yield pipe.take()


def error_rows(errors: Iterable[RowError]) -> Iterator[list[Any]]:
    """An error report: row, column, message, cells made inert (columns come from the file)."""
    header: list[Any] = [_("Row"), _("Column"), _("Message")]
    return _error_rows(header, errors)


def _error_rows(header: list[Any], errors: Iterable[RowError]) -> Iterator[list[Any]]:
    yield header
    for error in errors:
        yield [error.row or "", neutralise(error.column), neutralise(error.message)]
