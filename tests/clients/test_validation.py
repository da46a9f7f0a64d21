"""Client identifiers come back canonical, or are refused with one message a clerk can act on."""

import ast
import re
import string
from pathlib import Path

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.ru import inn

from clientbase.clients import validation
from clientbase.clients.validation import (
    normalize_email,
    normalize_phone,
    normalize_tax_id,
    validate_kpp,
)

# Every sentence the module may show, as written; a refusal outside this list is a defect.
MESSAGES = [
    # RU INN
    "This looks like an INN and a KPP together: enter the KPP (after the /) in its own field.",
    "An INN has digits only; remove “%(chars)s”.",
    "An INN has 10 digits for a company and 12 for a person; this one has %(count)s.",
    "A company's INN has 10 digits; this one has 12, like a person's. "
    "If the client is an individual entrepreneur, make it an individual client.",
    "A person's INN has 12 digits; this one has 10, like a company's. "
    "If the client is a company, make it a company client.",
    "This INN's check digit is wrong: check for a mistyped digit.",
    # FR
    "Apart from the FR of a VAT number, a French tax id has digits only; remove “%(chars)s”.",
    "This SIREN (9 digits) fails its Luhn check: check for a mistyped digit.",
    "This SIRET (14 digits) fails its Luhn check: check for a mistyped digit.",
    "The SIREN in this SIRET (its first 9 digits) fails its Luhn check: "
    "check for a mistyped digit.",
    "A 13-digit number is a French personal tax number; for a company, give its SIREN "
    "(9 digits), SIRET (14 digits) or VAT number (FR and 11 characters).",
    "A French personal tax number starts with 0, 1, 2 or 3.",
    "The last 3 digits of this personal tax number (its check) do not match the first 10: "
    "check for a mistyped digit.",
    "A French company is identified by its SIREN (9 digits), SIRET (14 digits) or VAT number "
    "(FR and 11 characters); this one has %(count)s digits.",
    "A French tax id is a personal tax number (13 digits), a SIREN (9 digits), a SIRET "
    "(14 digits) or a VAT number (FR and 11 characters); this one has %(count)s digits.",
    "A French VAT number has 11 characters after FR (2 key characters and the 9-digit SIREN); "
    "this one has %(count)s.",
    "A French VAT number is FR, 2 key characters (digits, or letters other than I and O) and "
    "the 9 digits of the SIREN.",
    "The SIREN in this VAT number (its last 9 digits) fails its Luhn check: "
    "check for a mistyped digit.",
    "This VAT number's key (the 2 characters after FR) does not match its SIREN: "
    "check for a mistyped character.",
    # VN
    "An MST has digits only, with a dash before a branch number; remove “%(chars)s”.",
    "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); "
    "this one has %(count)s.",
    "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); a person may "
    "give their 12-digit identification number. This one has %(count)s digits.",
    "An MST's 3rd to 9th digits cannot all be zero.",
    "A branch number (the 3 digits after the dash) runs from 001 to 999.",
    "This MST's check digit (the 10th digit) is wrong: check for a mistyped digit.",
    # EU VAT and other countries stdnum knows
    "This VAT number starts with %(prefix)s, but the client's country is %(country)s: "
    "correct the number or the country.",
    "The check digit of this tax id does not match: check for a mistyped character.",
    "This tax id has the wrong number of characters for %(country)s: "
    "check for a missing or extra one.",
    "This tax id is not in the format used in %(country)s: "
    "check for a letter or sign out of place.",
    "Part of this tax id is not valid in %(country)s (such as a region or date code): "
    "check it against the client's documents.",
    "This is not a valid tax id for %(country)s.",
    # countries stdnum does not know
    "A tax id has at most %(max)s characters; this one has %(count)s.",
    "A tax id may contain only Latin letters, digits and the signs - / and .; remove “%(chars)s”.",
    # KPP
    "Type the KPP's letters on the Latin keyboard: “%(chars)s” is Cyrillic.",
    "A KPP has 9 characters; this one has %(count)s.",
    "A KPP starts with 4 digits, the tax office code.",
    "A KPP's 5th and 6th characters, the reason code, are digits or "
    "Latin capital letters (A to Z).",
    "A KPP ends with 3 digits, the registration number.",
    # phone
    "This is not a phone number: use only digits, spaces and the signs + - ( ) . /",
    "This phone number is too short: check for a missing digit.",
    "This phone number is too long: check for an extra digit.",
    "Add the area code: this number can only be dialled locally.",
    "The digits after the + are not a country code: check them.",
    "Add the country code, e.g. +33 1 99 00 11 88.",
    "This is not a valid number for the country code +%(code)s.",
    "This is not a valid number in %(country)s.",
    # email
    "An email address has an @, as in name@example.com.",
    "An email address has no spaces.",
    "Add the name before the @, as in name@example.com.",
    "Add the domain after the @, as in name@example.com.",
    "This is not a valid email address; it should look like name@example.com.",
]
KNOWN = re.compile(
    "|".join(
        "(?:" + re.sub(r"%\\\(\w+\\\)s", ".+", re.escape(template)) + ")" for template in MESSAGES
    )
)


