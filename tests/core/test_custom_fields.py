"""Administrator-defined custom fields (CUS-7): definitions, values, form, profile and API."""

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.test import Client as HttpClient

from clientbase.clients.forms import ClientForm
from clientbase.clients.models import Client
from clientbase.clients.services import client_create, client_update
from clientbase.core import customfields
from clientbase.core.audit import Masked
from clientbase.core.customfields import MASK, custom_field_save
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditAction, AuditEntry, CustomField, Event

NUMBER_HELP = "Enter a number, e.g. 1250 or 12.5."
DATE_HELP = "Enter a date as YYYY-MM-DD."
CODE_HELP = "Use at most 40 lowercase letters a-z, digits and _, starting with a letter."


def _field(by, code: str, label: str, type: str = "text", **values) -> CustomField:
    return custom_field_save(field=None, by=by, code=code, label=label, type=type, **values)


def _company(by, name: str = "Acme", **fields) -> Client:
    return client_create(
        by=by, kind="company", company_name=name, email=f"{name.lower()}@example.com", **fields
    )


def _post(http: HttpClient, path: str, data):
    return http.post(path, json.dumps(data), content_type="application/json")


def _patch(http: HttpClient, path: str, data):
    return http.patch(path, json.dumps(data), content_type="application/json")


def _refused(*errors: tuple[str, str]) -> dict:
    """The 422 problem the API answers for a service's refusal."""
    return {
        "type": "about:blank",
        "title": "Refused",
        "status": 422,
        "detail": "; ".join(message for _field, message in errors),
        "errors": [{"field": field, "message": message} for field, message in errors],
    }


def _audit_text() -> str:
    """Every audit entry's changes as one JSON text, to look for a leaked secret."""
    return json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))


@pytest.fixture
def ann(make_user):
    """A billing clerk: sees every client, may add and change them, may not read secrets."""
    return make_user("ann", role="billing", unit="company")


@pytest.fixture
def fields(admin_user):
    """One field of each type, in form order."""
    return {
        "code_1c": _field(admin_user, "code_1c", "1C code", in_simple_form=True, position=1),
        "employees": _field(
            admin_user, "employees", "Employees", "number", for_individuals=False, position=2
        ),
        "founded": _field(admin_user, "founded", "Founded", "date", position=3),
        "tier": _field(
            admin_user, "tier", "Tier", "choice", choices=["Gold", "Silver"], position=4
        ),
        "no_suspend": _field(
            admin_user, "no_suspend", "Do not auto-suspend", "boolean", position=5
        ),
        "portal_pin": _field(admin_user, "portal_pin", "Portal PIN", "secret", position=6),
    }


@pytest.fixture
def inn_when_russian(admin_user):
    """A field required only of clients in Russia (the rule's value typed in lowercase)."""
    return _field(
        admin_user,
        "inn_1c",
        "INN for 1C",
        required_when_field="country",
        required_when_value="ru",
        position=7,
    )


@pytest.fixture
def contract_required(admin_user):
    """A number every client must have."""
    return _field(admin_user, "contract_no", "Contract number", "number", required=True, position=8)


# --- definitions ---------------------------------------------------------------------------


def test_a_definition_is_cleaned_saved_and_audited(admin_user):
    # when an administrator defines a choice field with untidy input
    field = _field(
        admin_user,
        " Code_1C ",
        "  1C code ",
        "choice",
        choices=[" Gold ", "Silver", "Gold", "", "  "],
        help_text="From the accounting system",
    )
    # then the code is lowercased, the label trimmed, the choices trimmed and unique
    field.refresh_from_db()
    assert (field.code, field.label, field.type, field.choices) == (
        "code_1c",
        "1C code",
        "choice",
        ["Gold", "Silver"],
    )
    assert (field.applies_to, field.for_individuals, field.for_companies, field.active) == (
        "client",
        True,
        True,
        True,
    )
    # and the audit log has its creation by the administrator
    entry = AuditEntry.objects.get(object_type__model="customfield")
    assert (entry.action, entry.actor, entry.object_id) == (
        AuditAction.CREATE,
        admin_user,
        str(field.pk),
    )
    assert entry.changes["code"] == {"before": None, "after": "code_1c"}
    assert entry.changes["choices"] == {"before": None, "after": ["Gold", "Silver"]}


def test_a_field_that_is_no_choice_keeps_no_choices(admin_user):
    field = _field(admin_user, "note_1c", "Note", "text", choices=["a", "b"])
    field.refresh_from_db()
    assert field.choices == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"code": " "}, {"code": ["Give the field a code, e.g. code_1c."]}),
        ({"code": "1c_code"}, {"code": [CODE_HELP]}),
        ({"code": "_code"}, {"code": [CODE_HELP]}),
        ({"code": "code-1c"}, {"code": [CODE_HELP]}),
        ({"code": "code 1c"}, {"code": [CODE_HELP]}),
        ({"label": "   "}, {"label": ["Give the field a label."]}),
        ({"type": "money"}, {"type": ["Choose a type."]}),
        (
            {"type": "choice", "choices": ["Gold"]},
            {"choices": ["A choice field needs at least two choices."]},
        ),
        (
            {"type": "choice", "choices": ["Gold", " Gold ", ""]},
            {"choices": ["A choice field needs at least two choices."]},
        ),
        (
            {"for_individuals": False, "for_companies": False},
            {"for_companies": ["Ask the field of individuals, companies or both."]},
        ),
        (
            {"required": True, "required_when_field": "country", "required_when_value": "RU"},
            {
                "required_when_field": [
                    "A field always required needs no condition; clear one of them."
                ]
            },
        ),
        (
            {"required_when_field": "country", "required_when_value": "  "},
            {"required_when_value": ["Say which value makes the field required."]},
        ),
        (
            {"required_when_field": "owner", "required_when_value": "1"},
            {"required_when_field": ["Choose a field of the client."]},
        ),
        (
            {"required_when_field": "custom.nowhere", "required_when_value": "x"},
            {"required_when_field": ["Choose a field of the client."]},
        ),
        (
            {"code": "9", "label": "", "type": "choice", "choices": []},
            {
                "code": [CODE_HELP],
                "label": ["Give the field a label."],
                "choices": ["A choice field needs at least two choices."],
            },
        ),
    ],
)
def test_a_bad_definition_is_refused_at_its_field_and_nothing_is_saved(
    admin_user, values, expected
):
    definition = {"code": "code_1c", "label": "1C code", "type": "text"} | values
    with pytest.raises(ServiceError) as refused:
        custom_field_save(field=None, by=admin_user, **definition)
    assert refused.value.message_dict == expected
    assert CustomField.objects.count() == 0
    assert AuditEntry.objects.filter(object_type__model="customfield").count() == 0


