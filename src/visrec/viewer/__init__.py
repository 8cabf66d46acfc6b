"""The web viewer: look at profiles, recommendations, similar items and attention (FastAPI, server HTML)."""