# Cyrillic letters, spelt as escapes so that the source shows they are not Latin.
CYRILLIC_A_VE = "\u0410\u0412"
CYRILLIC_I_EN_EN = "\u0418\u041d\u041d"


def refusal(call, *args, **kwargs) -> str:
    """The one message a refused value gets."""
    with pytest.raises(ValidationError) as refused:
        call(*args, **kwargs)
    assert len(refused.value.messages) == 1
    return refused.value.messages[0]


# --- tax ids: empty and unknown kind -------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
@pytest.mark.parametrize("country", ["RU", "FR", "VN", "DE", "US", ""])
def test_an_empty_tax_id_is_no_tax_id(value, country):
    assert normalize_tax_id(value, country=country, kind="company") == ""


def test_a_kind_other_than_company_or_individual_is_a_programming_error():
    with pytest.raises(ValueError):
        normalize_tax_id("7707083893", country="RU", kind="person")


# --- RU INN --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("7707083893", "company", "7707083893"),
        (" 7707 083 893 ", "company", "7707083893"),
        ("500100732259", "individual", "500100732259"),
        ("5001 0073 2259", "individual", "500100732259"),
    ],
)
def test_a_valid_inn_comes_back_compact(value, kind, expected):
    assert normalize_tax_id(value, country="RU", kind=kind) == expected


def test_the_country_code_may_be_lowercase():
    assert normalize_tax_id("7707083893", country="ru", kind="company") == "7707083893"


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (
            "77070838931",
            "company",
            "An INN has 10 digits for a company and 12 for a person; this one has 11.",
        ),
        (
            "770708389",
            "individual",
            "An INN has 10 digits for a company and 12 for a person; this one has 9.",
        ),
        (
            "500100732259",
            "company",
            "A company's INN has 10 digits; this one has 12, like a person's. "
            "If the client is an individual entrepreneur, make it an individual client.",
        ),
        (
            "7707083893",
            "individual",
            "A person's INN has 12 digits; this one has 10, like a company's. "
            "If the client is a company, make it a company client.",
        ),
        ("7707083894", "company", "This INN's check digit is wrong: check for a mistyped digit."),
        (
            "500100732258",
            "individual",
            "This INN's check digit is wrong: check for a mistyped digit.",
        ),
        ("77O7083893", "company", "An INN has digits only; remove “O”."),
        ("7707-083-893", "company", "An INN has digits only; remove “-”."),
        (
            "7707083893/773601001",
            "company",
            "This looks like an INN and a KPP together: enter the KPP (after the /) in its own "
            "field.",
        ),
    ],
)
def test_a_wrong_inn_is_refused_with_what_is_wrong(value, kind, message):
    assert refusal(normalize_tax_id, value, country="RU", kind=kind) == message


nine_digits = st.text(alphabet=string.digits, min_size=9, max_size=9)
eleven_digits = st.text(alphabet=string.digits, min_size=11, max_size=11)


@given(nine_digits)
def test_any_company_inn_with_the_right_check_digit_is_accepted(body):
    number = body + inn.calc_company_check_digit(body)
    assert normalize_tax_id(number, country="RU", kind="company") == number


