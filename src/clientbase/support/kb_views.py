"""Knowledge base pages (SUP-6): the articles by category with a search, an article, writing
one (also from a resolved ticket) and the categories."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.core.errors import ServiceError
from clientbase.core.forms import StyledForm, add_service_errors
from clientbase.core.permissions import require_action
from clientbase.support import queries, services
from clientbase.support.models import KbArticle, KbCategory, Ticket

KB = "support.kb"


class ArticleForm(StyledForm, forms.Form):
    """An article: its category, title, text and the keywords it is found by."""

    category = forms.ModelChoiceField(
        label=gettext_lazy("Category"), queryset=KbCategory.objects.all()
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, required=False)
    body = forms.CharField(
        label=gettext_lazy("Text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text=gettext_lazy("Plain text; line breaks are kept."),
    )
    keywords = forms.CharField(
        label=gettext_lazy("Keywords"),
        max_length=300,
        required=False,
        help_text=gettext_lazy("Other words people search for, separated by spaces."),
    )
    published = forms.BooleanField(
        label=gettext_lazy("Published: everyone can read it"), required=False, initial=True
    )


class CategoryForm(StyledForm, forms.Form):
    """A category of the knowledge base and its place in the list."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    position = forms.IntegerField(
        label=gettext_lazy("Place in the list"), min_value=0, max_value=32767, initial=0
    )


def _article(request: HttpRequest, pk: int) -> KbArticle:
    """An article; an unpublished one exists only for those who write articles."""
    article = get_object_or_404(
        KbArticle.objects.select_related("category", "created_by", "source_ticket"), pk=pk
    )
    if not article.published and not request.user.has_perm(KB):
        raise Http404
    return article


@login_required
def kb_list(request: HttpRequest) -> HttpResponse:
    """The articles by category, narrowed by a search (every word must match)."""
    q = " ".join(request.GET.get("q", "")[:200].split())
    category = request.GET.get("category", "")
    category_id = int(category) if category.isdigit() and len(category) < 10 else None
    writer = request.user.has_perm(KB)
    found = queries.articles(q=q, category=category_id, published_only=not writer).order_by(
        "category__position", "category__name", "category_id", "title", "id"
    )
    return render(
        request,
        "support/kb_list.html",
        {
            "articles": list(found),
            "categories": KbCategory.objects.all(),
            "q": q,
            "category_id": category_id,
            "searching": bool(q or category_id),
            "writer": writer,
        },
    )


@login_required
def kb_article(request: HttpRequest, pk: int) -> HttpResponse:
    """One article, its text shown as text with its line breaks."""
    article = _article(request, pk)
    ticket = None
    if article.source_ticket_id:
        # The ticket is named only to those who may open it.
        ticket = queries.tickets_for(request.user).filter(pk=article.source_ticket_id).first()
    return render(
        request,
        "support/kb_article.html",
        {"article": article, "ticket": ticket, "writer": request.user.has_perm(KB)},
    )


def _article_form(
    request: HttpRequest,
    *,
    article: KbArticle | None = None,
    ticket: Ticket | None = None,
    initial: dict | None = None,
) -> HttpResponse:
    form = ArticleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.article_save(
                by=request.user, article=article, source_ticket=ticket, **form.cleaned_data
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Article saved."))
            return redirect("support:kb_article", saved.pk)
    return render(
        request,
        "support/kb_article_form.html",
        {"form": form, "article": article, "ticket": ticket},
        status=400 if form.is_bound else 200,
    )


@require_action(KB)
def kb_add(request: HttpRequest) -> HttpResponse:
    """Write a new article, in the category the list was showing."""
    category = request.GET.get("category", "")
    initial = {"category": int(category)} if category.isdigit() and len(category) < 10 else None
    return _article_form(request, initial=initial)


@require_action(KB)
def kb_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an article."""
    article = _article(request, pk)
    initial = {
        "category": article.category_id,
        "title": article.title,
        "body": article.body,
        "keywords": article.keywords,
        "published": article.published,
    }
    return _article_form(request, article=article, initial=initial)


@require_action(KB)
def kb_from_ticket(request: HttpRequest, number: str) -> HttpResponse:
    """Write an article from a resolved ticket: its question and our answers as a draft."""
    ticket = queries.ticket_get(request.user, number)  # 404 when out of sight
    draft = services.article_draft_from_ticket(ticket)
    return _article_form(
        request, ticket=ticket, initial={"title": draft["title"], "body": draft["body"]}
    )


@require_action(KB)
def kb_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then remove an article."""
    article = _article(request, pk)
    if request.method == "POST":
        services.article_delete(by=request.user, article=article)
        messages.success(request, _("Article %(title)s deleted.") % {"title": article.title})
        return redirect("support:kb")
    return render(request, "support/kb_delete.html", {"article": article})


@require_action(KB)
def kb_categories(request: HttpRequest) -> HttpResponse:
    """The categories with their article counts; a new one is added here."""
    form = CategoryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.kb_category_save(by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Category %(name)s saved.") % {"name": saved.name})
            return redirect("support:kb_categories")
    return _categories_page(request, form)


def _categories_page(request, form, *, refused=None, status=None) -> HttpResponse:
    categories = KbCategory.objects.annotate(count=Count("articles")).order_by("position", "name")
    return render(
        request,
        "support/kb_categories.html",
        {"categories": categories, "form": form, "refused": refused},
        status=status or (400 if form.is_bound else 200),
    )


@require_action(KB)
def kb_category_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a category or move it in the list."""
    category = get_object_or_404(KbCategory, pk=pk)
    form = CategoryForm(
        request.POST or None, initial={"name": category.name, "position": category.position}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.kb_category_save(by=request.user, category=category, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Category %(name)s saved.") % {"name": category.name})
            return redirect("support:kb_categories")
    return render(
        request,
        "support/kb_category_form.html",
        {"form": form, "category": category},
        status=400 if form.is_bound else 200,
    )


@require_action(KB)
def kb_category_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an empty category; one with articles is refused with the reason."""
    category = get_object_or_404(KbCategory, pk=pk)
    if request.method != "POST":
        return redirect("support:kb_categories")
    try:
        services.kb_category_delete(by=request.user, category=category)
    except ServiceError as refused:
        reasons = [m for ms in refused.message_dict.values() for m in ms]
        return _categories_page(request, CategoryForm(), refused=(category, reasons), status=400)
    messages.success(request, _("Category %(name)s deleted.") % {"name": category.name})
    return redirect("support:kb_categories")


urlpatterns = [
    path("kb/", kb_list, name="kb"),
    path("kb/new/", kb_add, name="kb_add"),
    path("kb/<int:pk>/", kb_article, name="kb_article"),
    path("kb/<int:pk>/edit/", kb_edit, name="kb_edit"),
    path("kb/<int:pk>/delete/", kb_delete, name="kb_delete"),
    path("kb/from/<str:number>/", kb_from_ticket, name="kb_from_ticket"),
    path("kb/categories/", kb_categories, name="kb_categories"),
    path("kb/categories/<int:pk>/", kb_category_edit, name="kb_category_edit"),
    path("kb/categories/<int:pk>/delete/", kb_category_delete, name="kb_category_delete"),
]
