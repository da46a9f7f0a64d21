"""Pages of the sales module, each area in its own views module."""

from clientbase.sales import activity_views, deal_views, kpi_views, lead_views, quote_views

app_name = "sales"

urlpatterns: list = [
    *lead_views.urlpatterns,
    *deal_views.urlpatterns,
    *activity_views.urlpatterns,
    *quote_views.urlpatterns,
    *kpi_views.urlpatterns,
]
