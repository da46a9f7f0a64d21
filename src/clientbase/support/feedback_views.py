"""Feedback pages: the customer's one-click rating of a closed ticket (no sign-in), surveys and
their answer page, and the reports of scores per agent and department (SUP-7)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _

from clientbase.core.errors import ServiceError
from clientbase.support import services
from clientbase.support.mail import ticket_for_rating
from clientbase.support.models import TicketRating


def rate(request: HttpRequest, token: str) -> HttpResponse:
    """The rating page of the closing mail's link: a score from 1 to 5 and a comment, once."""
    ticket = ticket_for_rating(token)
    if ticket is None:
        raise Http404
    rating = TicketRating.objects.filter(ticket=ticket).first()
    error = ""
    chosen = request.POST.get("score", request.GET.get("score", ""))
    if request.method == "POST" and rating is None:
        try:
            rating = services.ticket_rate(
                ticket=ticket,
                score=int(chosen) if chosen.isdigit() and len(chosen) == 1 else 0,
                comment=request.POST.get("comment", ""),
            )
        except ServiceError as refused:
            error = " ".join(refused.messages)
    elif request.method == "POST":
        error = _("This ticket has already been rated. Thank you!")
    return render(
        request,
        "support/rate.html",
        {
            "ticket": ticket,
            "rating": rating,
            "error": error,
            "chosen": chosen,
            "scores": range(1, 6),
        },
        status=400 if error else 200,
    )


def _todo(request, *args, **kwargs):  # TEMPORARY scaffold: the feedback helper replaces it
    return HttpResponse("not yet")


urlpatterns = [
    path("rate/<str:token>/", rate, name="rate"),
    path("feedback/", _todo, name="feedback"),
    path("surveys/", _todo, name="surveys"),
    path("survey/<str:token>/", _todo, name="survey_answer"),
]
