"""Settings pages of support. TEMPORARY scaffold: the settings helper replaces this file."""

from django.http import HttpResponse
from django.urls import path


def _todo(request, *args, **kwargs):
    return HttpResponse("not yet")


urlpatterns = [
    path("departments/", _todo, name="departments"),
    path("templates/", _todo, name="templates"),
    path("received-mail/", _todo, name="inbound"),
]
