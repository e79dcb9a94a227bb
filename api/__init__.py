"""The HTTP layer: routes, schemas, errors, dependencies and middleware."""
