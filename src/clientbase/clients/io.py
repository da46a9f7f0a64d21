"""Client import and export (PLT-5): safe reading of uploads, column mapping, upsert, lists out.

Reading: CSV and TXT (comma, semicolon, tab or pipe; UTF-8 with or without BOM, UTF-16 with
BOM, cp1251 as Russian 1C writes it, cp1252) and XLSX, recognised by content, not by name.
Writing goes through the client services only; reads go through visibility.
"""

import codecs
import contextlib
import csv
import datetime as dt
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import openpyxl
from defusedxml import DefusedXmlException
from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.db.models.functions import Lower
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_countries import countries
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from clientbase.accounts.models import User
from clientbase.clients import services, validation
from clientbase.clients.models import Client
from clientbase.core.errors import ServiceError
from clientbase.core.money import currency_exponent
from clientbase.core.visibility import may_assign, visible

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
# Rows read, matched and written together; a chunk's transaction holds the client number
# series, so other clerks wait for at most one chunk.
CHUNK_ROWS = 200
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
        if lines > MAX_ROWS + HEADER_SEARCH_ROWS:
            raise _too_many_rows()
        sheet = Sheet(
            format=CSV, headers=(), encoding=encoding, delimiter=_delimiter(raw, encoding)
        )
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
        # Signs have no letters, so they are looked up as written, words without accents.
        self.currencies = {sign: code for sign, code in _CURRENCY_SIGNS.items()}
        self.currencies |= {_key(s): code for s, code in _CURRENCY_SIGNS.items() if _key(s)}
        self.countries: dict[str, str] = {}
        self.owners: dict[str, User | None] = {}

    def kind(self, text: str) -> str:
        found = self.kinds.get(_key(text))
        if found is None:
            raise ValidationError(
                _("Unknown kind “%(value)s”: write individual or company.") % {"value": text}
            )
        return found

    def country(self, text: str) -> str:
        if text not in self.countries:
            self.countries[text] = self._country(text)
        found = self.countries[text]
        if not found:
            raise ValidationError(
                _("Unknown country “%(value)s”: use a two-letter code such as FR, RU or VN.")
                % {"value": text}
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
        return ""

    def currency(self, text: str) -> str:
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

    def language(self, text: str) -> str:
        value = text.strip().lower().replace("_", "-")
        codes = [code for code, _name in settings.LANGUAGES]
        if value in codes:
            return value
        if value.split("-")[0] in codes:
            return value.split("-")[0]
        found = self.languages.get(_key(text))
        if found is None:
            raise ValidationError(
                _("Unknown language “%(value)s”: use one of %(codes)s.")
                % {"value": text, "codes": ", ".join(codes)}
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
            self.owners[name] = found
        owner = self.owners[name]
        if owner is None:
            raise ValidationError(
                _("No active user has the username “%(value)s”.") % {"value": text.strip()}
            )
        return owner


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


@dataclass
class _Row:
    """One data row on its way: its number, its values read so far, what is wrong, its client."""

    number: int
    clean: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field or "", message)
    client: Client | None = None


class _Importer:
    """Reads, checks, matches and writes rows, remembering what earlier rows of the file held."""

    def __init__(self, sheet: Sheet, mapping: list[str], by: User, result: ImportResult) -> None:
        self.by = by
        self.result = result
        self.columns = [(index, name) for index, name in enumerate(mapping) if name]
        labels = sheet.labels
        self.label = {name: labels[index] for index, name in self.columns}
        self.values = _Values()
        self.emails: dict[str, int] = {}  # lowercased email → first row using it
        self.numbers: dict[str, int] = {}
        self.clients: dict[int, int] = {}  # client id → row that changes it
        self.may_give: dict[tuple[int, int], bool] = {}
        self.limits = {
            name: Client._meta.get_field(name).max_length
            for name in FIELDS
            if name not in ("owner",)
        }

    # reading one row -----------------------------------------------------------------------

    def parse(self, number: int, cells: list[str]) -> _Row:
        row = _Row(number=number)
        for index, name in self.columns:
            text = _unquoted(cells[index].strip())
            if not text:
                continue  # an empty cell leaves the client's value as it is
            try:
                row.clean[name] = self._field(name, text)
            except ValidationError as refused:
                row.errors.append((name, refused.messages[0]))
        return row

    def _field(self, name: str, text: str) -> Any:
        if name == "kind":
            return self.values.kind(text)
        if name == "country":
            return self.values.country(text)
        if name == "currency":
            return self.values.currency(text)
        if name == "language":
            return self.values.language(text)
        if name == "owner":
            return self.values.owner(text)
        if name == "email":
            text = validation.normalize_email(text)
        elif name in ("phone", "tax_id"):
            return text  # checked once the row's country and kind are known
        return self._fits(name, text)

    def _fits(self, name: str, text: str) -> str:
        limit = self.limits[name]
        if limit and len(text) > limit:
            raise ValidationError(
                _("At most %(max)s characters; this has %(count)s.")
                % {"max": limit, "count": len(text)}
            )
        return text

    # matching rows to clients --------------------------------------------------------------

    def chunk(self, rows: list[_Row]) -> None:
        numbers = {row.clean["number"] for row in rows if "number" in row.clean}
        emails = {row.clean["email"].lower() for row in rows if "email" in row.clean}
        by_number = {c.number: c for c in Client.objects.filter(number__in=numbers)}
        by_email = {
            c.email_key: c
            for c in Client.objects.annotate(email_key=Lower("email")).filter(email_key__in=emails)
        }
        found = {c.pk for c in (*by_number.values(), *by_email.values())}
        seen = set(
            visible(Client.objects.filter(pk__in=found), self.by).values_list("pk", flat=True)
        )
        for row in rows:
            self._match(row, by_number, by_email, seen)
            if not row.errors:
                self._complete(row)

    def _match(self, row: _Row, by_number: dict, by_email: dict, seen: set[int]) -> None:
        number = row.clean.get("number")
        email = row.clean.get("email", "").lower()
        if number:
            if number in self.numbers:
                row.errors.append(
                    ("number", _("This client number is also in row %(row)s of this file.")
                     % {"row": self.numbers[number]})
                )  # fmt: skip
            else:
                self.numbers[number] = row.number
        if email:
            if email in self.emails:
                row.errors.append(
                    ("email", _("This email is also in row %(row)s of this file.")
                     % {"row": self.emails[email]})
                )  # fmt: skip
            else:
                self.emails[email] = row.number
        if row.errors:
            return
        client = by_number.get(number) if number else None
        if client is not None and client.pk not in seen:
            row.errors.append(("number", _("No client you may see has this number.")))
            return
        owner_of_email = by_email.get(email) if email else None
        if client is None and owner_of_email is not None:
            if owner_of_email.pk not in seen:
                row.errors.append(("email", _("This email belongs to a client you may not see.")))
                return
            client = owner_of_email
        elif client is not None and owner_of_email is not None and owner_of_email != client:
            message = (
                _("Client %(number)s already uses this email.") % {"number": owner_of_email.number}
                if owner_of_email.pk in seen
                else _("Another client already uses this email.")
            )
            row.errors.append(("email", message))
            return
        if client is not None:
            if client.pk in self.clients:
                row.errors.append(
                    ("", _("Row %(row)s of this file already changes this client.")
                     % {"row": self.clients[client.pk]})
                )  # fmt: skip
                return
            self.clients[client.pk] = row.number
        row.client = client

    def _complete(self, row: _Row) -> None:
        """Check what depends on several fields, and on the client when there is one."""
        client, clean = row.client, row.clean
        clean.pop("number", None)
        if client is None:
            if not any(name in clean for name in ("name", "company_name", "last_name")):
                row.errors.append(("name", _("A new client needs a name.")))
            if "email" not in clean:
                row.errors.append(("email", _("A new client needs an email.")))
        country = clean.get("country", client.country if client else "")
        kind = clean.get("kind", client.kind if client else Client.Kind.COMPANY)
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
        try:
            if "kpp" in clean:
                clean["kpp"] = validation.validate_kpp(clean["kpp"])
        except ValidationError as refused:
            row.errors.append(("kpp", refused.messages[0]))
        try:
            if "phone" in clean:
                clean["phone"] = self._fits(
                    "phone", validation.normalize_phone(clean["phone"], country=country)
                )
        except ValidationError as refused:
            row.errors.append(("phone", refused.messages[0]))
        try:
            if "tax_id" in clean:
                clean["tax_id"] = self._fits(
                    "tax_id",
                    validation.normalize_tax_id(clean["tax_id"], country=country, kind=kind),
                )
        except ValidationError as refused:
            row.errors.append(("tax_id", refused.messages[0]))
        owner = clean.get("owner", self.by)
        if client is None or ("owner" in clean and owner.pk != client.owner_id):
            unit = owner.org_unit if owner is not None else None
            if unit is None:
                row.errors.append(
                    ("owner", _("This user belongs to no unit, so cannot own clients."))
                )
            elif not self._may_give(owner, unit):
                row.errors.append(
                    ("owner", _("You can give clients only to people and units within your reach."))
                )
            else:
                clean["owner"] = owner
                clean["org_unit"] = unit
        if client is not None and not row.errors:
            for name in list(clean):
                # Related rows compare by id, so an unchanged owner costs no query.
                current = getattr(client, f"{name}_id" if name in ("owner", "org_unit") else name)
                value = clean[name].pk if name in ("owner", "org_unit") else clean[name]
                if name == "email":
                    # The address matched in any case; its case alone is no reason to write.
                    current, value = current.lower(), value.lower()
                if current == value:
                    del clean[name]

    def _may_give(self, owner: User, unit) -> bool:
        key = (owner.pk, unit.pk)
        if key not in self.may_give:
            self.may_give[key] = may_assign(self.by, owner=owner, org_unit=unit)
        return self.may_give[key]

    # writing ------------------------------------------------------------------------------

    def write(self, row: _Row, dry_run: bool) -> None:
        if not dry_run and (row.client is None or row.clean):
            # Each service call is its own savepoint within the chunk's transaction, so a
            # refused row leaves nothing behind; the version refuses a row whose client
            # someone changed since the chunk read it.
            try:
                if row.client is None:
                    services.client_create(by=self.by, **row.clean)
                else:
                    services.client_update(
                        client=row.client,
                        by=self.by,
                        expected_version=row.client.version,
                        **row.clean,
                    )
            except ServiceError as refused:
                for name, messages in refused.message_dict.items():
                    row.errors.extend((_FIELD_OF_ERROR.get(name, name), m) for m in messages)
            except (IntegrityError, DataError):
                row.errors.append(
                    ("", _("The database refused this row; nothing of it was saved."))
                )
        if row.errors:
            return
        if row.client is None:
            self.result.created += 1
        elif row.clean:
            self.result.updated += 1
        else:
            self.result.unchanged += 1

    def report(self, row: _Row) -> None:
        self.result.failed += 1
        for name, message in row.errors:
            labels = (self.label.get(n) for n in (name, *_COLUMNS_OF_FIELD.get(name, ())))
            self.result.add_error(RowError(row.number, next(filter(None, labels), ""), message))


# A service names the unit when the owner is at fault; the file has only the owner column.
_FIELD_OF_ERROR = {"org_unit": "owner", "__all__": ""}
# A field the file has no column for is reported at the column its value came from.
_COLUMNS_OF_FIELD = {
    "name": ("company_name", "last_name"),
    "company_name": ("name",),
    "last_name": ("name", "company_name"),
    "first_name": ("name", "company_name"),
}


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

    A row that fails is reported and skipped, in its own savepoint; with `all_or_nothing` one
    failed row undoes the whole import. A dry run checks every row and writes nothing.
    Unchanged rows write nothing either, so importing the same file twice changes nothing.
    """
    check_mapping(sheet, mapping)
    result = ImportResult(dry_run=dry_run, all_or_nothing=all_or_nothing)
    importer = _Importer(sheet, mapping, by, result)
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
        for number, cells in read_rows(source, sheet):
            rows.append(importer.parse(number, cells))
            if len(rows) == CHUNK_ROWS:
                _chunk(importer, rows, dry_run)
                rows = []
        _chunk(importer, rows, dry_run)
    except UploadError as broken:
        # The file breaks off here: what was read stays, the reason goes to the report.
        _chunk(importer, rows, dry_run)
        result.add_error(RowError(0, "", " ".join(broken.messages)))
        result.failed += 1


def _chunk(importer: _Importer, rows: list[_Row], dry_run: bool) -> None:
    if not rows:
        return
    importer.result.rows += len(rows)
    importer.chunk([row for row in rows if not row.errors])
    # One transaction a chunk, each row a savepoint inside it: fewer commits, same isolation.
    # A dry run opens none (on SQLite that would take the write lock).
    with contextlib.nullcontext() if dry_run else transaction.atomic():
        for row in rows:
            if not row.errors:
                importer.write(row, dry_run)
            if row.errors:
                importer.report(row)


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


def export_rows(clients) -> Iterator[list[Any]]:
    """The header, then one row per client of a (visibility-scoped) queryset, cells made inert.

    Dates come as aware datetimes in the current time zone; writers turn them into text or
    spreadsheet dates.
    """
    names = [name for name, _label in EXPORT_COLUMNS]
    yield [str(label) for _name, label in EXPORT_COLUMNS]
    for values in clients.values_list(*names).iterator(chunk_size=EXPORT_CHUNK):
        yield [_export_cell(value) for value in values]


def _export_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(microsecond=0)
    return neutralise(str(value))


class _Line:
    """Where csv.writer writes: hands each written line back instead of keeping it."""

    def write(self, text: str) -> str:
        return text


def csv_chunks(rows: Iterable[list[Any]], *, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """Rows as UTF-8 CSV (with the BOM Excel needs to read it as UTF-8), in chunks to stream."""
    writer = csv.writer(_Line())
    buffer: list[str] = ["\ufeff"]
    size = 0
    for row in rows:
        line = writer.writerow(
            [value.isoformat() if isinstance(value, dt.datetime) else value for value in row]
        )
        buffer.append(line)
        size += len(line)
        if size >= chunk_bytes:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def write_xlsx(rows: Iterable[list[Any]], target: BinaryIO, *, title: str) -> None:
    """Rows into a new workbook (written as it goes, so memory stays flat), header in bold."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    header = True
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, dt.datetime):
                value = timezone.make_naive(value) if timezone.is_aware(value) else value
            elif isinstance(value, str):
                # XML cannot carry most control characters; openpyxl would refuse the cell.
                value = ILLEGAL_CHARACTERS_RE.sub("", value) or None
            cell = WriteOnlyCell(sheet, value=value)
            if header:
                cell.font = Font(bold=True)
            elif isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            cells.append(cell)
        sheet.append(cells)
        header = False
    book.save(target)


def error_rows(errors: Iterable[RowError]) -> Iterator[list[Any]]:
    """An error report: row, column, message, cells made inert (columns come from the file)."""
    yield [_("Row"), _("Column"), _("Message")]
    for error in errors:
        yield [error.row or "", neutralise(error.column), neutralise(error.message)]
