"""Repositories: one module per aggregate, holding every SQL statement the service runs."""
