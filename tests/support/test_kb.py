"""Knowledge base pages (SUP-6): the list and its search, an article, writing and deleting
articles and categories, and an article written from a resolved ticket."""

import pytest
from django.urls import reverse

from clientbase.accounts.models import Role
from clientbase.core.models import AuditEntry
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import KbArticle, KbCategory

from .conftest import raw_mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_user):
    """A seller: reads the knowledge base but does not write it."""
    return make_user("reader", role="sales", unit="team_b")


@pytest.fixture
def kb(agent):
    """Two categories, two published articles and one draft."""
    mail = services.kb_category_save(by=agent, name="Mail", position=1)
    billing = services.kb_category_save(by=agent, name="Billing", position=2)
    smtp = services.article_save(
        by=agent,
        category=mail,
        title="Mail does not send",
        body="Check the SMTP port.\nUse 587 with STARTTLS.",
        keywords="smtp outgoing",
    )
    invoice = services.article_save(
        by=agent, category=billing, title="Where is my invoice", body="See the portal."
    )
    draft = services.article_save(
        by=agent,
        category=mail,
        title="Mailbox quota draft",
        body="Not ready yet.",
        published=False,
    )
    return {"mail": mail, "billing": billing, "smtp": smtp, "invoice": invoice, "draft": draft}


def _titles(response) -> list[str]:
    return [a.title for a in response.context["articles"]]


def _errors(response) -> dict:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def test_the_list_shows_articles_by_category_and_drafts_to_writers(
    signed_in, agent, kb, django_assert_num_queries
):
    # given an agent who writes the knowledge base
    http = signed_in(agent)
    # when the list is opened
    with django_assert_num_queries(6):
        response = http.get(reverse("support:kb"))
    # then the articles appear by category order, the draft marked as such
    assert response.status_code == 200
    assert _titles(response) == ["Mail does not send", "Mailbox quota draft", "Where is my invoice"]
    html = response.content.decode()
    assert '<strong>Mail</strong><span class="badge text-bg-light border">2</span>' in html
    assert '<strong>Billing</strong><span class="badge text-bg-light border">1</span>' in html
    assert html.count(">Draft</span>") == 1
    assert 'id="kb-add"' in html


def test_a_reader_sees_neither_drafts_nor_the_writing_buttons(signed_in, reader, kb):
    # given a seller without support.kb
    http = signed_in(reader)
    # when the list is opened
    response = http.get(reverse("support:kb"))
    # then only published articles are listed, with no way to write
    assert _titles(response) == ["Mail does not send", "Where is my invoice"]
    html = response.content.decode()
    assert "Mailbox quota draft" not in html
    assert 'id="kb-add"' not in html
    # and the draft's own page does not exist for them
    assert http.get(reverse("support:kb_article", args=[kb["draft"].pk])).status_code == 404


def test_search_finds_by_fragments_of_every_word(signed_in, agent, reader, kb):
    # given the articles; when a writer searches with two fragments from title and keywords
    response = signed_in(agent).get(reverse("support:kb"), {"q": "MAIL outgo"})
    # then only the article holding both is found
    assert _titles(response) == ["Mail does not send"]
    assert "1 article found." in response.content.decode()
    # when a fragment of the text is searched
    response = signed_in(agent).get(reverse("support:kb"), {"q": "not"})
    assert _titles(response) == ["Mail does not send", "Mailbox quota draft"]
    # then a reader searching the same finds the published one only
    response = signed_in(reader).get(reverse("support:kb"), {"q": "not"})
    assert _titles(response) == ["Mail does not send"]
    # and a category narrows the list
    response = signed_in(reader).get(reverse("support:kb"), {"category": kb["billing"].pk})
    assert _titles(response) == ["Where is my invoice"]


def test_a_search_without_match_says_so(signed_in, reader, kb):
    response = signed_in(reader).get(reverse("support:kb"), {"q": "quantum"})
    assert _titles(response) == []
    assert "No article matches. Try fewer or shorter words." in response.content.decode()


def test_an_article_is_shown_as_text_with_its_line_breaks(signed_in, reader, agent, kb):
    # given an article whose text contains markup
    category = kb["mail"]
    article = services.article_save(
        by=agent,
        category=category,
        title="Tags <b>bold</b>",
        body="First line\n<script>alert(1)</script>\nThird line",
    )
    # when a reader opens it
    response = signed_in(reader).get(reverse("support:kb_article", args=[article.pk]))
    # then the markup is shown as text and each line break is a <br>
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<div class="card-body kb-body" id="kb-article-body">First line<br>'
        "&lt;script&gt;alert(1)&lt;/script&gt;<br>Third line</div>"
    ) in html
    assert "Tags &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html
    assert 'id="kb-edit"' not in html