@given(eleven_digits.map(lambda d: d[:10]))
def test_any_personal_inn_with_the_right_check_digits_is_accepted(body):
    number = body + inn.calc_personal_check_digits(body)
    assert normalize_tax_id(number, country="RU", kind="individual") == number


@given(nine_digits, st.integers(1, 9))
def test_a_company_inn_with_a_changed_check_digit_is_refused(body, shift):
    check = inn.calc_company_check_digit(body)
    wrong = str((int(check) + shift) % 10)
    assert (
        refusal(normalize_tax_id, body + wrong, country="RU", kind="company")
        == "This INN's check digit is wrong: check for a mistyped digit."
    )


@given(eleven_digits.map(lambda d: d[:10]), st.integers(10, 11), st.integers(1, 9))
def test_a_personal_inn_with_a_changed_check_digit_is_refused(body, position, shift):
    number = list(body + inn.calc_personal_check_digits(body))
    number[position] = str((int(number[position]) + shift) % 10)
    assert (
        refusal(normalize_tax_id, "".join(number), country="RU", kind="individual")
        == "This INN's check digit is wrong: check for a mistyped digit."
    )


@given(nine_digits, st.integers(0, 8), st.integers(1, 9))
def test_a_company_inn_with_one_changed_digit_is_refused_unless_its_check_still_holds(
    body, position, shift
):
    # The INN check is a weighted sum mod 11 then mod 10, so residues 0 and 10 share the check
    # digit 0: a few single-digit changes keep a valid INN, and nothing can refuse those.
    number = body + inn.calc_company_check_digit(body)
    changed = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    if inn.calc_company_check_digit(changed[:9]) == changed[9]:
        assert normalize_tax_id(changed, country="RU", kind="company") == changed
    else:
        assert (
            refusal(normalize_tax_id, changed, country="RU", kind="company")
            == "This INN's check digit is wrong: check for a mistyped digit."
        )


def test_the_inn_check_cannot_catch_every_single_digit_change():
    # Given two valid INNs one digit apart (the check digit's known blind spot)
    # then both are accepted: the check digit is all there is to go on.
    assert normalize_tax_id("7707083830", country="RU", kind="company") == "7707083830"
    assert normalize_tax_id("7700083830", country="RU", kind="company") == "7700083830"


# --- FR ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("732829320", "company", "732829320"),
        ("732 829 320", "company", "732829320"),
        ("732829320", "individual", "732829320"),
        ("73282932000074", "company", "73282932000074"),
        ("732 829 320 00074", "company", "73282932000074"),
        ("732.829.320.00074", "company", "73282932000074"),
        ("FR40303265045", "company", "FR40303265045"),
        ("fr 40 303 265 045", "company", "FR40303265045"),
        ("40303265045", "company", "FR40303265045"),
        ("FR-40-303265045", "company", "FR40303265045"),
        ("3023217600053", "individual", "3023217600053"),
        ("30 23 217 600 053", "individual", "3023217600053"),
    ],
)
def test_a_valid_french_number_comes_back_compact(value, kind, expected):
    assert normalize_tax_id(value, country="FR", kind=kind) == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (
            "732829321",
            "company",
            "This SIREN (9 digits) fails its Luhn check: check for a mistyped digit.",
        ),
        (
            "73282932000075",
            "company",
            "This SIRET (14 digits) fails its Luhn check: check for a mistyped digit.",
        ),
        (
            # passes the 14-digit Luhn check, but 100000000 does not pass the SIREN's
            "10000000000008",
            "company",
            "The SIREN in this SIRET (its first 9 digits) fails its Luhn check: "
            "check for a mistyped digit.",
        ),
        (
            "FR41303265045",
            "company",
            "This VAT number's key (the 2 characters after FR) does not match its SIREN: "
            "check for a mistyped character.",
        ),
        (
            "FR40303265046",
            "company",
            "The SIREN in this VAT number (its last 9 digits) fails its Luhn check: "
            "check for a mistyped digit.",
        ),
        (
            "FR4030326504",
            "company",
            "A French VAT number has 11 characters after FR (2 key characters and the 9-digit "
            "SIREN); this one has 10.",
        ),
        (
            "FRIO303265045",
            "company",
            "A French VAT number is FR, 2 key characters (digits, or letters other than I and O) "
            "and the 9 digits of the SIREN.",
        ),
        (
            "FR40303A65045",
            "company",
            "A French VAT number is FR, 2 key characters (digits, or letters other than I and O) "
            "and the 9 digits of the SIREN.",
        ),
        (
            "3023217600053",
            "company",
            "A 13-digit number is a French personal tax number; for a company, give its SIREN "
            "(9 digits), SIRET (14 digits) or VAT number (FR and 11 characters).",
        ),
        (
            "5023217600053",
            "individual",
            "A French personal tax number starts with 0, 1, 2 or 3.",
        ),
        (
            "3023217600054",
            "individual",
            "The last 3 digits of this personal tax number (its check) do not match the "
            "first 10: check for a mistyped digit.",
        ),
        (
            "12345",
            "company",
            "A French company is identified by its SIREN (9 digits), SIRET (14 digits) or VAT "
            "number (FR and 11 characters); this one has 5 digits.",
        ),
        (
            "12345",
            "individual",
            "A French tax id is a personal tax number (13 digits), a SIREN (9 digits), a SIRET "
            "(14 digits) or a VAT number (FR and 11 characters); this one has 5 digits.",
        ),
        (
            "73282932O",
            "company",
            "Apart from the FR of a VAT number, a French tax id has digits only; remove “O”.",
        ),
    ],
)
def test_a_wrong_french_number_is_refused_naming_the_number_and_the_check(value, kind, message):
    assert refusal(normalize_tax_id, value, country="FR", kind=kind) == message


