"""Lead pages: list with filters, forms with the duplicate check, the card, status moves."""

from clientbase.clients.models import Client
from clientbase.sales.lead_services import lead_create
from clientbase.sales.models import Lead

FORM = {
    "kind": "company",
    "name": "Jeanne Martin",
    "company": "Boulangerie Martin",
    "email": "jeanne@boulangerie-martin.fr",
    "phone": "01 99 00 11 88",
    "country": "FR",
    "language": "fr",
    "source": "fair",
    "campaign": "Spring",
    "potential": "1200.50",
    "currency": "EUR",
    "needs": "Bookkeeping",
}


def test_new_lead_form_saves_and_opens_the_card(signed_in, seller):
    web = signed_in(seller)
    assert web.get("/sales/leads/new/").status_code == 200
    response = web.post("/sales/leads/new/", {**FORM, "owner": seller.pk})
    lead = Lead.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sales/leads/{lead.pk}/"
    assert (lead.potential_minor, lead.phone, lead.owner) == (120050, "+33199001188", seller)
    card = web.get(f"/sales/leads/{lead.pk}/")
    assert card.status_code == 200
    for text in (b"Jeanne Martin", b"Boulangerie Martin", b"Bookkeeping", b"Convert"):
        assert text in card.content
    assert card.context["activity_panel"].lead_id == lead.pk


def test_a_duplicate_email_is_refused_at_the_field(signed_in, seller, buyer):
    web = signed_in(seller)
    response = web.post("/sales/leads/new/", {**FORM, "email": "contact@atelier-lumiere.fr"})
    assert response.status_code == 400
    assert response.context["form"].errors["email"] == [
        f"Client {buyer.number} (Atelier Lumière) already uses this email."
    ]
    assert Lead.objects.count() == 0


def test_the_duplicate_partial_names_leads_and_clients(signed_in, seller, buyer):
    lead = lead_create(by=seller, name="Old", phone="+33199001188", currency="EUR")
    web = signed_in(seller)
    found = web.get("/sales/leads/duplicates/", {"phone": "01 99 00 11 88", "country": "FR"})
    assert f"{lead.number} Old".encode() in found.content
    by_email = web.get("/sales/leads/duplicates/", {"email": "CONTACT@atelier-lumiere.fr"})
    assert buyer.number.encode() in by_email.content
    assert b"A lead cannot share this email." in by_email.content
    mine = web.get("/sales/leads/duplicates/", {"phone": "+33199001188", "exclude": lead.pk})
    assert mine.content.strip() == b""


def test_list_filters_and_counts_queries(
    signed_in, seller, other_seller, django_assert_num_queries
):
    for i in range(30):
        lead_create(by=seller, name=f"Lead {i}", source="fair" if i % 2 else "web", currency="EUR")
    lead_create(by=other_seller, name="Hidden", currency="EUR")
    web = signed_in(seller)
    web.get("/sales/leads/")  # warm the session and the menu
    with django_assert_num_queries(8):
        response = web.get("/sales/leads/", {"source": "fair"})
    assert response.status_code == 200
    page = response.context["page"]
    assert page.paginator.count == 15
    assert all(lead.source == "fair" for lead in page)
    second = web.get("/sales/leads/", {"page": 2})
    assert len(second.context["page"]) == 5
    assert b"Hidden" not in second.content
    found = web.get("/sales/leads/", {"q": "Lead 7"})
    assert [lead.name for lead in found.context["page"]] == ["Lead 7"]


def test_a_lead_out_of_sight_is_a_404_everywhere(signed_in, seller, other_seller):
    lead = lead_create(by=other_seller, name="Theirs", currency="EUR")
    web = signed_in(seller)
    for url in ("", "edit/", "convert/"):
        assert web.get(f"/sales/leads/{lead.pk}/{url}").status_code == 404
    assert web.post(f"/sales/leads/{lead.pk}/contacts/", {"name": "X"}).status_code == 404


def test_edit_with_a_stale_version_is_refused(signed_in, seller):
    lead = lead_create(by=seller, name="Jeanne", currency="EUR")
    web = signed_in(seller)
    data = {**FORM, "email": "", "owner": seller.pk}
    assert web.post(f"/sales/leads/{lead.pk}/edit/", {**data, "version": 1}).status_code == 302
    stale = web.post(f"/sales/leads/{lead.pk}/edit/", {**data, "city": "Nice", "version": 1})
    assert stale.status_code == 400
    lead.refresh_from_db()
    assert (lead.version, lead.city) == (2, "")