def test_a_writer_adds_an_article_through_the_page(signed_in, agent, kb):
    # given a writer on the new article page
    http = signed_in(agent)
    assert http.get(reverse("support:kb_add")).status_code == 200
    # when the form is sent
    response = http.post(
        reverse("support:kb_add"),
        {
            "category": kb["billing"].pk,
            "title": "  Paying by card  ",
            "body": "Open the invoice.\nPress Pay.",
            "keywords": "card   visa",
            "published": "on",
        },
    )
    # then the article is saved exactly and its page opens
    article = KbArticle.objects.get(title="Paying by card")
    assert response.status_code == 302
    assert response["Location"] == reverse("support:kb_article", args=[article.pk])
    assert (article.category, article.body, article.keywords, article.published) == (
        kb["billing"],
        "Open the invoice.\nPress Pay.",
        "card visa",
        True,
    )
    assert (article.created_by, article.source_ticket) == (agent, None)
    assert article.search_text == "paying by card card visa open the invoice.\npress pay."


def test_an_article_without_title_is_refused_at_the_field(signed_in, agent, kb):
    # given the articles; when a writer sends an empty title
    before = KbArticle.objects.count()
    response = signed_in(agent).post(
        reverse("support:kb_add"), {"category": kb["mail"].pk, "title": "  ", "body": "Text"}
    )
    # then the title field says why and nothing is saved
    assert response.status_code == 400
    assert _errors(response) == {"title": ["The title cannot be empty."]}
    html = response.content.decode()
    assert 'class="form-control is-invalid" aria-invalid="true"' in html
    assert '<div class="invalid-feedback d-block">The title cannot be empty.</div>' in html
    assert KbArticle.objects.count() == before


def test_a_writer_edits_an_article_and_unpublishes_it(signed_in, agent, reader, kb):
    # given a published article; when a writer changes it and takes off "published"
    article = kb["smtp"]
    http = signed_in(agent)
    page = http.get(reverse("support:kb_edit", args=[article.pk]))
    assert page.context["form"].initial["body"] == "Check the SMTP port.\nUse 587 with STARTTLS."
    response = http.post(
        reverse("support:kb_edit", args=[article.pk]),
        {"category": kb["mail"].pk, "title": "Mail is stuck", "body": "Call us.", "keywords": ""},
    )
    # then it is changed and hidden from readers
    article.refresh_from_db()
    assert response.status_code == 302
    assert (article.title, article.body, article.keywords, article.published) == (
        "Mail is stuck",
        "Call us.",
        "",
        False,
    )
    assert _titles(signed_in(reader).get(reverse("support:kb"))) == ["Where is my invoice"]


def test_writing_needs_support_kb(signed_in, reader, kb):
    # given a reader; when they try every writing page
    http = signed_in(reader)
    pk = kb["smtp"].pk
    pages = [
        reverse("support:kb_add"),
        reverse("support:kb_edit", args=[pk]),
        reverse("support:kb_delete", args=[pk]),
        reverse("support:kb_categories"),
        reverse("support:kb_category_edit", args=[kb["mail"].pk]),
    ]
    # then each is forbidden, and a POST changes nothing
    assert [http.get(url).status_code for url in pages] == [403] * 5
    assert http.post(reverse("support:kb_delete", args=[pk])).status_code == 403
    assert http.post(reverse("support:kb_add"), {"title": "x"}).status_code == 403
    assert KbArticle.objects.count() == 3


def test_a_writer_deletes_an_article_after_confirming(signed_in, agent, kb):
    http = signed_in(agent)
    url = reverse("support:kb_delete", args=[kb["invoice"].pk])
    # when the confirmation page is opened, nothing is deleted yet
    assert "Delete “Where is my invoice”" in http.get(url).content.decode()
    assert KbArticle.objects.filter(pk=kb["invoice"].pk).exists()
    # when it is confirmed, the article is gone and the deletion audited
    response = http.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("support:kb")
    assert not KbArticle.objects.filter(pk=kb["invoice"].pk).exists()
    deleted = AuditEntry.objects.filter(
        action="delete", object_id=str(kb["invoice"].pk), object_repr="Where is my invoice"
    )
    assert deleted.count() == 1


