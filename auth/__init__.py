"""Authentication primitives: tokens, password hashing, roles."""
