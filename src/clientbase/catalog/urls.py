"""Pages of the catalog module (its own issue adds them)."""

app_name = "catalog"

urlpatterns: list = []