# --- VN MST --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("0100233488", "company", "0100233488"),
        ("01.00.233.488", "company", "0100233488"),
        ("0314409058-002", "company", "0314409058-002"),
        ("0314409058002", "company", "0314409058-002"),
        ("0314409058 - 002", "company", "0314409058-002"),
        ("0100233488", "individual", "0100233488"),
        # since July 2025 a person's 12-digit identification number is their tax code
        ("001085012345", "individual", "001085012345"),
    ],
)
def test_a_valid_mst_comes_back_in_its_display_form(value, kind, expected):
    assert normalize_tax_id(value, country="VN", kind=kind) == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (
            # the brief's example: its 10th digit does not match, so it is no real MST
            "0312345678-001",
            "company",
            "This MST's check digit (the 10th digit) is wrong: check for a mistyped digit.",
        ),
        (
            "0100233480",
            "company",
            "This MST's check digit (the 10th digit) is wrong: check for a mistyped digit.",
        ),
        ("0100000008", "company", "An MST's 3rd to 9th digits cannot all be zero."),
        (
            "0314409058-000",
            "company",
            "A branch number (the 3 digits after the dash) runs from 001 to 999.",
        ),
        (
            "12345",
            "company",
            "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); "
            "this one has 5.",
        ),
        (
            "001085012345",
            "company",
            "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); "
            "this one has 12.",
        ),
        (
            "12345",
            "individual",
            "An MST has 10 digits, or 13 for a branch (10 digits, a dash and 3 digits); a person "
            "may give their 12-digit identification number. This one has 5 digits.",
        ),
        (
            "0314409058/002",
            "company",
            "An MST has digits only, with a dash before a branch number; remove “/”.",
        ),
    ],
)
def test_a_wrong_mst_is_refused_with_what_is_wrong(value, kind, message):
    assert refusal(normalize_tax_id, value, country="VN", kind=kind) == message