@pytest.mark.parametrize(
    "code", ["код_1с", "code²", "c" * 41], ids=["cyrillic", "superscript", "41-long"]
)
def test_the_service_refuses_codes_the_admin_form_refuses(admin_user, code):
    with pytest.raises(ServiceError) as refused:
        custom_field_save(field=None, by=admin_user, code=code, label="Code", type="text")
    assert refused.value.message_dict == {"code": [CODE_HELP]}
    assert CustomField.objects.count() == 0


def test_a_code_is_unique_whatever_its_case(admin_user, fields):
    # when another field is defined with a code in use, in other case
    with pytest.raises(ServiceError) as refused:
        _field(admin_user, "CODE_1C", "Another 1C code")
    # then it is refused at the code, and the first field is alone
    assert refused.value.message_dict == {"code": ["Another field already has this code."]}
    assert list(CustomField.objects.filter(code="code_1c").values_list("label", flat=True)) == [
        "1C code"
    ]
    assert CustomField.objects.count() == 6


def test_the_code_cannot_change(admin_user, fields):
    # given the 1C code field
    field = fields["code_1c"]
    # when its code is changed along with its label
    with pytest.raises(ServiceError) as refused:
        custom_field_save(field=field, by=admin_user, code="code_one_c", label="Code in 1C")
    # then it is refused at the code, and nothing changed
    assert refused.value.message_dict == {
        "code": ["The code cannot change: imports, exports and the API use it."]
    }
    field.refresh_from_db()
    assert (field.code, field.label) == ("code_1c", "1C code")
    assert AuditEntry.objects.filter(action=AuditAction.UPDATE).count() == 0


def test_a_change_to_a_definition_is_audited(admin_user, fields):
    field = fields["tier"]
    saved = custom_field_save(
        field=field,
        by=admin_user,
        code="tier",
        label="Tier ",
        choices=["Gold", "Silver", "Bronze"],
        required_when_field="country",
        required_when_value=" FR ",
    )
    saved.refresh_from_db()
    assert (saved.label, saved.choices, saved.required_when_field, saved.required_when_value) == (
        "Tier",
        ["Gold", "Silver", "Bronze"],
        "country",
        "FR",
    )
    entry = AuditEntry.objects.get(action=AuditAction.UPDATE)
    assert entry.changes == {
        "choices": {"before": ["Gold", "Silver"], "after": ["Gold", "Silver", "Bronze"]},
        "required_when_field": {"before": "", "after": "country"},
        "required_when_value": {"before": "", "after": "FR"},
    }


def test_a_refused_change_leaves_the_definition_as_it_was(admin_user, fields):
    field = fields["tier"]
    with pytest.raises(ServiceError) as refused:
        custom_field_save(field=field, by=admin_user, label="Level", choices=["Gold"])
    assert refused.value.message_dict == {"choices": ["A choice field needs at least two choices."]}
    field.refresh_from_db()
    assert (field.label, field.choices) == ("Tier", ["Gold", "Silver"])


def test_unknown_definition_fields_are_a_programming_error(admin_user):
    with pytest.raises(TypeError, match=r"unexpected fields \['colour'\]"):
        custom_field_save(field=None, by=admin_user, code="c", label="C", colour="red")
    assert CustomField.objects.count() == 0


def test_a_rule_may_test_client_fields_and_other_custom_fields(admin_user, fields):
    assert customfields.condition_fields() == {
        "kind": "Kind",
        "country": "Country",
        "status": "Status",
        "currency": "Currency",
        "language": "Language",
        "payment_method": "Payment method",
        "tax_exempt": "Tax exempt",
        "custom.code_1c": "1C code",
        "custom.employees": "Employees",
        "custom.founded": "Founded",
        "custom.tier": "Tier",
        "custom.no_suspend": "Do not auto-suspend",
        "custom.portal_pin": "Portal PIN",
    }
    field = _field(
        admin_user,
        "gold_reason",
        "Why gold",
        required_when_field="custom.tier",
        required_when_value="gold",
    )
    assert (field.required_when_field, field.required_when_value) == ("custom.tier", "gold")


def test_fields_for_a_kind_and_a_mode(admin_user, fields, inn_when_russian, contract_required):
    # given a deactivated field
    _field(admin_user, "old_code", "Old code", active=False, in_simple_form=True)
    codes = lambda found: [f.code for f in found]  # noqa: E731
    all_active = [
        "code_1c",
        "employees",
        "founded",
        "tier",
        "no_suspend",
        "portal_pin",
        "inn_1c",
        "contract_no",
    ]
    assert codes(customfields.fields_for()) == all_active
    assert codes(customfields.fields_for(kind="company")) == all_active
    assert codes(customfields.fields_for(kind="individual")) == [
        c for c in all_active if c != "employees"
    ]
    # the simple form shows the fields marked for it and any that may be required
    assert codes(customfields.fields_for(mode="simple")) == ["code_1c", "inn_1c", "contract_no"]


@pytest.mark.parametrize(
    ("rule", "record", "expected"),
    [
        ({"required": True}, {}, True),
        ({}, {"country": "RU"}, False),
        ({"required_when_field": "country", "required_when_value": "ru"}, {"country": "RU"}, True),
        (
            {"required_when_field": "country", "required_when_value": "RU"},
            {"country": " ru "},
            True,
        ),
        ({"required_when_field": "country", "required_when_value": "RU"}, {"country": "FR"}, False),
        ({"required_when_field": "country", "required_when_value": "RU"}, {"country": ""}, False),
        (
            {"required_when_field": "tax_exempt", "required_when_value": "Yes"},
            {"tax_exempt": True},
            True,
        ),
        (
            {"required_when_field": "tax_exempt", "required_when_value": "no"},
            {"tax_exempt": False},
            True,
        ),
        (
            {"required_when_field": "custom.tier", "required_when_value": "GOLD"},
            {"custom": {"tier": "Gold"}},
            True,
        ),
        (
            {"required_when_field": "custom.tier", "required_when_value": "gold"},
            {"custom": None},
            False,
        ),
    ],
)
def test_is_required_by_its_own_rule(rule, record, expected):
    field = CustomField(code="x", label="X", **rule)
    assert customfields.is_required(field, SimpleNamespace(**record)) is expected


