"""Pages of the billing module (its own issue adds them)."""

app_name = "billing"

urlpatterns: list = []
