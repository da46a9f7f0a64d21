"""Pages of the reports module (its own issue adds them)."""

app_name = "reports"

urlpatterns: list = []