# --- values through the services -----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "raw", "stored"),
    [
        ("code_1c", "  АБ-001  ", "АБ-001"),
        ("code_1c", "x" * 500, "x" * 500),
        ("code_1c", 42, "42"),
        ("employees", "1 250,50", "1250.50"),
        ("employees", "12.5", "12.5"),
        ("employees", "0.10", "0.10"),
        ("employees", " -3,5 ", "-3.5"),
        ("employees", 12.5, "12.5"),
        ("founded", "2024-02-29", "2024-02-29"),
        ("founded", " 2024-3-1 ", "2024-03-01"),
        ("founded", dt.date(2020, 1, 2), "2020-01-02"),
        ("tier", "gold", "Gold"),
        ("tier", " SILVER ", "Silver"),
        ("no_suspend", "Yes", True),
        ("no_suspend", "y", True),
        ("no_suspend", "on", True),
        ("no_suspend", "1", True),
        ("no_suspend", " ДА ", True),
        ("no_suspend", "Oui", True),
        ("no_suspend", "có", True),
        ("no_suspend", True, True),
        ("no_suspend", "NO", False),
        ("no_suspend", "off", False),
        ("no_suspend", "0", False),
        ("no_suspend", "нет", False),
        ("no_suspend", "non", False),
        ("no_suspend", "không", False),
        ("no_suspend", False, False),
        ("portal_pin", " 1234 ", "1234"),
    ],
)
def test_each_type_stores_its_value_exactly(ann, fields, code, raw, stored):
    company = _company(ann, custom={code: raw})
    company.refresh_from_db()
    assert company.custom == {code: stored}


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("1250", "1250"), ("1 000", "1000"), (1250, "1250"), ("100.00", "100"), ("1e3", "1000")],
    ids=["text", "spaced", "json-int", "zero-cents", "exponent"],
)
def test_a_whole_number_is_stored_as_its_plain_digits(ann, fields, raw, stored):
    company = _company(ann, custom={"employees": raw})
    company.refresh_from_db()
    assert company.custom == {"employees": stored}
    assert company.custom_search == stored


@pytest.mark.parametrize(
    ("code", "raw", "message"),
    [
        ("code_1c", "x" * 501, "At most 500 characters."),
        ("employees", "a lot", NUMBER_HELP),
        ("employees", "1,000.5", NUMBER_HELP),
        ("employees", "1.2.3", NUMBER_HELP),
        ("employees", "NaN", NUMBER_HELP),
        ("employees", "-Infinity", NUMBER_HELP),
        ("founded", "2025-02-30", DATE_HELP),
        ("founded", "01/03/2025", DATE_HELP),
        ("founded", "yesterday", DATE_HELP),
        ("tier", "Bronze", "Choose one of: Gold, Silver."),
        ("tier", "Gold, Silver", "Choose one of: Gold, Silver."),
        ("no_suspend", "maybe", "Answer yes or no."),
        ("no_suspend", 2, "Answer yes or no."),
    ],
)
def test_a_bad_value_is_refused_at_its_field_and_nothing_is_saved(ann, fields, code, raw, message):
    with pytest.raises(ServiceError) as refused:
        _company(ann, custom={code: raw})
    assert refused.value.message_dict == {f"custom.{code}": [message]}
    assert Client.everything.count() == 0
    assert Event.objects.filter(type="client.created").count() == 0


def test_values_of_every_type_together_and_what_search_reads(ann, fields):
    # when a company is created with a value for each field
    company = _company(
        ann,
        custom={
            "code_1c": "АБ-001",
            "employees": "1 250,50",
            "founded": "2020-01-02",
            "tier": "gold",
            "no_suspend": "yes",
            "portal_pin": "1234",
        },
    )
    # then each is stored in its form, numbers as exact text
    company.refresh_from_db()
    assert company.custom == {
        "code_1c": "АБ-001",
        "employees": "1250.50",
        "founded": "2020-01-02",
        "tier": "Gold",
        "no_suspend": True,
        "portal_pin": "1234",
    }
    # and search reads the words, lowercased, but neither the secret nor the yes/no
    assert company.custom_search == "аб-001 1250.50 2020-01-02 gold"


def test_search_text_leaves_out_secrets_and_booleans():
    values = {"a": "Hello", "pin": "1234", "flag": True, "n": "12.5"}
    assert customfields.search_text(values, secret={"pin"}) == "hello 12.5"
    assert customfields.search_text({}, secret=set()) == ""


def test_empty_values_are_not_stored_and_an_empty_one_clears(ann, fields):
    # given a company with a 1C code and a tier
    company = _company(
        ann, custom={"code_1c": "A-1", "tier": "Gold", "founded": "", "employees": None}
    )
    assert company.custom == {"code_1c": "A-1", "tier": "Gold"}
    # when the code is sent empty and the tier blank
    client_update(client=company, by=ann, custom={"code_1c": "", "tier": "   "})
    # then both are gone
    company.refresh_from_db()
    assert (company.custom, company.custom_search) == ({}, "")


def test_an_update_changes_only_the_values_it_names(ann, fields):
    company = _company(ann, custom={"code_1c": "A-1", "tier": "Gold"})
    client_update(client=company, by=ann, custom={"tier": "silver", "employees": "7"})
    company.refresh_from_db()
    assert company.custom == {"code_1c": "A-1", "tier": "Silver", "employees": "7"}
    assert company.custom_search == "a-1 7 silver"
    assert company.version == 2
    changed = Event.objects.get(type="client.changed")
    assert changed.details == {"fields": ["custom"]}
    entry = AuditEntry.objects.get(object_type__model="client", action=AuditAction.UPDATE)
    assert entry.changes == {
        "custom": {
            "before": {"code_1c": "A-1", "tier": "Gold"},
            "after": {"code_1c": "A-1", "employees": "7", "tier": "Silver"},
        }
    }


def test_an_update_that_changes_nothing_is_not_recorded(ann, fields):
    company = _company(ann, custom={"tier": "Gold"})
    client_update(client=company, by=ann, custom={"tier": "GOLD"})
    company.refresh_from_db()
    assert (company.custom, company.version) == ({"tier": "Gold"}, 1)
    assert Event.objects.filter(type="client.changed").count() == 0


def test_an_unknown_code_is_refused(ann, fields):
    with pytest.raises(ServiceError) as refused:
        _company(ann, custom={"nope": "x", "code_1c": "A-1"})
    assert refused.value.message_dict == {"custom.nope": ["There is no custom field nope."]}
    assert Client.everything.count() == 0


def test_a_refused_update_changes_nothing(ann, fields):
    company = _company(ann, custom={"code_1c": "A-1"})
    with pytest.raises(ServiceError) as refused:
        client_update(
            client=company, by=ann, phone="+33600000000", custom={"code_1c": "B", "tier": "x"}
        )
    assert refused.value.message_dict == {"custom.tier": ["Choose one of: Gold, Silver."]}
    company.refresh_from_db()
    assert (company.custom, company.phone, company.version) == ({"code_1c": "A-1"}, "", 1)
    assert AuditEntry.objects.filter(action=AuditAction.UPDATE).count() == 0