# --- EU VAT and other countries stdnum knows -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "kind", "expected"),
    [
        ("DE136695976", "DE", "company", "DE136695976"),
        ("136695976", "DE", "company", "DE136695976"),
        ("de 136 695 976", "DE", "company", "DE136695976"),
        ("ATU13585627", "AT", "company", "ATU13585627"),
        ("U13585627", "AT", "company", "ATU13585627"),
        # Greece's VAT prefix is EL, not its ISO code
        ("EL094259216", "GR", "company", "EL094259216"),
        ("GR094259216", "GR", "company", "EL094259216"),
        ("094259216", "GR", "company", "EL094259216"),
        # a German person may give the VAT number of their trade or their personal tax number
        ("DE136695976", "DE", "individual", "DE136695976"),
        ("36 574 261 809", "DE", "individual", "36574261809"),
        ("53 004 085 616", "AU", "company", "53004085616"),
        ("GB980780684", "GB", "company", "980780684"),
        ("12-3456789", "US", "company", "123456789"),
        ("390.533.447-05", "BR", "individual", "39053344705"),
        ("RSSMRA85T10A562S", "IT", "individual", "RSSMRA85T10A562S"),
    ],
)
def test_a_valid_number_of_a_country_stdnum_knows_comes_back_compact(
    value, country, kind, expected
):
    assert normalize_tax_id(value, country=country, kind=kind) == expected


@pytest.mark.parametrize(
    ("value", "country", "kind", "message"),
    [
        (
            "136695978",
            "DE",
            "company",
            "The check digit of this tax id does not match: check for a mistyped character.",
        ),
        (
            "1366959",
            "DE",
            "company",
            "This tax id has the wrong number of characters for Germany: "
            "check for a missing or extra one.",
        ),
        (
            # a personal tax number is no company's tax id
            "36574261809",
            "DE",
            "company",
            "This tax id has the wrong number of characters for Germany: "
            "check for a missing or extra one.",
        ),
        (
            # of the VAT number and the personal tax number, the one of its length failed its
            # check, and that is what a clerk needs to hear
            "36574261890",
            "DE",
            "individual",
            "The check digit of this tax id does not match: check for a mistyped character.",
        ),
        (
            "FR40303265045",
            "DE",
            "company",
            "This VAT number starts with FR, but the client's country is Germany: "
            "correct the number or the country.",
        ),
        (
            "53 004 085 617",
            "AU",
            "company",
            "The check digit of this tax id does not match: check for a mistyped character.",
        ),
        (
            # 12 is no Italian province office
            "12345678901",
            "IT",
            "company",
            "Part of this tax id is not valid in Italy (such as a region or date code): "
            "check it against the client's documents.",
        ),
        (
            "RSSMRA85T10A562T",
            "IT",
            "individual",
            "The check digit of this tax id does not match: check for a mistyped character.",
        ),
        (
            "DE13669597X",
            "DE",
            "company",
            "This tax id is not in the format used in Germany: "
            "check for a letter or sign out of place.",
        ),
    ],
)
def test_a_wrong_number_of_a_country_stdnum_knows_is_refused(value, country, kind, message):
    assert refusal(normalize_tax_id, value, country=country, kind=kind) == message


def test_a_library_failure_of_an_unexpected_kind_is_told_in_our_words(monkeypatch, request):
    # Given a country whose stdnum module breaks on odd input with a plain error
    class Broken:
        @staticmethod
        def validate(number):
            raise IndexError("string index out of range")

    monkeypatch.setattr(validation, "get_cc_module", lambda cc, name: Broken)
    # (the modules found are remembered per country: forget them, now and after)
    validation._cached_stdnum_modules.cache_clear()
    request.addfinalizer(validation._cached_stdnum_modules.cache_clear)
    # then the clerk reads a sentence of ours, not the library's
    assert (
        refusal(normalize_tax_id, "12", country="NG", kind="company")
        == "This is not a valid tax id for Nigeria."
    )


# --- countries stdnum does not know --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("ABC 123/45.6", "NG", "ABC123/45.6"),
        ("12-34", "", "12-34"),
        ("x" * 32, "NG", "x" * 32),
        ("FR40303265045", "", "FR40303265045"),
    ],
)
def test_a_tax_id_of_an_unknown_country_loses_only_its_spaces(value, country, expected):
    assert normalize_tax_id(value, country=country, kind="company") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 33, "A tax id has at most 32 characters; this one has 33."),
        (
            "ABC#1_2#",
            "A tax id may contain only Latin letters, digits and the signs - / and .; remove “#_”.",
        ),
        (
            CYRILLIC_I_EN_EN + "123",
            "A tax id may contain only Latin letters, digits and the signs - / and .; "
            "remove “" + CYRILLIC_I_EN_EN[:2] + "”.",
        ),
    ],
)
def test_a_tax_id_of_an_unknown_country_with_odd_signs_is_refused(value, message):
    assert refusal(normalize_tax_id, value, country="NG", kind="company") == message


