"""What start-up builds is out of the garbage collector's reach while the app runs (gc.freeze), and back after."""

import gc

from tests.conftest import sqlite_only

pytestmark = sqlite_only


def collected(obj: object) -> bool:
    """Whether the collector's generations hold `obj` (the frozen ones are in none of them)."""
    return any(candidate is obj for candidate in gc.get_objects())


async def test_start_up_objects_are_frozen_while_the_app_runs(app_client):
    async with app_client() as client:
        router = client.app.router
        frozen_while_running = gc.get_freeze_count()
        router_collected_while_running = collected(router)

    assert frozen_while_running > 0
    assert not router_collected_while_running
    # Stopped, the app's objects are the collector's again: apps started one after another in a process (tests,
    # reloads) do not pile up frozen garbage.
    assert gc.get_freeze_count() == 0
    assert collected(router)
