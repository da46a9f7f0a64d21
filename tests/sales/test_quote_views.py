"""Quote pages: list, new, card with the lines editor, actions, PDF; out of sight is a 404."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from clientbase.catalog.models import Price, Product
from clientbase.clients.services import client_create
from clientbase.sales.models import Quote
from clientbase.sales.quote_services import QuoteLineSpec, quote_create, quote_set_stage

pytestmark = pytest.mark.django_db


def line(price="100", discount="0") -> QuoteLineSpec:
    return QuoteLineSpec(
        description="Audit", unit_price=Decimal(price), discount_percent=Decimal(discount)
    )


def test_list_shows_quotes_in_sight_in_a_fixed_number_of_queries(
    seller, other_seller, buyer, signed_in, django_assert_num_queries
):
    # Given three quotes of the seller and one of another team
    for _n in range(3):
        quote_create(by=seller, client=buyer, lines=[line()])
    other_client = client_create(by=other_seller, name="Other", email="o@example.com")
    quote_create(by=other_seller, client=other_client, lines=[line()])
    browser = signed_in(seller)
    browser.get(reverse("sales:quotes"))  # warm the session and caches
    # When the seller opens the list
    with django_assert_num_queries(5):
        response = browser.get(reverse("sales:quotes"))
    # Then only their three quotes show
    assert response.status_code == 200
    assert [q.number for q in response.context["quotes"]] == ["Q-00003", "Q-00002", "Q-00001"]
    assert b"Other" not in response.content


def test_list_filters_by_stage(seller, buyer, signed_in):
    first = quote_create(by=seller, client=buyer, lines=[line()])
    quote_create(by=seller, client=buyer, lines=[line()])
    quote_set_stage(by=seller, quote=first, stage="negotiation")
    response = signed_in(seller).get(reverse("sales:quotes"), {"stage": "negotiation"})
    assert [q.pk for q in response.context["quotes"]] == [first.pk]


def test_new_quote_for_a_client_then_add_lines_with_htmx(seller, buyer, signed_in):
    browser = signed_in(seller)
    url = reverse("sales:quote_new") + f"?client={buyer.pk}"
    assert browser.get(url).status_code == 200
    response = browser.post(url, {"client": buyer.pk, "title": "Redesign"})
    quote = Quote.objects.get()
    assert response.url == reverse("sales:quote", args=[quote.pk])
    # A free line added through htmx comes back as the lines fragment
    response = browser.post(
        reverse("sales:quote_line_add", args=[quote.pk]),
        {"description": "Design", "quantity": "2", "unit_price": "150", "discount_percent": "0",
         "taxable": "on"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    assert b'id="quote-lines"' in response.content and b"Design" in response.content
    quote.refresh_from_db()
    assert quote.total_minor == 30000
    # A line with neither product nor description is refused at the field, nothing added
    response = browser.post(
        reverse("sales:quote_line_add", args=[quote.pk]),
        {"quantity": "1", "unit_price": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert b"Describe the line or choose a product." in response.content
    assert quote.lines.count() == 1


def test_product_line_takes_the_catalogue_price_in_the_quote_currency(seller, buyer, signed_in):
    product = Product.objects.create(code="seo", name="SEO audit")
    Price.objects.create(product=product, currency="EUR", cycle="one_time", amount_minor=49000)
    quote = quote_create(by=seller, client=buyer)
    browser = signed_in(seller)
    fields = browser.get(reverse("sales:quote_product", args=[quote.pk]), {"product": product.pk})
    assert b'value="490"' in fields.content and b"SEO audit" in fields.content
    browser.post(
        reverse("sales:quote_line_add", args=[quote.pk]),
        {"product": product.pk, "quantity": "1", "discount_percent": "0", "taxable": "on"},
    )
    added = quote.lines.get()
    assert (added.description, added.unit_price, added.net_minor) == (
        "SEO audit",
        Decimal("490.0000"),
        49000,
    )


def test_quote_out_of_sight_is_a_404(seller, other_seller, buyer, signed_in):
    quote = quote_create(by=seller, client=buyer, lines=[line()])
    browser = signed_in(other_seller)
    assert browser.get(reverse("sales:quote", args=[quote.pk])).status_code == 404
    assert browser.get(reverse("sales:quote_pdf", args=[quote.pk])).status_code == 404
    response = browser.post(reverse("sales:quote_send", args=[quote.pk]))
    assert response.status_code == 404
    assert browser.get(reverse("sales:quote_new") + f"?client={buyer.pk}").status_code == 404
    quote.refresh_from_db()
    assert quote.stage == "draft"


def test_card_send_and_convert_flow(seller, buyer, signed_in, django_capture_on_commit_callbacks):
    quote = quote_create(by=seller, client=buyer, lines=[line("200")])
    browser = signed_in(seller)
    page = browser.get(reverse("sales:quote", args=[quote.pk]))
    assert page.status_code == 200 and b"Q-00001" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(reverse("sales:quote_send", args=[quote.pk]))
    assert len(mail.outbox) == 1
    browser.post(reverse("sales:quote_stage", args=[quote.pk]), {"stage": "accepted"})
    response = browser.post(reverse("sales:quote_convert", args=[quote.pk, "contract"]))
    quote.refresh_from_db()
    assert response.url == reverse("sales:contract", args=[quote.contract_id])
    contract_page = browser.get(response.url)
    assert b"From quote" in contract_page.content and b"Q-00001" in contract_page.content


def test_refused_stage_change_shows_the_message(seller, buyer, signed_in):
    quote = quote_create(by=seller, client=buyer, lines=[line()])
    browser = signed_in(seller)
    response = browser.post(
        reverse("sales:quote_stage", args=[quote.pk]), {"stage": "accepted"}, follow=True
    )
    assert b"cannot become accepted" in response.content
    quote.refresh_from_db()
    assert quote.stage == "draft"


def test_approval_through_the_pages(seller, sales_manager, buyer, signed_in):
    quote = quote_create(by=seller, client=buyer, lines=[line("100", "30")])
    browser = signed_in(seller)
    page = browser.get(reverse("sales:quote", args=[quote.pk]))
    assert b"approval-needed" in page.content
    browser.post(reverse("sales:quote_approval", args=[quote.pk, "request"]), {"note": "please"})
    # The seller may not approve their own quote
    response = browser.post(reverse("sales:quote_approval", args=[quote.pk, "approve"]))
    assert response.status_code == 403
    manager = signed_in(sales_manager)
    manager.post(reverse("sales:quote_approval", args=[quote.pk, "approve"]), {"note": "ok"})
    quote.refresh_from_db()
    assert quote.approval == "approved"


def test_pdf_is_a_pdf(seller, buyer, signed_in):
    quote = quote_create(by=seller, client=buyer, lines=[line()], issued_on=dt.date(2025, 1, 2))
    response = signed_in(seller).get(reverse("sales:quote_pdf", args=[quote.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response.content[:4] == b"%PDF"


def test_client_profile_shows_open_quotes(seller, other_seller, buyer, signed_in):
    quote_create(by=seller, client=buyer, lines=[line()])
    page = signed_in(seller).get(reverse("clients:detail", args=[buyer.pk]))
    assert "Quotes and contracts" in page.content.decode()


def test_edit_a_line_in_place(seller, other_seller, buyer, signed_in):
    quote = quote_create(by=seller, client=buyer, lines=[line("100")])
    added = quote.lines.get()
    browser = signed_in(seller)
    url = reverse("sales:quote_line_edit", args=[quote.pk, added.pk])
    form = browser.get(url, HTTP_HX_REQUEST="true")
    assert b'id="editing-line"' in form.content and b'value="100"' in form.content
    refused = browser.post(
        url, {"description": "Audit", "quantity": "0", "unit_price": "5"}, HTTP_HX_REQUEST="true"
    )
    assert b"editing-line" in refused.content
    browser.post(
        url,
        {"description": "Deep audit", "quantity": "2", "unit_price": "120", "taxable": "on"},
        HTTP_HX_REQUEST="true",
    )
    quote.refresh_from_db()
    assert (quote.lines.get().description, quote.total_minor) == ("Deep audit", 24000)
    assert signed_in(other_seller).get(url).status_code == 404


def test_an_open_quote_past_its_validity_shows_expired(seller, buyer, signed_in):
    quote = quote_create(
        by=seller,
        client=buyer,
        issued_on=dt.date(2020, 1, 1),
        valid_until=dt.date(2020, 1, 31),
        lines=[line()],
    )
    page = signed_in(seller).get(reverse("sales:quote", args=[quote.pk]))
    assert b"quote-expired" in page.content
