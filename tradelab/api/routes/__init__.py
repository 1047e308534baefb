"""Routers, one module per area: system, auth, admin, trading, control."""
