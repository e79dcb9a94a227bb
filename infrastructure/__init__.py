"""Adapters to systems outside the process (Redis today): kept apart from the business rules in services/."""