def test_a_deactivated_field_takes_no_new_value_but_keeps_the_old(admin_user, ann, fields):
    # given a company with a tier, then the tier field switched off
    company = _company(ann, custom={"tier": "Gold", "code_1c": "A-1"})
    custom_field_save(field=fields["tier"], by=admin_user, active=False)
    # when someone sends a tier
    with pytest.raises(ServiceError) as refused:
        client_update(client=company, by=ann, custom={"tier": "Silver"})
    # then it is refused as unknown
    assert refused.value.message_dict == {"custom.tier": ["There is no custom field tier."]}
    # while another change keeps the stored tier, to be there if the field comes back
    client_update(client=company, by=ann, custom={"code_1c": "A-2"})
    company.refresh_from_db()
    assert company.custom == {"code_1c": "A-2", "tier": "Gold"}


# --- required ------------------------------------------------------------------------------


def test_an_always_required_field_must_be_given(ann, contract_required):
    with pytest.raises(ServiceError) as refused:
        _company(ann)
    assert refused.value.message_dict == {"custom.contract_no": ["Contract number is required."]}
    with pytest.raises(ServiceError) as blank:
        _company(ann, custom={"contract_no": "  "})
    assert blank.value.message_dict == {"custom.contract_no": ["Contract number is required."]}
    assert Client.everything.count() == 0
    # and given, it is saved
    assert _company(ann, custom={"contract_no": "17"}).custom == {"contract_no": "17"}


def test_a_bad_required_value_gets_one_message_not_two(ann, contract_required):
    with pytest.raises(ServiceError) as refused:
        _company(ann, custom={"contract_no": "seventeen"})
    assert refused.value.message_dict == {"custom.contract_no": [NUMBER_HELP]}


def test_a_required_value_cannot_be_cleared(ann, contract_required):
    company = _company(ann, custom={"contract_no": "17"})
    with pytest.raises(ServiceError) as refused:
        client_update(client=company, by=ann, custom={"contract_no": ""})
    assert refused.value.message_dict == {"custom.contract_no": ["Contract number is required."]}
    company.refresh_from_db()
    assert company.custom == {"contract_no": "17"}


def test_a_field_made_required_later_is_asked_at_the_next_change(admin_user, ann):
    # given a company saved before the contract number was required
    company = _company(ann)
    _field(admin_user, "contract_no", "Contract number", "number", required=True)
    # when its phone changes without a contract number
    with pytest.raises(ServiceError) as refused:
        client_update(client=company, by=ann, phone="+33600000000")
    # then the change is refused until the number is given
    assert refused.value.message_dict == {"custom.contract_no": ["Contract number is required."]}
    company.refresh_from_db()
    assert company.phone == ""
    client_update(client=company, by=ann, phone="+33600000000", custom={"contract_no": "5"})
    company.refresh_from_db()
    assert (company.phone, company.custom) == ("+33600000000", {"contract_no": "5"})


def test_required_when_the_country_is_russia_on_create(ann, inn_when_russian):
    # a French company does not need it
    assert _company(ann, "Paris", country="FR").custom == {}
    # a Russian one does, however the country is typed
    for country in ("RU", "ru"):
        with pytest.raises(ServiceError) as refused:
            _company(ann, "Moscow", country=country)
        assert refused.value.message_dict == {"custom.inn_1c": ["INN for 1C is required."]}
    assert list(Client.everything.values_list("name", flat=True)) == ["Paris"]
    moscow = _company(ann, "Moscow", country="ru", custom={"inn_1c": "7707083893"})
    assert (moscow.country, moscow.custom) == ("RU", {"inn_1c": "7707083893"})


def test_required_when_the_country_is_russia_on_update(ann, inn_when_russian):
    # given a French company
    company = _company(ann, country="FR")
    # when it moves to Russia without the value
    with pytest.raises(ServiceError) as refused:
        client_update(client=company, by=ann, country="RU")
    # then the move is refused, and nothing changed
    assert refused.value.message_dict == {"custom.inn_1c": ["INN for 1C is required."]}
    company.refresh_from_db()
    assert (company.country, company.custom, company.version) == ("FR", {}, 1)
    assert Event.objects.filter(type="client.changed").count() == 0
    # and with the value it moves
    client_update(client=company, by=ann, country="RU", custom={"inn_1c": "7707083893"})
    company.refresh_from_db()
    assert (company.country, company.custom, company.version) == (
        "RU",
        {"inn_1c": "7707083893"},
        2,
    )
    # and the value cannot then be cleared
    with pytest.raises(ServiceError):
        client_update(client=company, by=ann, custom={"inn_1c": ""})
    # but moving back to France may clear it
    client_update(client=company, by=ann, country="FR", custom={"inn_1c": ""})
    company.refresh_from_db()
    assert (company.country, company.custom) == ("FR", {})


def test_required_when_another_custom_field_has_a_value(admin_user, ann, fields):
    _field(
        admin_user,
        "gold_reason",
        "Why gold",
        required_when_field="custom.tier",
        required_when_value="gold",
    )
    with pytest.raises(ServiceError) as refused:
        _company(ann, custom={"tier": "GOLD"})
    assert refused.value.message_dict == {"custom.gold_reason": ["Why gold is required."]}
    assert Client.everything.count() == 0
    assert _company(ann, custom={"tier": "Silver"}).custom == {"tier": "Silver"}


def test_required_when_a_yes_no_client_field_is_yes(admin_user, ann):
    _field(
        admin_user,
        "exemption_ref",
        "Exemption reference",
        required_when_field="tax_exempt",
        required_when_value="yes",
    )
    with pytest.raises(ServiceError) as refused:
        _company(ann, tax_exempt=True)
    assert refused.value.message_dict == {
        "custom.exemption_ref": ["Exemption reference is required."]
    }
    assert _company(ann, tax_exempt=False).custom == {}


def test_a_field_not_asked_of_the_kind_is_never_required_of_it(admin_user, ann):
    _field(
        admin_user, "kpp_1c", "KPP in 1C", required=True, for_individuals=False, for_companies=True
    )
    person = client_create(
        by=ann, kind="individual", first_name="Ivan", last_name="Petrov", email="i@example.ru"
    )
    assert person.custom == {}
    with pytest.raises(ServiceError) as refused:
        _company(ann)
    assert refused.value.message_dict == {"custom.kpp_1c": ["KPP in 1C is required."]}


# --- kinds ---------------------------------------------------------------------------------


