"""Observability: structured logging (and, later, metrics and health checks)."""
