"""Pages of the sales module (its own issue adds them)."""

app_name = "sales"

urlpatterns: list = []
