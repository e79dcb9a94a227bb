"""FastAPI's native OpenTelemetry hooks stay off, even when a tracer provider is configured."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# In a process of its own: OpenTelemetry's global tracer provider can be set once per process.
PROBE = textwrap.dedent(
    """
    import asyncio
    import httpx
    from fastapi import FastAPI
    from opentelemetry import trace

    class RecordingProvider(trace.TracerProvider):
        asked = 0

        def get_tracer(self, *args, **kwargs):
            RecordingProvider.asked += 1
            return trace.NoOpTracer()

    trace.set_tracer_provider(RecordingProvider())

    from config import Settings
    from main import create_app

    async def requests_to(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/health")).status_code == 200
        asked, RecordingProvider.asked = RecordingProvider.asked, 0
        return asked

    plain = FastAPI()
    plain.get("/health")(lambda: {"status": "ok"})
    ours = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    print(asyncio.run(requests_to(plain)), asyncio.run(requests_to(ours)))
    """
)


def test_requests_ask_no_tracer_of_a_configured_provider():
    result = subprocess.run(  # noqa: S603 (our own interpreter, no shell)
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    # The last line: the app logs to standard output too.
    plain, ours = map(int, result.stdout.splitlines()[-1].split())

    # A plain FastAPI app traces its request with the configured provider: the probe sees the hooks at work.
    assert plain > 0
    assert ours == 0
