"""Pages of the support module: tickets, knowledge base, feedback and surveys, settings."""

from clientbase.support import feedback_views, kb_views, settings_views, views

app_name = "support"

urlpatterns = [
    *views.urlpatterns,
    *kb_views.urlpatterns,
    *feedback_views.urlpatterns,
    *settings_views.urlpatterns,
]