@pytest.fixture
def answered_ticket(support_desk, customer, agent):
    """A customer's question by mail, answered twice, with an internal note between."""
    ticket = mail_ingest(
        raw_mail(subject="Письма не уходят", body="Почта не отправляется с утра.")
    ).ticket
    services.ticket_reply(by=agent, ticket=ticket, body="Проверьте порт 587.")
    services.ticket_note(by=agent, ticket=ticket, body="Secret internal note")
    services.ticket_reply(by=agent, ticket=ticket, body="Теперь всё работает.")
    return ticket


def test_an_article_from_a_ticket_is_prefilled_and_saved_with_its_source(
    signed_in, agent, kb, answered_ticket
):
    # given an answered ticket; when a writer opens "write an article from it"
    http = signed_in(agent)
    url = reverse("support:kb_from_ticket", args=[answered_ticket.number])
    page = http.get(url)
    # then the draft holds the question and both answers, never the note or the auto-reply
    assert page.status_code == 200
    assert page.context["form"].initial == {
        "title": "Письма не уходят",
        "body": "Почта не отправляется с утра.\n\nAnswer:\n\n"
        "Проверьте порт 587.\n\nТеперь всё работает.",
    }
    assert "Secret internal note" not in page.content.decode()
    # when it is saved
    response = http.post(
        url,
        {
            "category": kb["mail"].pk,
            "title": "Письма не уходят",
            "body": "Проверьте порт 587.",
            "published": "on",
        },
    )
    # then the article remembers its ticket, and its page links the ticket
    article = KbArticle.objects.get(title="Письма не уходят")
    assert response["Location"] == reverse("support:kb_article", args=[article.pk])
    assert (article.source_ticket, article.body) == (answered_ticket, "Проверьте порт 587.")
    shown = http.get(response["Location"]).content.decode()
    assert f'id="kb-source-ticket">#{answered_ticket.number}</a>' in shown


def test_an_article_from_a_ticket_out_of_sight_is_404(make_user, signed_in, answered_ticket):
    # given a writer who sees only their own clients' tickets
    Role.objects.create(name="KB writer", slug="kb-writer", scope="own",
                        permissions=["support.kb"])  # fmt: skip
    writer = make_user("wendy", role="kb-writer", unit="team_b")
    http = signed_in(writer)
    url = reverse("support:kb_from_ticket", args=[answered_ticket.number])
    # when they open or post the page for a ticket they do not see
    # then it does not exist for them, and nothing is saved
    assert http.get(url).status_code == 404
    assert http.post(url, {"title": "x", "body": "y"}).status_code == 404
    assert http.get(reverse("support:kb_from_ticket", args=["999999"])).status_code == 404
    assert KbArticle.objects.count() == 0


def test_categories_are_added_renamed_and_an_empty_one_deleted(signed_in, agent, kb):
    http = signed_in(agent)
    # when a category is added through the page
    page = http.get(reverse("support:kb_categories"))
    assert [(c.name, c.count) for c in page.context["categories"]] == [("Mail", 2), ("Billing", 1)]
    response = http.post(reverse("support:kb_categories"), {"name": " Domains ", "position": "3"})
    assert response.status_code == 302
    domains = KbCategory.objects.get(name="Domains")
    assert domains.position == 3
    # when it is renamed and moved first
    response = http.post(
        reverse("support:kb_category_edit", args=[domains.pk]), {"name": "DNS", "position": "0"}
    )
    domains.refresh_from_db()
    assert response.status_code == 302 and (domains.name, domains.position) == ("DNS", 0)
    # when the empty category is deleted
    response = http.post(reverse("support:kb_category_delete", args=[domains.pk]))
    assert response.status_code == 302
    assert list(KbCategory.objects.values_list("name", flat=True)) == ["Mail", "Billing"]


def test_a_duplicate_category_and_deleting_one_with_articles_are_refused(signed_in, agent, kb):
    http = signed_in(agent)
    # when a category is added under a name in use
    response = http.post(reverse("support:kb_categories"), {"name": "Mail", "position": "5"})
    # then the name field says so
    assert response.status_code == 400
    assert _errors(response) == {"name": ["A category with this name exists."]}
    # when a category with articles is deleted
    response = http.post(reverse("support:kb_category_delete", args=[kb["mail"].pk]))
    # then it is refused with the reason and both categories stay
    assert response.status_code == 400
    assert (
        "<strong>Mail</strong>: The category holds 2 articles: move or delete them first."
        in response.content.decode()
    )
    assert KbCategory.objects.count() == 2
