"""Pages of the marketing module: message templates and sending them."""

from clientbase.marketing.views import urlpatterns

app_name = "marketing"

__all__ = ["app_name", "urlpatterns"]