def test_a_company_turned_person_sheds_the_company_fields(ann, fields):
    # given a company with its number of employees and a 1C code
    company = _company(ann, custom={"employees": "12", "code_1c": "A-1"})
    # when it becomes a person
    client_update(client=company, by=ann, kind="individual", first_name="Ivan", last_name="Petrov")
    # then the employees are dropped and the 1C code stays
    company.refresh_from_db()
    assert (company.kind, company.custom, company.custom_search) == (
        "individual",
        {"code_1c": "A-1"},
        "a-1",
    )
    entry = AuditEntry.objects.get(object_type__model="client", action=AuditAction.UPDATE)
    assert entry.changes["custom"] == {
        "before": {"employees": "12", "code_1c": "A-1"},
        "after": {"code_1c": "A-1"},
    }


def test_a_person_given_a_company_field_does_not_keep_it(ann, fields):
    person = client_create(
        by=ann,
        kind="individual",
        last_name="Petrov",
        email="p@example.ru",
        custom={"employees": "3", "tier": "gold"},
    )
    person.refresh_from_db()
    assert person.custom == {"tier": "Gold"}


# --- secrets -------------------------------------------------------------------------------


def test_a_secret_is_masked_in_the_audit_log_and_never_searched(ann, fields):
    # when a company is created with a portal PIN
    company = _company(ann, custom={"portal_pin": "8642", "code_1c": "A-1"})
    # then the creation's audit entry shows the mask, not the PIN
    created = AuditEntry.objects.get(object_type__model="client", action=AuditAction.CREATE)
    assert created.changes["custom"] == {
        "before": None,
        "after": {"code_1c": "A-1", "portal_pin": MASK},
    }
    assert "custom_search" not in created.changes
    # and search does not hold it
    assert company.custom_search == "a-1"
    # when the PIN changes
    client_update(client=company, by=ann, custom={"portal_pin": "9753"})
    # then the change is logged, mask to mask
    changed = AuditEntry.objects.get(object_type__model="client", action=AuditAction.UPDATE)
    assert changed.changes == {
        "custom": {
            "before": {"code_1c": "A-1", "portal_pin": MASK},
            "after": {"code_1c": "A-1", "portal_pin": MASK},
        }
    }
    # and neither PIN is anywhere in the audit log or the newsfeed
    assert "8642" not in _audit_text() and "9753" not in _audit_text()
    events = json.dumps(list(Event.objects.values_list("details", flat=True)))
    assert "8642" not in events and "9753" not in events
    company.refresh_from_db()
    assert company.custom["portal_pin"] == "9753"


def test_the_same_secret_again_is_no_change(ann, fields):
    company = _company(ann, custom={"portal_pin": "8642"})
    client_update(client=company, by=ann, custom={"portal_pin": " 8642 "})
    company.refresh_from_db()
    assert company.version == 1
    assert AuditEntry.objects.filter(action=AuditAction.UPDATE).count() == 0


def test_a_switched_off_secret_field_stays_masked_in_the_audit_log(admin_user, ann, fields):
    company = _company(ann, custom={"portal_pin": "8642", "code_1c": "A-1"})
    custom_field_save(field=fields["portal_pin"], by=admin_user, active=False)
    client_update(client=company, by=ann, custom={"code_1c": "A-2"})
    changed = AuditEntry.objects.get(object_type__model="client", action=AuditAction.UPDATE)
    assert changed.changes["custom"] == {
        "before": {"code_1c": "A-1", "portal_pin": MASK},
        "after": {"code_1c": "A-2", "portal_pin": MASK},
    }
    assert "8642" not in _audit_text()


def test_masked_for_audit_masks_only_secret_codes(fields):
    assert customfields.masked_for_audit({}) == {}
    masked = customfields.masked_for_audit({"portal_pin": "8642", "code_1c": "A-1"})
    assert masked == {"portal_pin": MASK, "code_1c": "A-1"}
    assert isinstance(masked["portal_pin"], Masked)
    assert masked["portal_pin"] != Masked("0000")


def test_shown_value_masks_secrets_for_those_not_allowed(fields):
    pin, code = fields["portal_pin"], fields["code_1c"]
    assert customfields.shown_value(pin, "8642", may_see_secrets=False) == MASK
    assert customfields.shown_value(pin, "8642", may_see_secrets=True) == "8642"
    assert customfields.shown_value(code, "A-1", may_see_secrets=False) == "A-1"
    assert customfields.shown_value(pin, None, may_see_secrets=False) is None


# --- the client form -----------------------------------------------------------------------

SIMPLE_FORM = {"kind": "company", "currency": "EUR", "version": 1}


def _form_data(client: Client, **extra) -> dict:
    return (
        SIMPLE_FORM
        | {
            "company_name": client.company_name,
            "email": client.email,
            "owner": client.owner_id,
            "org_unit": client.org_unit_id,
            "version": client.version,
        }
        | extra
    )


def test_the_advanced_form_asks_every_active_field(admin_user, fields):
    _field(admin_user, "old_code", "Old code", active=False)
    form = ClientForm(mode="advanced")
    custom = [n for n in form.fields if n.startswith("custom.")]
    assert custom == [
        "custom.code_1c",
        "custom.employees",
        "custom.founded",
        "custom.tier",
        "custom.no_suspend",
        "custom.portal_pin",
    ]
    assert [f.required for n, f in form.fields.items() if n.startswith("custom.")] == [False] * 6
    assert form.fields["custom.tier"].choices == [("", "—"), ("Gold", "Gold"), ("Silver", "Silver")]
    assert form.fields["custom.no_suspend"].choices == [("", "—"), ("yes", "Yes"), ("no", "No")]
    assert form.fields["custom.employees"].widget.attrs["data-kind-only"] == "company"
    assert "data-kind-only" not in form.fields["custom.code_1c"].widget.attrs
    assert form.fields["custom.founded"].widget.input_type == "date"
    assert form.fields["custom.portal_pin"].widget.input_type == "password"
    assert form.fields["custom.code_1c"].max_length == 500
    assert [label for label, _fields in form.sections()][-1] == "Additional details"


def test_the_simple_form_asks_only_its_fields_and_those_maybe_required(
    fields, inn_when_russian, contract_required
):
    form = ClientForm(mode="simple")
    assert [n for n in form.fields if n.startswith("custom.")] == [
        "custom.code_1c",
        "custom.inn_1c",
        "custom.contract_no",
    ]


def test_the_form_shows_stored_values_but_never_the_secret(signed_in, ann, fields):
    company = _company(
        ann,
        custom={"code_1c": "A-1", "tier": "Gold", "no_suspend": False, "portal_pin": "8642"},
    )
    page = signed_in(ann).get(f"/clients/{company.pk}/edit/?mode=advanced")
    form = page.context["form"]
    assert (
        form["custom.code_1c"].value(),
        form["custom.tier"].value(),
        form["custom.no_suspend"].value(),
        form["custom.portal_pin"].value(),
    ) == ("A-1", "Gold", "no", None)
    html = page.content.decode()
    assert "8642" not in html
    assert 'placeholder="Kept; type to replace"' in html


