"""Pages of the portal module (its own issue adds them)."""

app_name = "portal"

urlpatterns: list = []
