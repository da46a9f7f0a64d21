"""Pages of the marketing module (its own issue adds them)."""

app_name = "marketing"

urlpatterns: list = []