def test_adding_a_client_with_custom_values_in_the_simple_form(signed_in, ann, fields):
    http = signed_in(ann)
    http.get("/clients/new/?mode=simple")
    response = http.post(
        "/clients/new/",
        SIMPLE_FORM
        | {
            "company_name": "Acme",
            "email": "acme@example.com",
            "owner": ann.pk,
            "org_unit": ann.org_unit_id,
            "custom.code_1c": " A-1 ",
        },
    )
    company = Client.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/clients/{company.pk}/")
    assert company.custom == {"code_1c": "A-1"}


def test_an_empty_secret_box_keeps_the_secret_and_a_typed_one_replaces_it(signed_in, ann, fields):
    company = _company(ann, custom={"portal_pin": "8642", "code_1c": "A-1", "tier": "Gold"})
    http = signed_in(ann)
    http.get(f"/clients/{company.pk}/edit/?mode=advanced")
    advanced = {
        "language": "en",
        "payment_method": "bank_transfer",
        "custom.code_1c": "A-2",
        "custom.tier": "Gold",
        "custom.portal_pin": "",
    }
    # when the form is saved with the PIN box left empty
    response = http.post(f"/clients/{company.pk}/edit/", _form_data(company, **advanced))
    # then the PIN stays and the code changes
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.custom == {"portal_pin": "8642", "code_1c": "A-2", "tier": "Gold"}
    # when a new PIN is typed
    advanced |= {"custom.portal_pin": "1357"}
    response = http.post(f"/clients/{company.pk}/edit/", _form_data(company, **advanced))
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.custom == {"portal_pin": "1357", "code_1c": "A-2", "tier": "Gold"}


def test_saving_the_simple_form_keeps_the_advanced_values(signed_in, ann, fields):
    company = _company(ann, custom={"code_1c": "A-1", "tier": "Gold", "employees": "12"})
    http = signed_in(ann)
    http.get(f"/clients/{company.pk}/edit/?mode=simple")
    response = http.post(
        f"/clients/{company.pk}/edit/", _form_data(company, **{"custom.code_1c": "B"})
    )
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.custom == {"code_1c": "B", "tier": "Gold", "employees": "12"}


def test_a_bad_value_in_the_form_is_shown_at_its_field(signed_in, ann, fields):
    company = _company(ann, custom={"employees": "12"})
    http = signed_in(ann)
    http.get(f"/clients/{company.pk}/edit/?mode=advanced")
    data = _form_data(
        company,
        language="en",
        payment_method="bank_transfer",
        **{"custom.employees": "a dozen", "custom.founded": "2025-02-30"},
    )
    response = http.post(f"/clients/{company.pk}/edit/", data)
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "custom.employees": [NUMBER_HELP],
        "custom.founded": [DATE_HELP],
    }
    assert NUMBER_HELP in response.content.decode()
    company.refresh_from_db()
    assert (company.custom, company.version) == ({"employees": "12"}, 1)


def test_too_long_a_text_is_refused_by_the_form(signed_in, ann, fields):
    company = _company(ann)
    http = signed_in(ann)
    http.get(f"/clients/{company.pk}/edit/?mode=simple")
    response = http.post(
        f"/clients/{company.pk}/edit/", _form_data(company, **{"custom.code_1c": "x" * 501})
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "custom.code_1c": ["Ensure this value has at most 500 characters (it has 501)."]
    }
    company.refresh_from_db()
    assert company.custom == {}


def test_a_required_when_rule_is_shown_at_its_field_in_the_form(signed_in, ann, inn_when_russian):
    http = signed_in(ann)
    http.get("/clients/new/?mode=simple")
    data = SIMPLE_FORM | {
        "company_name": "Moscow",
        "email": "moscow@example.ru",
        "country": "RU",
        "owner": ann.pk,
        "org_unit": ann.org_unit_id,
        "custom.inn_1c": "",
    }
    response = http.post("/clients/new/", data)
    assert response.status_code == 200
    assert response.context["form"].errors == {"custom.inn_1c": ["INN for 1C is required."]}
    assert Client.everything.count() == 0


# --- the profile ---------------------------------------------------------------------------


@pytest.fixture
def filled(ann, fields):
    """A company with a value in each field."""
    return _company(
        ann,
        custom={
            "portal_pin": "8642",
            "code_1c": "A-1",
            "employees": "12",
            "founded": "2020-01-02",
            "tier": "Gold",
            "no_suspend": True,
        },
    )


def test_the_profile_shows_values_in_order_and_masks_the_secret(signed_in, ann, filled):
    page = signed_in(ann).get(f"/clients/{filled.pk}/")
    assert page.context["custom_values"] == [
        ("1C code", "A-1"),
        ("Employees", "12"),
        ("Founded", "2020-01-02"),
        ("Tier", "Gold"),
        ("Do not auto-suspend", "Yes"),
        ("Portal PIN", MASK),
    ]
    assert "8642" not in page.content.decode()


def test_a_role_allowed_to_read_secrets_sees_them_on_the_profile(signed_in, make_user, filled):
    director = make_user("dora", role="director", unit="company")
    page = signed_in(director).get(f"/clients/{filled.pk}/")
    assert page.context["custom_values"][-1] == ("Portal PIN", "8642")
    assert '<dd class="col-7 text-break custom-value">8642</dd>' in page.content.decode()


def test_the_profile_leaves_out_empty_and_switched_off_fields(admin_user, signed_in, ann, fields):
    company = _company(ann, custom={"tier": "Silver", "no_suspend": "no", "code_1c": "A-1"})
    custom_field_save(field=fields["code_1c"], by=admin_user, active=False)
    page = signed_in(ann).get(f"/clients/{company.pk}/")
    assert page.context["custom_values"] == [("Tier", "Silver"), ("Do not auto-suspend", "No")]


# --- the administrator's pages -------------------------------------------------------------

NEW_FIELD = {
    "code": "tier",
    "label": "Tier",
    "type": "choice",
    "choices": "Gold\r\nSilver\r\n\r\nGold",
    "help_text": "The commercial tier",
    "for_individuals": "on",
    "for_companies": "on",
    "required_when_field": "",
    "required_when_value": "",
    "position": "3",
    "active": "on",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/settings/custom-fields/"),
        ("get", "/settings/custom-fields/new/"),
        ("post", "/settings/custom-fields/new/"),
        ("get", "/settings/custom-fields/{pk}/"),
        ("post", "/settings/custom-fields/{pk}/"),
    ],
)
def test_the_settings_pages_are_403_without_the_permission(signed_in, ann, fields, method, path):
    # given a billing clerk, who may change clients but not define fields
    tier = fields["tier"]
    http = signed_in(ann)
    # when they open or post to a settings page
    response = getattr(http, method)(path.format(pk=tier.pk), NEW_FIELD | {"label": "Level"})
    # then it is 403, and nothing changed
    assert response.status_code == 403
    tier.refresh_from_db()
    assert tier.label == "Tier"
    assert CustomField.objects.count() == 6


