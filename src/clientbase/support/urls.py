"""Pages of the support module (its own issue adds them)."""

app_name = "support"

urlpatterns: list = []
