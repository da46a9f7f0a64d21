from django.urls import path

from clientbase.clients import views

app_name = "clients"

urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_add, name="add"),
    path("<int:pk>/", views.client_detail, name="detail"),
    path("<int:pk>/edit/", views.client_edit, name="edit"),
    path("<int:pk>/notes/", views.note_add, name="note_add"),
    path("<int:pk>/notes/<int:note_pk>/comments/", views.note_comment, name="note_comment"),
]