def test_the_settings_pages_send_strangers_to_sign_in(client, db):
    response = client.get("/settings/custom-fields/")
    assert (response.status_code, response["Location"]) == (
        302,
        "/accounts/login/?next=/settings/custom-fields/",
    )


def test_the_list_shows_each_field(signed_in, admin_user, fields, inn_when_russian):
    page = signed_in(admin_user).get("/settings/custom-fields/")
    assert page.status_code == 200
    assert list(page.context["fields"]) == [*fields.values(), inn_when_russian]
    html = page.content.decode()
    assert "<code>portal_pin</code>" in html
    assert "when Country = ru" in html
    assert f'href="/settings/custom-fields/{fields["tier"].pk}/"' in html


def test_the_list_names_a_rule_on_another_custom_field_by_its_label(signed_in, admin_user, fields):
    _field(
        admin_user,
        "gold_reason",
        "Why gold",
        required_when_field="custom.tier",
        required_when_value="Gold",
    )
    html = signed_in(admin_user).get("/settings/custom-fields/").content.decode()
    assert "when Tier = Gold" in html


def test_the_empty_list_says_how_to_start(signed_in, admin_user):
    page = signed_in(admin_user).get("/settings/custom-fields/")
    assert "No custom fields yet." in page.content.decode()


def test_an_administrator_adds_a_field_from_the_page(signed_in, admin_user):
    response = signed_in(admin_user).post("/settings/custom-fields/new/", NEW_FIELD)
    assert (response.status_code, response["Location"]) == (302, "/settings/custom-fields/")
    field = CustomField.objects.get()
    assert (
        field.code,
        field.label,
        field.type,
        field.choices,
        field.help_text,
        field.for_individuals,
        field.for_companies,
        field.in_simple_form,
        field.required,
        field.position,
        field.active,
    ) == (
        "tier",
        "Tier",
        "choice",
        ["Gold", "Silver"],
        "The commercial tier",
        True,
        True,
        False,
        False,
        3,
        True,
    )
    assert (
        AuditEntry.objects.filter(object_type__model="customfield", actor=admin_user).count() == 1
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"code": "1c_tier"}, "code", CODE_HELP),
        ({"code": "tier", "label": " "}, "label", "This field is required."),
        (
            {"required": "on", "required_when_field": "country", "required_when_value": "RU"},
            "required_when_field",
            "A field always required needs no condition; clear one of them.",
        ),
        ({"required_when_field": "owner"}, "required_when_field", None),
    ],
)
def test_a_bad_definition_on_the_page_is_shown_at_its_field(
    signed_in, admin_user, changes, field, message
):
    response = signed_in(admin_user).post("/settings/custom-fields/new/", NEW_FIELD | changes)
    assert response.status_code == 200
    errors = response.context["form"].errors
    if message is None:
        # a field the rule may not test is not even offered
        assert errors[field] == [
            "Select a valid choice. owner is not one of the available choices."
        ]
    else:
        assert errors[field] == [message]
        assert message in response.content.decode()
    assert CustomField.objects.count() == 0


def test_a_choice_field_with_one_choice_is_refused_on_the_page(signed_in, admin_user):
    response = signed_in(admin_user).post(
        "/settings/custom-fields/new/", NEW_FIELD | {"choices": "Gold"}
    )
    assert response.status_code == 200
    assert "A choice field needs at least two choices." in response.content.decode()
    assert CustomField.objects.count() == 0


def test_the_choices_error_is_shown_at_the_choices_box(signed_in, admin_user):
    response = signed_in(admin_user).post(
        "/settings/custom-fields/new/", NEW_FIELD | {"choices": "Gold"}
    )
    assert response.context["form"].errors == {
        "choices": ["A choice field needs at least two choices."]
    }


def test_a_code_in_use_is_refused_on_the_page(signed_in, admin_user, fields):
    response = signed_in(admin_user).post("/settings/custom-fields/new/", NEW_FIELD)
    assert response.status_code == 200
    assert response.context["form"].errors == {"code": ["Another field already has this code."]}
    assert CustomField.objects.count() == 6


def test_editing_a_field_on_the_page_keeps_its_code(signed_in, admin_user, fields):
    tier = fields["tier"]
    http = signed_in(admin_user)
    page = http.get(f"/settings/custom-fields/{tier.pk}/")
    form = page.context["form"]
    assert form.fields["code"].disabled is True
    assert form["choices"].value() == "Gold\nSilver"
    # a rule may test another field, but not the field itself
    offered = [value for value, _label in form.fields["required_when_field"].choices]
    assert "custom.code_1c" in offered and "custom.tier" not in offered
    # when the code and the label are posted changed
    response = http.post(
        f"/settings/custom-fields/{tier.pk}/",
        NEW_FIELD | {"code": "level", "label": "Level", "choices": "Gold\nSilver\nBronze"},
    )
    # then the label and choices change, the code does not
    assert (response.status_code, response["Location"]) == (302, "/settings/custom-fields/")
    tier.refresh_from_db()
    assert (tier.code, tier.label, tier.choices) == ("tier", "Level", ["Gold", "Silver", "Bronze"])


def test_an_unknown_field_page_is_404(signed_in, admin_user):
    assert signed_in(admin_user).get("/settings/custom-fields/999999/").status_code == 404


# --- the API -------------------------------------------------------------------------------


def test_the_api_round_trip_with_the_secret_masked(api_client, ann, admin_user, fields):
    http = api_client(ann)
    # when a client is created with custom fields
    response = _post(
        http,
        "/api/v1/clients",
        {
            "name": "Acme",
            "email": "acme@example.com",
            "custom_fields": {
                "code_1c": "A-1",
                "employees": "1 250,50",
                "founded": "2020-01-02",
                "tier": "gold",
                "no_suspend": True,
                "portal_pin": "8642",
            },
        },
    )
    # then the answer shows the clean values, the PIN masked for a billing clerk
    assert response.status_code == 201
    shown = {
        "code_1c": "A-1",
        "employees": "1250.50",
        "founded": "2020-01-02",
        "tier": "Gold",
        "no_suspend": True,
        "portal_pin": MASK,
    }
    assert response.json()["custom_fields"] == shown
    company = Client.objects.get()
    assert company.custom["portal_pin"] == "8642"
    # and reading it back gives the same
    assert http.get(f"/api/v1/clients/{company.pk}").json()["custom_fields"] == shown
    # while the administrator, whose role reads secrets, sees the PIN
    as_admin = api_client(admin_user).get(f"/api/v1/clients/{company.pk}").json()
    assert as_admin["custom_fields"] == shown | {"portal_pin": "8642"}


