"""Strategies: the base class, plug-in registry and look-ahead check."""
