"""The web console every router serves at ``/console`` (``routes.py``; static assets beside it)."""