def test_the_api_patch_changes_only_the_values_it_names(api_client, ann, fields):
    company = _company(ann, custom={"code_1c": "A-1", "tier": "Gold", "portal_pin": "8642"})
    response = _patch(
        api_client(ann),
        f"/api/v1/clients/{company.pk}",
        {"custom_fields": {"tier": "silver", "code_1c": "", "founded": "2021-05-06"}},
    )
    assert response.status_code == 200
    assert response.json()["custom_fields"] == {
        "tier": "Silver",
        "founded": "2021-05-06",
        "portal_pin": MASK,
    }
    company.refresh_from_db()
    assert company.custom == {"tier": "Silver", "founded": "2021-05-06", "portal_pin": "8642"}
    # and a patch without custom fields leaves them alone
    _patch(api_client(ann), f"/api/v1/clients/{company.pk}", {"phone": "+33600000000"})
    company.refresh_from_db()
    assert company.custom == {"tier": "Silver", "founded": "2021-05-06", "portal_pin": "8642"}


def test_sending_back_the_mask_keeps_the_secret(api_client, ann, fields):
    company = _company(ann, custom={"portal_pin": "8642", "tier": "Gold"})
    http = api_client(ann)
    read = http.get(f"/api/v1/clients/{company.pk}").json()["custom_fields"]
    _patch(http, f"/api/v1/clients/{company.pk}", {"custom_fields": read | {"tier": "Silver"}})
    company.refresh_from_db()
    assert company.custom == {"portal_pin": "8642", "tier": "Silver"}


def test_api_refusals_name_the_custom_field(api_client, ann, fields):
    http = api_client(ann)
    company = _company(ann, custom={"employees": "12"})
    # a bad value on change
    response = _patch(
        http,
        f"/api/v1/clients/{company.pk}",
        {"name": "Renamed", "custom_fields": {"employees": "a dozen", "tier": "Bronze"}},
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == _refused(
        ("custom_fields.employees", NUMBER_HELP),
        ("custom_fields.tier", "Choose one of: Gold, Silver."),
    )
    company.refresh_from_db()
    assert (company.name, company.custom, company.version) == ("Acme", {"employees": "12"}, 1)
    # an unknown code on create
    response = _post(
        http,
        "/api/v1/clients",
        {"name": "New", "email": "new@example.com", "custom_fields": {"nope": "x"}},
    )
    assert response.json() == _refused(("custom_fields.nope", "There is no custom field nope."))
    assert list(Client.everything.values_list("name", flat=True)) == ["Acme"]


def test_api_refuses_a_missing_required_value(api_client, ann, inn_when_russian):
    response = _post(
        api_client(ann),
        "/api/v1/clients",
        {"name": "Moscow", "email": "m@example.ru", "country": "RU"},
    )
    assert response.json() == _refused(("custom_fields.inn_1c", "INN for 1C is required."))
    assert Client.everything.count() == 0


def test_the_api_hides_values_of_switched_off_fields(admin_user, api_client, ann, fields):
    company = _company(ann, custom={"tier": "Gold", "code_1c": "A-1"})
    custom_field_save(field=fields["tier"], by=admin_user, active=False)
    shown = api_client(ann).get(f"/api/v1/clients/{company.pk}").json()["custom_fields"]
    assert shown == {"code_1c": "A-1"}
    company.refresh_from_db()
    assert company.custom == {"tier": "Gold", "code_1c": "A-1"}


@pytest.mark.parametrize("how_many", [3, 30])
def test_the_api_list_with_custom_values_costs_the_same_for_any_page_size(
    api_client, make_user, fields, how_many, django_assert_num_queries
):
    # given a manager's clients, each with custom values, a secret among them
    meg = make_user("meg", role="manager", unit="team_a")
    for i in range(how_many):
        _company(meg, f"C{i}", custom={"code_1c": f"A-{i}", "portal_pin": "8642"})
    http = api_client(meg)
    assert http.get("/api/v1/me").status_code == 200  # notes the token's last use
    # when the list is read: the token, the count, the page and the field definitions once,
    # whatever the page size (the role, read with the token, decides who sees the secret)
    with django_assert_num_queries(4):
        response = http.get("/api/v1/clients?limit=100")
    items = response.json()["items"]
    assert len(items) == how_many
    assert items[0]["custom_fields"] == {"code_1c": f"A-{how_many - 1}", "portal_pin": MASK}


@pytest.mark.parametrize("value", [{"a": 1}, ["A-1"]], ids=["object", "list"])
def test_a_text_field_refuses_a_value_that_is_not_text(api_client, ann, fields, value):
    company = _company(ann, custom={"code_1c": "A-1"})
    response = _patch(
        api_client(ann), f"/api/v1/clients/{company.pk}", {"custom_fields": {"code_1c": value}}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["custom_fields.code_1c"]
    company.refresh_from_db()
    assert company.custom == {"code_1c": "A-1"}


def test_a_nul_character_in_a_custom_value_is_refused_at_its_field(api_client, ann, fields):
    company = _company(ann, custom={"code_1c": "A-1"})
    response = _patch(
        api_client(ann),
        f"/api/v1/clients/{company.pk}",
        {"custom_fields": {"code_1c": "A\u0000B"}},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "custom_fields.code_1c",
            "message": "Remove the NUL character: it cannot be stored.",
        }
    ]
    company.refresh_from_db()
    assert company.custom == {"code_1c": "A-1"}


def test_a_value_whose_choice_was_removed_survives_an_unrelated_save(
    signed_in, admin_user, ann, fields
):
    # given a Silver company, then Silver dropped from the choices
    company = _company(ann, custom={"tier": "Silver"})
    custom_field_save(field=fields["tier"], by=admin_user, choices=["Gold", "Platinum"])
    http = signed_in(ann)
    page = http.get(f"/clients/{company.pk}/edit/?mode=advanced")
    tier = page.context["form"]["custom.tier"]
    # when the clerk changes only the name and saves: a select sends the stored value if it
    # is among its options, else its first option, the empty one
    offered = [value for value, _label in tier.field.choices]
    data = _form_data(
        company,
        language="en",
        payment_method="bank_transfer",
        company_name="Acme SA",
        **{"custom.tier": tier.value() if tier.value() in offered else ""},
    )
    response = http.post(f"/clients/{company.pk}/edit/", data)
    # then the name changes and the tier is still Silver
    assert response.status_code == 302
    company.refresh_from_db()
    assert (company.name, company.custom) == ("Acme SA", {"tier": "Silver"})
