from django.urls import path

from clientbase.core import views

app_name = "core"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("settings/audit/", views.audit_log, name="audit_log"),
    path("settings/automation/", views.automation_log, name="automation_log"),
    path("settings/automation/run/", views.automation_run, name="automation_run"),
]
