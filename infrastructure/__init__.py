"""Adapters to systems outside the process (Redis, SMTP): kept apart from the business rules in services/."""