# --- KPP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("773601001", "773601001"),
        (" 7736 01 001 ", "773601001"),
        ("0123AB001", "0123AB001"),
        ("0123ab001", "0123AB001"),
        ("", ""),
        ("  ", ""),
    ],
)
def test_a_valid_kpp_comes_back_compact(value, expected):
    assert validate_kpp(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7736010", "A KPP has 9 characters; this one has 7."),
        ("7736-01001", "A KPP has 9 characters; this one has 10."),
        ("77A601001", "A KPP starts with 4 digits, the tax office code."),
        (
            "7736-1001",
            "A KPP's 5th and 6th characters, the reason code, are digits or "
            "Latin capital letters (A to Z).",
        ),
        ("7736010O1", "A KPP ends with 3 digits, the registration number."),
        (
            "7736" + CYRILLIC_A_VE + "001",
            "Type the KPP's letters on the Latin keyboard: “" + CYRILLIC_A_VE + "” is Cyrillic.",
        ),
    ],
)
def test_a_wrong_kpp_is_refused_with_what_is_wrong(value, message):
    assert refusal(validate_kpp, value) == message


# --- phone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("01 99 00 11 88", "FR", "+33199001188"),
        ("01 99 00 11 88", "fr", "+33199001188"),
        ("+33 1 99 00 11 88", "", "+33199001188"),
        ("+33199001188", "", "+33199001188"),
        ("+33 (0)1-99-00-11-88", "", "+33199001188"),
        ("+33 1 99 00 11 88", "RU", "+33199001188"),
        ("0033 1 99 00 11 88", "", "+33199001188"),
        ("0033 1 99 00 11 88", "FR", "+33199001188"),
        # in Russia the international prefix is 8~10, yet a clerk who types 00 means +
        ("0033 1 99 00 11 88", "RU", "+33199001188"),
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("+7 912 345 67 89", "", "+79123456789"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+800 1234 5678", "", "+80012345678"),
        ("", "FR", ""),
        ("   ", "", ""),
    ],
)
def test_a_valid_phone_number_comes_back_in_e164(value, country, expected):
    assert normalize_phone(value, country=country) == expected


@pytest.mark.parametrize(
    ("value", "country", "message"),
    [
        ("hello", "", "This is not a phone number: use only digits, spaces and the signs + - ( ) . /"),
        ("01 99 ext 12", "FR", "This is not a phone number: use only digits, spaces and the signs + - ( ) . /"),
        ("+-()", "", "This is not a phone number: use only digits, spaces and the signs + - ( ) . /"),
        ("01 99 00 11 88", "", "Add the country code, e.g. +33 1 99 00 11 88."),
        ("+999 123 456", "", "The digits after the + are not a country code: check them."),
        ("+33 1", "", "This phone number is too short: check for a missing digit."),
        ("1", "", "This phone number is too short: check for a missing digit."),
        ("12", "FR", "This phone number is too short: check for a missing digit."),
        ("+33 1 99 00 11 88 99 99 99 99", "", "This phone number is too long: check for an extra digit."),
        ("+44 79111234567", "", "This phone number is too long: check for an extra digit."),
        ("253 0000", "US", "Add the area code: this number can only be dialled locally."),
        ("+33 0 99 00 11 88", "", "This is not a valid number in France."),
        ("09 99 00 11 88 0", "FR", "This phone number is too long: check for an extra digit."),
        ("+1 200 555 0100", "CA", "This is not a valid number in Canada."),
        ("+1 200 555 0100", "", "This is not a valid number in United States of America."),
        ("+800 0234 5678", "", "This is not a valid number for the country code +800."),
    ],
)  # fmt: skip
def test_a_wrong_phone_number_is_refused_with_what_is_wrong(value, country, message):
    assert refusal(normalize_phone, value, country=country) == message


def _example_numbers():
    """Real-shaped numbers of every region and line type the phone library knows."""
    kinds = [
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
    ]
    return st.tuples(
        st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)), st.sampled_from(kinds)
    )


