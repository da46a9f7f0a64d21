"""Pages of the catalogue."""

from django.urls import path

from clientbase.catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("products/new/", views.product_add, name="product_add"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    path("products/<int:pk>/edit/", views.product_edit, name="product_edit"),
    path("products/<int:pk>/prices/", views.price_add, name="price_add"),
    path("prices/<int:pk>/delete/", views.price_delete, name="price_delete"),
    path("products/<int:pk>/options/new/", views.option_add, name="option_add"),
    path("options/<int:pk>/", views.option_edit, name="option_edit"),
    path("options/<int:pk>/delete/", views.option_delete, name="option_delete"),
    path("options/<int:pk>/prices/", views.option_price_add, name="option_price_add"),
    path("option-prices/<int:pk>/delete/", views.option_price_delete, name="option_price_delete"),
    path("groups/", views.group_list, name="groups"),
    path("groups/new/", views.group_edit, name="group_add"),
    path("groups/<int:pk>/", views.group_edit, name="group_edit"),
    path("promo-codes/", views.promo_list, name="promos"),
    path("promo-codes/new/", views.promo_edit, name="promo_add"),
    path("promo-codes/<int:pk>/", views.promo_edit, name="promo_edit"),
    path("tax-rules/", views.tax_rule_list, name="tax_rules"),
    path("tax-rules/new/", views.tax_rule_edit, name="tax_rule_add"),
    path("tax-rules/<int:pk>/", views.tax_rule_edit, name="tax_rule_edit"),
]
