"""Command-line tasks: `python cli.py create-admin`, `python cli.py seed-products`, `python cli.py purge-expired`."""

import argparse
import asyncio
import getpass
import random
import sys
from datetime import timedelta
from decimal import Decimal

from auth.security import PASSWORD_RULE, PasswordHasher, password_size_ok
from config import Settings, get_settings
from database.connection import Database, write_transaction
from database.repositories import products as products_repo
from services import maintenance
from services import users as users_service

SEED_BATCH_SIZE = 5_000


async def create_admin(settings: Settings, *, username: str, email: str, password: str) -> int:
    database = Database(settings)
    try:
        async with database.sessionmaker() as session:
            hasher = PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=1)
            user = await users_service.ensure_admin(
                session=session, hasher=hasher, username=username, email=email, password=password
            )
    finally:
        await database.dispose()
    if user is None:
        print(f"admin {username!r} not created: that username or email is already in use", file=sys.stderr)
        return 1
    print(f"created admin {username!r} (id {user.id})")
    return 0


async def seed_products(settings: Settings, *, count: int, seed: int) -> int:
    """Load `count` products, one multi-row INSERT per batch rather than a statement per row."""
    generator = random.Random(seed)  # noqa: S311 - sample data, not security
    database = Database(settings)
    try:
        async with database.sessionmaker() as session:
            for start in range(0, count, SEED_BATCH_SIZE):
                rows = [
                    {
                        "name": f"Product {number:06d}",
                        "description": f"Sample product number {number}",
                        "price": Decimal(generator.randint(100, 100_000)) / 100,
                        "stock": generator.randint(0, 500),
                    }
                    for number in range(start + 1, min(start + SEED_BATCH_SIZE, count) + 1)
                ]
                async with write_transaction(session):
                    await products_repo.bulk_insert_products(session, rows)
    finally:
        await database.dispose()
    print(f"seeded {count} products")
    return 0


async def purge_expired(settings: Settings) -> int:
    database = Database(settings)
    try:
        async with database.sessionmaker() as session:
            removed = await maintenance.purge_expired(
                session=session,
                idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
                event_retention=timedelta(days=settings.event_retention_days),
                events_delivered=settings.nats_url is not None,
            )
    finally:
        await database.dispose()
    print(f"purged {removed} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python cli.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create an admin account (asks for the password if not given)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="prefer the prompt: command-line arguments show up in `ps`")
    seed = commands.add_parser("seed-products", help="bulk-load sample products")
    seed.add_argument("--count", type=int, default=10_000)
    seed.add_argument("--seed", type=int, default=1)
    commands.add_parser(
        "purge-expired", help="delete expired tokens, idempotency keys and events past their retention now"
    )
    arguments = parser.parse_args(argv)

    settings = get_settings()
    if arguments.command == "create-admin":
        password = arguments.password or getpass.getpass("Password for the new admin: ")
        if not password_size_ok(password):
            print(PASSWORD_RULE, file=sys.stderr)
            return 2
        return asyncio.run(
            create_admin(settings, username=arguments.username, email=arguments.email, password=password)
        )
    if arguments.command == "seed-products":
        return asyncio.run(seed_products(settings, count=arguments.count, seed=arguments.seed))
    return asyncio.run(purge_expired(settings))


if __name__ == "__main__":
    raise SystemExit(main())