@given(_example_numbers())
def test_a_number_written_the_national_way_with_its_country_comes_back_as_itself(example):
    region, kind = example
    number = phonenumbers.example_number_for_type(region, kind)
    assume(number is not None and phonenumbers.is_valid_number_for_region(number, region))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(national, country=region) == e164


@given(_example_numbers(), st.sampled_from(["", "FR", "RU", "VN", "US"]))
def test_normalize_phone_is_idempotent_on_its_own_output(example, other_country):
    region, kind = example
    number = phonenumbers.example_number_for_type(region, kind)
    assume(number is not None)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    try:
        once = normalize_phone(international)
    except ValidationError:
        assume(False)
    assert normalize_phone(once) == once
    assert normalize_phone(once, country=other_country) == once


@given(st.text(alphabet="0123456789 +-().", max_size=24), st.sampled_from(["", "FR", "RU", "US"]))
def test_whatever_normalize_phone_accepts_is_a_fixed_point(value, country):
    try:
        once = normalize_phone(value, country=country)
    except ValidationError as refused:
        assert KNOWN.fullmatch(refused.messages[0]), refused.messages[0]
        return
    assert normalize_phone(once) == once
    assert normalize_phone(once, country=country) == once


# --- email ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee@Example.COM ", "Ann.Lee@example.com"),
        ("ANN+crm@MAIL.Example.org", "ANN+crm@mail.example.org"),
        ("ann@Bücher.DE", "ann@bücher.de"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_an_email_keeps_its_mailbox_and_lowercases_its_domain(value, expected):
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ann.example.com", "An email address has an @, as in name@example.com."),
        ("ann lee@example.com", "An email address has no spaces."),
        ("@example.com", "Add the name before the @, as in name@example.com."),
        ("ann@", "Add the domain after the @, as in name@example.com."),
        ("ann@example", "This is not a valid email address; it should look like name@example.com."),
        ("a@b@example.com", "This is not a valid email address; it should look like name@example.com."),
        ("ann@exa_mple.com", "This is not a valid email address; it should look like name@example.com."),
    ],
)  # fmt: skip
def test_a_wrong_email_is_refused_with_what_is_wrong(value, message):
    assert refusal(normalize_email, value) == message


# --- messages ------------------------------------------------------------------------------------

COUNTRIES = ["", "RU", "FR", "VN", "DE", "GR", "AT", "IT", "US", "GB", "BR", "AU", "NG", "ZZ"]
ODD_TEXT = st.text(
    alphabet=string.digits * 3 + "ABEFLORUXZabe -./#_+()АВ٣é", min_size=1, max_size=20
)


@given(ODD_TEXT, st.sampled_from(COUNTRIES), st.sampled_from(["company", "individual"]))
def test_a_tax_id_is_accepted_as_its_own_canonical_form_or_refused_in_our_own_words(
    value, country, kind
):
    try:
        once = normalize_tax_id(value, country=country, kind=kind)
    except ValidationError as refused:
        assert len(refused.messages) == 1
        assert KNOWN.fullmatch(refused.messages[0]), refused.messages[0]
        return
    assert len(once) <= 32
    assert normalize_tax_id(once, country=country, kind=kind) == once


@given(ODD_TEXT)
def test_a_kpp_and_an_email_are_refused_in_our_own_words(value):
    for check in (validate_kpp, normalize_email):
        try:
            check(value)
        except ValidationError as refused:
            assert len(refused.messages) == 1
            assert KNOWN.fullmatch(refused.messages[0]), refused.messages[0]


def test_the_message_list_is_every_message_the_module_has():
    source = ast.parse(Path(validation.__file__).read_text(encoding="utf-8"))
    marked = {
        node.args[0].value
        for node in ast.walk(source)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_"
    }
    assert marked == set(MESSAGES)
    assert len(MESSAGES) == 51


def test_the_message_list_matches_no_library_text():
    # The libraries' own sentences, which must never reach a clerk.
    assert not KNOWN.fullmatch("The number's checksum or check digit is invalid.")
    assert not KNOWN.fullmatch("(0) Missing or invalid default region.")
    assert not KNOWN.fullmatch("Enter a valid email address.")
