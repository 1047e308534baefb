"""Market data: sources, validation and the cached market-data service."""
