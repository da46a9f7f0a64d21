"""Pages of the marketing module: message templates and sending them."""

urlpatterns: list = []

app_name = "marketing"
