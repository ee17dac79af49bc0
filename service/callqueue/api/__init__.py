"""The HTTP API: one router per resource, models, error handling and the app factory."""
