from django.urls import path

from clientbase.clients import io_views, views

app_name = "clients"

urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_add, name="add"),
    path("<int:pk>/", views.client_detail, name="detail"),
    path("<int:pk>/edit/", views.client_edit, name="edit"),
    path("<int:pk>/notes/", views.note_add, name="note_add"),
    path("<int:pk>/contacts/new/", views.contact_edit, name="contact_add"),
    path("<int:pk>/contacts/<int:contact_pk>/", views.contact_edit, name="contact_edit"),
    path(
        "<int:pk>/contacts/<int:contact_pk>/delete/",
        views.contact_delete,
        name="contact_delete",
    ),
    path("<int:pk>/addresses/new/", views.address_edit, name="address_add"),
    path("<int:pk>/addresses/<int:address_pk>/", views.address_edit, name="address_edit"),
    path(
        "<int:pk>/addresses/<int:address_pk>/delete/",
        views.address_delete,
        name="address_delete",
    ),
    path("<int:pk>/status/", views.status_change, name="status_change"),
    path("<int:pk>/security/", views.security_question_add, name="security_add"),
    path(
        "<int:pk>/security/<int:question_pk>/check/",
        views.security_answer_check,
        name="security_check",
    ),
    path(
        "<int:pk>/security/<int:question_pk>/delete/",
        views.security_question_delete,
        name="security_delete",
    ),
    path("<int:pk>/deferred/<int:action_pk>/", views.deferred_action_edit, name="deferred_edit"),
    path(
        "<int:pk>/deferred/<int:action_pk>/execute/",
        views.deferred_action_execute,
        name="deferred_execute",
    ),
    path(
        "<int:pk>/deferred/<int:action_pk>/delete/",
        views.deferred_action_delete,
        name="deferred_delete",
    ),
    path("<int:pk>/notes/<int:note_pk>/comments/", views.note_comment, name="note_comment"),
    path("duplicates/", views.duplicate_check, name="duplicates"),
    path("<int:pk>/merge/", views.client_merge, name="merge"),
    path("<int:pk>/delete/", views.client_delete, name="delete"),
    path("<int:pk>/documents/", views.document_add, name="document_add"),
    path(
        "<int:pk>/documents/<int:document_pk>/",
        views.document_download,
        name="document_download",
    ),
    path(
        "<int:pk>/documents/<int:document_pk>/delete/",
        views.document_delete,
        name="document_delete",
    ),
    *io_views.urlpatterns,
]
