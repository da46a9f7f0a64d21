"""The sandboxed merge-tag language: tags offered, unknown tags named, nothing else reachable."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from clientbase.clients.services import client_create, contact_add
from clientbase.core.errors import ServiceError
from clientbase.marketing import templating
from clientbase.marketing.templating import check, example_context, merge_context, render

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def june(time_machine):
    """Today is 2 June 2025."""
    time_machine.move_to(dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def body_error(source: str, context: dict | None = None) -> str:
    """The message a template is refused with, at the body field."""
    with pytest.raises(ServiceError) as refused:
        render(source, context if context is not None else example_context())
    assert list(refused.value.message_dict) == ["body"]
    return refused.value.message_dict["body"][0]


def test_client_tags_are_filled_in_the_clients_language(buyer, seller):
    # given a French client with an address and a contact
    buyer.street, buyer.postcode, buyer.city = "12 rue de la Paix", "75002", "Paris"
    buyer.first_name, buyer.last_name = "Claire", "Martin"
    buyer.custom = {"civility": "Mme"}
    contact = contact_add(
        client=buyer,
        by=seller,
        last_name="Durand",
        first_name="Paul",
        phones={"mobile": "+33612345678"},
    )
    # when a template is rendered for them
    text = render(
        "Bonjour {{ client.civility }} {{ client.last_name }}, {{ client.address }}. "
        "{{ contact.name }} {{ contact.phone }} / {{ user.name }} <{{ user.email }}> {{ today }}",
        merge_context(client=buyer, contact=contact, user=seller),
    )
    # then every tag holds the record's value, the country and date in French
    assert text == (
        "Bonjour Mme Martin, 12 rue de la Paix, 75002 Paris, France. "
        f"Paul Durand +33612345678 / Marie Dupont <{seller.email}> 2 juin 2025"
    )


def test_invoice_amounts_are_formatted_with_the_currency_in_the_recipients_language(buyer):
    # given an invoice-like record of the buyer (only the offered fields are read)
    class Invoice:
        client_id = buyer.pk
        client = buyer
        number = "INV-7"
        issued_on = dt.date(2025, 6, 1)
        due_on = dt.date(2025, 6, 15)
        total_minor = 123450
        balance_minor = 23450
        currency = "EUR"

    # when the invoice tags are rendered
    text = render(
        "{{ invoice.number }} {{ invoice.total }} {{ invoice.balance_due }} {{ invoice.due_on }}",
        merge_context(invoice=Invoice()),
    )
    # then the client came from the invoice and the amounts are French euros
    assert text == "INV-7 1\u202f234,50\xa0€ 234,50\xa0€ 15 juin 2025"


def test_a_filter_and_a_branch_work(buyer):
    text = render(
        "{{ client.name | upper }}{% if deal %} deal{% else %} no deal{% endif %}",
        merge_context(client=buyer),
    )
    assert text == "ATELIER LUMIÈRE no deal"


def test_a_list_tag_is_looped_over_with_its_item_fields():
    text = render(
        "{% for line in quote.lines %}{{ loop.index }}. {{ line.description }}: "
        "{{ line.amount }}{% endfor %}",
        example_context(),
    )
    assert text == "1. Web hosting, 12 months: 216,00 €"


def test_an_unknown_tag_is_named_even_in_a_branch_not_taken():
    assert check("Hello {{ client.name }}") is None
    assert body_error("{% if false %}{{ client.fist_name }}{% endif %}") == (
        "Unknown tag: client.fist_name"
    )
    assert body_error("{{ custmer.name }}") == "Unknown tag: custmer.name"
    assert body_error("{% for line in quote.lines %}{{ line.colour }}{% endfor %}") == (
        "Unknown tag: line.colour"
    )


def test_a_syntax_error_gives_its_line():
    assert body_error("Hello\n{{ client.name }\n") == ("Syntax error on line 2: unexpected '}'")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ settings }}", "Unknown tag: settings"),
        ("{{ settings.SECRET_KEY }}", "Unknown tag: settings.SECRET_KEY"),
        ("{{ client.__class__ }}", "Unknown tag: client.__class__"),
        ("{{ ''.__class__.__mro__ }}", "Unknown tag: ''.__class__.__mro__"),
        ("{{ client.security_answer }}", "Unknown tag: client.security_answer"),
        ("{{ client.objects }}", "Unknown tag: client.objects"),
        ("{{ client['__class__'] }}", "Unknown tag: client.__class__"),
        ("{% for c in clients %}{{ c }}{% endfor %}", "Unknown tag: clients"),
        ("{{ request.user }}", "Unknown tag: request.user"),
        (
            "{{ client.name.upper() }}",
            "Calling client.name.upper is not allowed in a message template.",
        ),
        ("{{ range(10) }}", "Calling range is not allowed in a message template."),
        ("{{ lipsum }}", "Unknown tag: lipsum"),
        (
            "{% include 'base.html' %}",
            "This statement is not allowed in a message template (line 1).",
        ),
        (
            "{% macro m() %}x{% endmacro %}",
            "This statement is not allowed in a message template (line 1).",
        ),
        ("{% set x = client %}{{ x.email }}", "Unknown tag: x.email"),
        (
            "{{ 'x' * 1000000000 }}",
            "Multiplying and raising to a power are not allowed in a message template.",
        ),
        (
            "{{ 9 ** 9 ** 9 }}",
            "Multiplying and raising to a power are not allowed in a message template.",
        ),
    ],
)
def test_a_template_cannot_reach_beyond_the_offered_tags(source, message):
    assert body_error(source) == message


def test_an_unknown_filter_lists_the_allowed_ones():
    message = body_error("{{ client.name | attr('__class__') }}")
    assert message == (
        "Unknown filter: attr. Filters you can use: capitalize, center, default, first, "
        "indent, join, last, length, lower, replace, round, title, trim, truncate, upper, "
        "wordwrap."
    )
    assert body_error("{{ client | tojson }}").startswith("Unknown filter: tojson.")


def test_a_tag_of_a_record_not_given_says_it_has_no_value(buyer):
    # given a context with a client only
    context = merge_context(client=buyer)
    # when a deal tag is used, then the error names it
    assert body_error("{{ deal.name }}", context) == (
        "A tag has no value for this record: 'dict object' has no attribute 'name'"
    )
    # and default() fills the gap
    assert render("{{ deal.name | default('-') }}", context) == "-"


def test_the_context_holds_only_strings_numbers_lists_and_dicts(buyer, seller):
    # given every kind of record the buyer can give
    context = merge_context(client=buyer, user=seller)

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, str | int) and not isinstance(value, bool)

    # then nothing in it is a model, a queryset or a callable
    assert plain(context)
    assert set(context) == {g.name for g in templating.TAG_GROUPS}


def test_another_clients_data_is_not_reachable(buyer, seller):
    # given a second client of the same seller
    other = client_create(
        by=seller, name="Secret Corp", email="boss@secret.example", currency="EUR"
    )
    # when rendering for the buyer, no tag leads to the other client
    text = render("{{ client.name }} {{ client.email }}", merge_context(client=buyer))
    assert "Secret" not in text and other.email not in text
    assert body_error("{{ client.parent.name }}") == "Unknown tag: client.parent.name"


def test_every_registered_tag_renders_from_the_examples():
    # given the tag registry, when each tag is rendered with the examples, none fails
    for name in templating.tag_names():
        render("{{ " + name + " }}", example_context())
    assert "client.fist_name" not in templating.tag_names()
    assert "client.city" in templating.tag_names()


def test_quote_lines_and_totals_are_offered_for_a_loop(buyer, seller):
    # given a quote of two lines for the French client
    from clientbase.sales.quote_services import QuoteLineSpec, quote_create

    quote = quote_create(
        by=seller,
        client=buyer,
        title="Site",
        valid_until=dt.date(2025, 7, 2),
        lines=[
            QuoteLineSpec("Design", Decimal("1200"), tax_rate=Decimal(20)),
            QuoteLineSpec(
                "Hosting",
                Decimal("10.50"),
                quantity=Decimal(12),
                discount_percent=Decimal(10),
                tax_rate=Decimal(20),
            ),
        ],
    )
    # when the lines are looped over
    text = render(
        "{{ quote.number }} {{ quote.valid_until }}\n"
        "{% for line in quote.lines %}{{ line.quantity }} × {{ line.description }} "
        "({{ line.discount_percent }} %): {{ line.amount }}\n{% endfor %}"
        "{{ quote.subtotal }} + {{ quote.tax }} = {{ quote.total }}",
        merge_context(quote=quote),
    )
    # then each line and the totals come formatted in French
    assert text == (
        f"{quote.number} 2 juillet 2025\n"
        "1 × Design (0 %): 1\u202f200,00\xa0€\n"
        "12 × Hosting (10 %): 113,40\xa0€\n"
        "1\u202f313,40\xa0€ + 262,68\xa0€ = 1\u202f576,08\xa0€"
    )


def test_a_template_nested_too_deeply_is_refused_not_crashed():
    source = "{% if true %}" * 3000 + "x" + "{% endif %}" * 3000
    assert body_error(source) == "The template is nested too deeply."


def test_an_html_part_escapes_the_values_and_text_does_not():
    context = {**example_context(), "client": {**example_context()["client"], "name": "A & <B>"}}
    assert render("<b>{{ client.name }}</b>", context, html=True) == "<b>A &amp; &lt;B&gt;</b>"
    assert render("{{ client.name }}", context) == "A & <B>"


def test_an_unknown_language_falls_back_to_english_formats(buyer):
    buyer.language = "xx"
    assert render("{{ today }}", merge_context(client=buyer)) == "June 2, 2025"
