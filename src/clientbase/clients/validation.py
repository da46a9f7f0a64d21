"""Client identifiers checked and put into their canonical form, with messages a clerk can act on."""

import functools
import re
import string
from types import ModuleType

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django_countries import countries
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat
from stdnum.fr import nif as fr_nif
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.fr import tva as fr_tva
from stdnum.ru import inn as ru_inn
from stdnum.util import get_cc_module
from stdnum.vn import mst as vn_mst

__all__ = ["normalize_email", "normalize_phone", "normalize_tax_id", "validate_kpp"]

KINDS = ("company", "individual")
TAX_ID_MAX_LENGTH = 32
FREE_TAX_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-/.")
# French VAT keys skip I and O, which read like 1 and 0.
FR_VAT_KEY_CHARACTERS = frozenset("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
# EU VAT prefixes are ISO codes except Greece's; Northern Ireland (XI) is not a client country.
EU_VAT_PREFIX = {cc.upper(): cc.upper() for cc in eu_vat.MEMBER_STATES if cc != "xi"} | {"GR": "EL"}
EU_VAT_PREFIXES = frozenset(EU_VAT_PREFIX.values()) | {"GR", "XI"}
PHONE_CHARACTERS = frozenset(string.digits + " +-()./")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _refuse(message: str) -> ValidationError:
    """The one error a field shows."""
    return ValidationError(message, code="invalid")


def _strange(value: str, allowed: frozenset[str]) -> str:
    """The characters of value outside allowed, each once, in order of appearance."""
    return "".join(dict.fromkeys(c for c in value if c not in allowed))


def _country_name(code: str) -> str:
    """The country's name in the reader's language, or its code when unknown."""
    return str(countries.name(code)) or code


def _without_spaces(value: str) -> str:
    """Value with every kind of whitespace removed."""
    return "".join(value.split())


# --- tax ids -----------------------------------------------------------------------------------


def normalize_tax_id(value: str, *, country: str, kind: str) -> str:
    """The tax id in its compact canonical form, or a ValidationError saying what is wrong."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    value = value.strip()
    if not value:
        return ""
    country = country.strip().upper()
    if country == "RU":
        return _ru_inn(value, kind)
    if country == "FR":
        return _fr_tax_id(value, kind)
    if country == "VN":
        return _vn_mst(value, kind)
    if country in EU_VAT_PREFIX:
        return _eu_tax_id(value, country, kind)
    names = ("vat", "tin") if kind == "company" else ("vat", "tin", "personalid")
    if modules := _stdnum_modules(country, names):
        return _by_modules(value, country, modules)
    return _free_tax_id(value)


def _ru_inn(value: str, kind: str) -> str:
    """A Russian INN: 10 digits for a company, 12 for a person or an individual entrepreneur."""
    number = ru_inn.compact(_without_spaces(value))
    if "/" in number and number.split("/", 1)[0].isdigit():
        # Invoices print "INN/KPP" together and clerks paste the pair.
        raise _refuse(
            _(
                "This looks like an INN and a KPP together: enter the KPP (after the /) in its own field."
            )
        )
    if strange := _strange(number, frozenset(string.digits)):
        raise _refuse(_("An INN has digits only; remove “%(chars)s”.") % {"chars": strange})
    if len(number) not in (10, 12):
        raise _refuse(
            _("An INN has 10 digits for a company and 12 for a person; this one has %(count)s.")
            % {"count": len(number)}
        )
    if kind == "company" and len(number) == 12:
        raise _refuse(
            _(
                "A company's INN has 10 digits; this one has 12, like a person's. "
                "If the client is an individual entrepreneur, make it an individual client."
            )
        )
    if kind == "individual" and len(number) == 10:
        raise _refuse(
            _(
                "A person's INN has 12 digits; this one has 10, like a company's. "
                "If the client is a company, make it a company client."
            )
        )
    try:
        return ru_inn.validate(number)
    except stdnum_errors.ValidationError:
        raise _refuse(_("This INN's check digit is wrong: check for a mistyped digit.")) from None


def _fr_tax_id(value: str, kind: str) -> str:
    """A French SIREN, SIRET, VAT number or, for a person, personal tax number (numéro fiscal)."""
    number = re.sub(r"[\s.\-]", "", value).upper()
    if number.startswith("FR"):
        return _fr_vat(number[2:])
    if len(number) == 11:
        # Eleven characters is a VAT number typed without its FR.
        return _fr_vat(number)
    if strange := _strange(number, frozenset(string.digits)):
        raise _refuse(
            _(
                "Apart from the FR of a VAT number, a French tax id has digits only; "
                "remove “%(chars)s”."
            )
            % {"chars": strange}
        )
    if len(number) == 9:
        if not fr_siren.is_valid(number):
            raise _refuse(
                _("This SIREN (9 digits) fails its Luhn check: check for a mistyped digit.")
            )
        return number
    if len(number) == 14:
        return _fr_siret(number)
    if len(number) == 13:
        return _fr_nif(number, kind)
    if kind == "company":
        raise _refuse(
            _(
                "A French company is identified by its SIREN (9 digits), SIRET (14 digits) or "
                "VAT number (FR and 11 characters); this one has %(count)s digits."
            )
            % {"count": len(number)}
        )
    raise _refuse(
        _(
            "A French tax id is a personal tax number (13 digits), a SIREN (9 digits), a SIRET "
            "(14 digits) or a VAT number (FR and 11 characters); this one has %(count)s digits."
        )
        % {"count": len(number)}
    )


def _fr_siret(number: str) -> str:
    """A 14-digit SIRET: the SIREN and a 5-digit establishment number, under one check."""
    try:
        return fr_siret.validate(number)
    except stdnum_errors.ValidationError:
        pass
    # stdnum says only "checksum"; tell the clerk which of the two checks failed.
    if fr_siren.is_valid(number[:9]):
        raise _refuse(_("This SIRET (14 digits) fails its Luhn check: check for a mistyped digit."))
    raise _refuse(
        _(
            "The SIREN in this SIRET (its first 9 digits) fails its Luhn check: "
            "check for a mistyped digit."
        )
    )


def _fr_nif(number: str, kind: str) -> str:
    """A 13-digit French personal tax number, which only a person has."""
    if kind == "company":
        raise _refuse(
            _(
                "A 13-digit number is a French personal tax number; for a company, give its "
                "SIREN (9 digits), SIRET (14 digits) or VAT number (FR and 11 characters)."
            )
        )
    if number[0] not in "0123":
        raise _refuse(_("A French personal tax number starts with 0, 1, 2 or 3."))
    try:
        return fr_nif.validate(number)
    except stdnum_errors.ValidationError:
        raise _refuse(
            _(
                "The last 3 digits of this personal tax number (its check) do not match the "
                "first 10: check for a mistyped digit."
            )
        ) from None


def _fr_vat(rest: str) -> str:
    """A French VAT number given as what follows FR: 2 key characters and the SIREN."""
    if len(rest) != 11:
        raise _refuse(
            _(
                "A French VAT number has 11 characters after FR (2 key characters and the "
                "9-digit SIREN); this one has %(count)s."
            )
            % {"count": len(rest)}
        )
    if not (set(rest[:2]) <= FR_VAT_KEY_CHARACTERS and _ascii_digits(rest[2:])):
        raise _refuse(
            _(
                "A French VAT number is FR, 2 key characters (digits, or letters other than I "
                "and O) and the 9 digits of the SIREN."
            )
        )
    # Monaco's numbers (000 after the key) carry no SIREN.
    if rest[2:5] != "000" and not fr_siren.is_valid(rest[2:]):
        raise _refuse(
            _(
                "The SIREN in this VAT number (its last 9 digits) fails its Luhn check: "
                "check for a mistyped digit."
            )
        )
    try:
        return "FR" + fr_tva.validate(rest)
    except stdnum_errors.ValidationError:
        raise _refuse(
            _(
                "This VAT number's key (the 2 characters after FR) does not match its SIREN: "
                "check for a mistyped character."
            )
        ) from None


def _vn_mst(value: str, kind: str) -> str:
    """A Vietnamese MST: 10 digits, or 13 for a branch; a person may give the 12-digit ID."""
    number = vn_mst.compact(value)
    if strange := _strange(number, frozenset(string.digits)):
        raise _refuse(
            _("An MST has digits only, with a dash before a branch number; remove “%(chars)s”.")
            % {"chars": strange}
        )
    if kind == "individual" and len(number) == 12:
        # Since July 2025 a person's 12-digit identification number is their tax code;
        # it carries no check digit, so its length is all there is to check.
        return number
    if len(number) not in (10, 13):
        if kind == "individual":
            raise _refuse(
                _(
                    "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); "
                    "a person may give their 12-digit identification number. This one has "
                    "%(count)s digits."
                )
                % {"count": len(number)}
            )
        raise _refuse(
            _(
                "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); "
                "this one has %(count)s."
            )
            % {"count": len(number)}
        )
    if number[2:9] == "0000000":
        raise _refuse(_("An MST's 3rd to 9th digits cannot all be zero."))
    if len(number) == 13 and number[10:] == "000":
        raise _refuse(_("A branch number (the 3 digits after the dash) runs from 001 to 999."))
    try:
        vn_mst.validate(number)
    except stdnum_errors.ValidationError:
        raise _refuse(
            _("This MST's check digit (the 10th digit) is wrong: check for a mistyped digit.")
        ) from None
    return vn_mst.format(number)


class _EuVat:
    """stdnum.eu.vat for one member state, taking the number with or without its prefix."""

    def __init__(self, country: str) -> None:
        self.country = country
        self.prefix = EU_VAT_PREFIX[country]

    def validate(self, value: str) -> str:
        """The prefixed canonical VAT number; another member state's prefix is refused."""
        number = _without_spaces(value).upper()
        head = number[:2]
        if head.isalpha() and head in EU_VAT_PREFIXES:
            if head not in (self.prefix, self.country):
                raise _refuse(
                    _(
                        "This VAT number starts with %(prefix)s, but the client's country is "
                        "%(country)s: correct the number or the country."
                    )
                    % {"prefix": head, "country": _country_name(self.country)}
                )
            number = number[2:]
        return eu_vat.validate(self.prefix + number)


def _eu_tax_id(value: str, country: str, kind: str) -> str:
    """An EU VAT number; a person may instead give the country's personal tax number."""
    modules: list = [_EuVat(country)]
    if kind == "individual":
        modules += _stdnum_modules(country, ("personalid", "tin"))
    return _by_modules(value, country, modules)


# A person's tax number where stdnum files it under its own name rather than personalid or tin.
PERSONAL_TAX_NUMBER = {
    "BG": "egn",
    "BR": "cpf",
    "CZ": "rc",
    "DE": "idnr",
    "GB": "utr",
    "IE": "pps",
    "IN": "pan",
    "IT": "codicefiscale",
    "NL": "bsn",
    "PL": "pesel",
    "RO": "cnp",
    "SK": "rc",
    "UA": "rntrc",
}


def _stdnum_modules(country: str, names: tuple[str, ...]) -> list[ModuleType]:
    """The country's stdnum modules under these names, then its personal tax number's."""
    return list(_cached_stdnum_modules(country, names))


# get_cc_module imports by name on every call: about 4% of a big import's time went there.
@functools.lru_cache(maxsize=1024)
def _cached_stdnum_modules(country: str, names: tuple[str, ...]) -> tuple[ModuleType, ...]:
    """_stdnum_modules, looked up once per country and names."""
    if len(country) != 2 or not country.isalpha():
        return ()
    if "personalid" in names and country in PERSONAL_TAX_NUMBER:
        names = (*names, PERSONAL_TAX_NUMBER[country])
    found: list[ModuleType] = []
    for name in names:
        module = get_cc_module(country.lower(), name)
        if module is not None and module not in found:
            found.append(module)
    return tuple(found)


# Which failure to report when no module accepts: the most specific one wins, because a wrong
# check digit in a number of the right length is more likely what happened than a wrong length.
_FAILURE_RANK = {
    stdnum_errors.InvalidChecksum: 4,
    stdnum_errors.InvalidComponent: 3,
    stdnum_errors.InvalidLength: 2,
    stdnum_errors.InvalidFormat: 1,
}


def _by_modules(value: str, country: str, modules: list) -> str:
    """The first module's canonical form that accepts value, or the most telling refusal."""
    worst: Exception | None = None
    for module in modules:
        try:
            return module.validate(value)
        except ValidationError:
            raise
        except Exception as failure:
            # Some stdnum modules raise plain ValueError or IndexError on odd input.
            if worst is None or _FAILURE_RANK.get(type(failure), 0) > _FAILURE_RANK.get(
                type(worst), 0
            ):
                worst = failure
    raise _refuse(_stdnum_message(worst, country))


def _stdnum_message(failure: Exception | None, country: str) -> str:
    """A clerk's sentence for a stdnum failure, never the library's own text."""
    name = _country_name(country)
    if isinstance(failure, stdnum_errors.InvalidChecksum):
        return _("The check digit of this tax id does not match: check for a mistyped character.")
    if isinstance(failure, stdnum_errors.InvalidLength):
        return _(
            "This tax id has the wrong number of characters for %(country)s: "
            "check for a missing or extra one."
        ) % {"country": name}
    if isinstance(failure, stdnum_errors.InvalidFormat):
        return _(
            "This tax id is not in the format used in %(country)s: "
            "check for a letter or sign out of place."
        ) % {"country": name}
    if isinstance(failure, stdnum_errors.InvalidComponent):
        return _(
            "Part of this tax id is not valid in %(country)s (such as a region or date code): "
            "check it against the client's documents."
        ) % {"country": name}
    return _("This is not a valid tax id for %(country)s.") % {"country": name}


def _free_tax_id(value: str) -> str:
    """A tax id of a country no library knows: only its spaces go, and odd signs are refused."""
    number = _without_spaces(value)
    if len(number) > TAX_ID_MAX_LENGTH:
        raise _refuse(
            _("A tax id has at most %(max)s characters; this one has %(count)s.")
            % {"max": TAX_ID_MAX_LENGTH, "count": len(number)}
        )
    if strange := _strange(number, FREE_TAX_ID_CHARACTERS):
        raise _refuse(
            _(
                "A tax id may contain only Latin letters, digits and the signs - / and .; "
                "remove “%(chars)s”."
            )
            % {"chars": strange}
        )
    return number


# --- KPP -----------------------------------------------------------------------------------------


def validate_kpp(value: str) -> str:
    """A Russian KPP in compact form: 4 digits, 2 digits or capital Latin letters, 3 digits."""
    number = _without_spaces(value)
    if not number:
        return ""
    if cyrillic := "".join(dict.fromkeys(CYRILLIC.findall(number))):
        # On a Russian keyboard A, B, E… come out as look-alike Cyrillic letters.
        raise _refuse(
            _("Type the KPP's letters on the Latin keyboard: “%(chars)s” is Cyrillic.")
            % {"chars": cyrillic}
        )
    number = number.upper()
    if len(number) != 9:
        raise _refuse(_("A KPP has 9 characters; this one has %(count)s.") % {"count": len(number)})
    if not _ascii_digits(number[:4]):
        raise _refuse(_("A KPP starts with 4 digits, the tax office code."))
    if not all(c in string.digits + string.ascii_uppercase for c in number[4:6]):
        raise _refuse(
            _(
                "A KPP's 5th and 6th characters, the reason code, are digits or "
                "Latin capital letters (A to Z)."
            )
        )
    if not _ascii_digits(number[6:]):
        raise _refuse(_("A KPP ends with 3 digits, the registration number."))
    return number


def _ascii_digits(text: str) -> bool:
    """True when text is only 0-9, which str.isdigit is not (it takes any script's digits)."""
    return all(c in string.digits for c in text)


# --- phone ---------------------------------------------------------------------------------------


def normalize_phone(value: str, *, country: str = "") -> str:
    """The phone number in E.164 ('+33199001188'); national formats need the country."""
    value = value.strip()
    if not value:
        return ""
    country = country.strip().upper()
    if _strange(value, PHONE_CHARACTERS) or not any(c in string.digits for c in value):
        raise _refuse(
            _("This is not a phone number: use only digits, spaces and the signs + - ( ) . /")
        )
    number = _parse_phone(value, country)
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.TOO_SHORT:
        raise _refuse(_("This phone number is too short: check for a missing digit."))
    if reason == ValidationResult.TOO_LONG:
        raise _refuse(_("This phone number is too long: check for an extra digit."))
    if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise _refuse(_("Add the area code: this number can only be dialled locally."))
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        raise _refuse(_("The digits after the + are not a country code: check them."))
    if reason == ValidationResult.INVALID_LENGTH or not phonenumbers.is_valid_number(number):
        region = _phone_region(number, country)
        if region is None:
            raise _refuse(
                _("This is not a valid number for the country code +%(code)s.")
                % {"code": number.country_code}
            )
        raise _refuse(
            _("This is not a valid number in %(country)s.") % {"country": _country_name(region)}
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse_phone(value: str, country: str) -> phonenumbers.PhoneNumber:
    """The parsed number, reading a leading 00 as the international prefix it almost always is."""
    digits = value.lstrip(" (")
    if digits.startswith("00"):
        international = "+" + digits[2:]
        if not country:
            value = international
        else:
            # Where the international prefix is not 00 (RU 8~10, US 011) the library would read
            # 00 as part of a national number; a clerk who typed 00 meant +.
            try:
                number = phonenumbers.parse(international)
            except NumberParseException:
                number = None
            if number is not None and phonenumbers.is_valid_number(number):
                return number
    try:
        return phonenumbers.parse(value, country or None)
    except NumberParseException as failure:
        if failure.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if value.lstrip(" (").startswith("+"):
                raise _refuse(
                    _("The digits after the + are not a country code: check them.")
                ) from None
            raise _refuse(_("Add the country code, e.g. +33 1 99 00 11 88.")) from None
        if failure.error_type == NumberParseException.TOO_LONG:
            raise _refuse(_("This phone number is too long: check for an extra digit.")) from None
        # NOT_A_NUMBER here means too few digits: the characters were checked already.
        raise _refuse(_("This phone number is too short: check for a missing digit.")) from None


def _phone_region(number: phonenumbers.PhoneNumber, country: str) -> str | None:
    """The country to name in a refusal: the client's when the calling code is its own."""
    if country and phonenumbers.country_code_for_region(country) == number.country_code:
        return country
    region = phonenumbers.region_code_for_country_code(number.country_code)
    if region in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        return None
    return region


# --- email ---------------------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    """The address with its domain lowercased; the part before the @ is the mailbox's own."""
    value = value.strip()
    if not value:
        return ""
    if "@" not in value:
        raise _refuse(_("An email address has an @, as in name@example.com."))
    if any(c.isspace() for c in value):
        raise _refuse(_("An email address has no spaces."))
    local, _at, domain = value.rpartition("@")
    if not local:
        raise _refuse(_("Add the name before the @, as in name@example.com."))
    if not domain:
        raise _refuse(_("Add the domain after the @, as in name@example.com."))
    address = f"{local}@{domain.lower()}"
    try:
        validate_email(address)
    except ValidationError:
        raise _refuse(
            _("This is not a valid email address; it should look like name@example.com.")
        ) from None
    return address