def test_status_moves_and_dead_with_a_reason(signed_in, seller):
    lead = lead_create(by=seller, name="Jeanne", currency="EUR")
    stages = {s.state: s for s in lead.stage.pipeline.stages.all()}
    web = signed_in(seller)
    web.post(f"/sales/leads/{lead.pk}/status/", {"stage": stages["in_progress"].pk})
    lead.refresh_from_db()
    assert lead.status == "in_progress"
    web.post(f"/sales/leads/{lead.pk}/status/", {"stage": stages["dead"].pk, "reason": "No budget"})
    lead.refresh_from_db()
    assert (lead.status, lead.dead_reason) == ("dead", "No budget")


def test_contacts_are_added_and_removed(signed_in, seller):
    lead = lead_create(by=seller, name="Jeanne", currency="EUR", country="FR")
    web = signed_in(seller)
    refused = web.post(f"/sales/leads/{lead.pk}/contacts/", {"name": "", "phone": "abc"})
    assert refused.status_code == 400 and lead.contacts.count() == 0
    web.post(f"/sales/leads/{lead.pk}/contacts/", {"name": "Paul", "phone": "06 11 22 33 44"})
    contact = lead.contacts.get()
    assert contact.phone == "+33611223344"
    web.post(f"/sales/leads/{lead.pk}/contacts/{contact.pk}/remove/")
    assert lead.contacts.count() == 0


def test_convert_page_makes_a_client_or_offers_to_attach(signed_in, seller, buyer):
    lead = lead_create(by=seller, name="Jeanne", email="j@example.org", currency="EUR")
    web = signed_in(seller)
    assert web.get(f"/sales/leads/{lead.pk}/convert/").status_code == 200
    response = web.post(
        f"/sales/leads/{lead.pk}/convert/", {"create_deal": "on", "deal_name": "Books"}
    )
    lead.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == f"/clients/{lead.client_id}/"
    assert lead.deals.get().name == "Books"
    other = lead_create(by=seller, name="Atelier", currency="EUR")
    Lead.objects.filter(pk=other.pk).update(email="contact@atelier-lumiere.fr")
    clash = web.post(f"/sales/leads/{other.pk}/convert/", {"deal_name": ""})
    assert clash.status_code == 409 and clash.context["existing"] == buyer
    assert Client.objects.count() == 2
    attached = web.post(
        f"/sales/leads/{other.pk}/convert/", {"deal_name": "", "existing_client": buyer.pk}
    )
    assert attached.status_code == 302
    other.refresh_from_db()
    assert other.client == buyer and other.deals.count() == 0


def test_dashboard_counter_and_search(signed_in, seller, other_seller):
    from clientbase.core.registry import COUNTERS, SEARCH_SOURCES

    lead_create(by=seller, name="Jeanne Mine", currency="EUR")
    lead_create(by=other_seller, name="Jeanne Theirs", currency="EUR")
    counter = next(c for c in COUNTERS if c.key == "sales.leads_this_month")
    assert counter.count(seller) == 1
    source = next(s for s in SEARCH_SOURCES if str(s.label) == "Leads")
    assert [hit.title.split(" ", 1)[1] for hit in source.find(seller, "Jeanne", 5)] == [
        "Jeanne Mine"
    ]


def test_a_seller_may_leave_the_owner_empty_for_distribution(signed_in, seller, make_user):
    from clientbase.sales.lead_services import distribution_rule_save

    colleague = make_user("paul", role="sales", unit="team_a")
    distribution_rule_save(by=seller, name="Fair", source="fair", members=[colleague])
    response = signed_in(seller).post("/sales/leads/new/", {**FORM, "owner": ""})
    assert response.status_code == 302 and response["Location"] == "/sales/leads/"
    assert Lead.objects.get().owner == colleague


def test_the_dashboard_shows_leads_created_this_month(signed_in, seller):
    lead_create(by=seller, name="Jeanne", currency="EUR")
    response = signed_in(seller).get("/")
    assert response.status_code == 200
    assert b"Leads created this month" in response.content


def test_a_shared_phone_warns_but_saves(signed_in, seller):
    old = lead_create(by=seller, name="Old", phone="+33199001188", currency="EUR")
    web = signed_in(seller)
    response = web.post("/sales/leads/new/", {**FORM, "owner": seller.pk}, follow=True)
    assert Lead.objects.count() == 2
    shown = [str(m) for m in response.context["messages"]]
    assert f"The same phone or tax id is already on: {old.number} Old." in shown


def test_the_openapi_schema_lists_the_lead_endpoints(api_client, seller):
    paths = api_client(seller).get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/leads", "/api/v1/leads/{lead_id}", "/api/v1/leads/{lead_id}/convert"} <= set(
        paths
    )
