"""Business rules that are neither HTTP nor SQL."""
