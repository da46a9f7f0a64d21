"""Knowledge base pages (SUP-6). TEMPORARY scaffold: the KB helper replaces this file."""

from django.http import HttpResponse
from django.urls import path


def _todo(request, *args, **kwargs):
    return HttpResponse("not yet")


urlpatterns = [
    path("kb/", _todo, name="kb"),
    path("kb/<int:pk>/", _todo, name="kb_article"),
    path("kb/from/<str:number>/", _todo, name="kb_from_ticket"),
]
