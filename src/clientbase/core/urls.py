from django.urls import path

from clientbase.core import views

app_name = "core"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("settings/audit/", views.audit_log, name="audit_log"),
    path("settings/automation/", views.automation_log, name="automation_log"),
    path("settings/automation/run/", views.automation_run, name="automation_run"),
    path("settings/custom-fields/", views.custom_field_list, name="custom_field_list"),
    path("settings/custom-fields/new/", views.custom_field_edit, name="custom_field_add"),
    path("settings/custom-fields/<int:pk>/", views.custom_field_edit, name="custom_field_edit"),
]
