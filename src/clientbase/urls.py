from django.contrib import admin
from django.urls import include, path

from clientbase.accounts.views import set_language
from clientbase.api import api
from clientbase.core import views as core_views

handler403 = "clientbase.core.views.permission_denied"
handler404 = "clientbase.core.views.page_not_found"
handler400 = "clientbase.core.views.bad_request"
handler500 = "clientbase.core.views.server_error"

urlpatterns = [
    path("", include("clientbase.core.urls")),
    path("healthz", core_views.healthz, name="healthz"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/", include("clientbase.accounts.urls")),
    path("clients/", include("clientbase.clients.urls")),
    path("catalog/", include("clientbase.catalog.urls")),
    path("billing/", include("clientbase.billing.urls")),
    path("support/", include("clientbase.support.urls")),
    path("sales/", include("clientbase.sales.urls")),
    path("marketing/", include("clientbase.marketing.urls")),
    path("reports/", include("clientbase.reports.urls")),
    path("portal/", include("clientbase.portal.urls")),
    path("api/v1/", api.urls),
    path("django-admin/", admin.site.urls),
]
