"""Persistence: the engine and sessions, repositories holding all SQL, and Alembic migrations."""
