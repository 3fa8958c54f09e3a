"""The dashboard at /dashboard: HTML shells and static assets shipped in this package.

The shells and assets hold no data and are public; every number and job on screen is fetched by the
browser from the JSON API with the token the user typed (so API_TOKEN protects the data, not the page).
"""

from producer.dashboard.routes import router

__all__ = ["router"]
