"""`make bench`: our service against a bare Starlette + asyncpg baseline, one worker each, PostgreSQL + Redis, wrk.

What it does, in about three minutes by default:

1. creates a fresh PostgreSQL database, migrates it (Alembic) and seeds 10,000 products (`cli.py seed-products`);
2. starts bench/baseline.py and our app twice, each as one uvicorn worker (uvloop, httptools, no access log) on
   127.0.0.1, rate limiting on (RATE_LIMIT_DEFAULT=100000000/minute, and 120/minute for the second), REDIS_URL
   set, BCRYPT_ROUNDS=12, up to 20 pooled connections each; adds BENCH_USERS users straight to the database
   for each of our two and signs a token for each (the run knows the signing key);
3. measures, with wrk -t1 -c32 on loopback, running ours and the baseline in turn (A B A B ...): GET one product
   (one user), GET a page of 20 (the first cursor page), POST an order (a product with a huge stock) and login;
   and GET one product at 120/minute against the same at 10^8/minute (our two in turn), each request from the
   next of many users (so that none is refused at 120/minute; each server has users of its own);
4. measures the p99 of GET one product on our app alone, then during a storm of concurrent logins;
5. prints requests/s, p50 and p99 for both, our/baseline ratios and the targets, and writes them to
   bench/results/; stops both servers and drops the database;
6. the scale scenario, in a database of its own seeded with 1,000,000 products (`cli.py seed-products`, then
   VACUUM ANALYZE, as autovacuum would after a bulk load; seeding takes a few minutes): the p50 and p99 of single
   requests (wrk, one connection) to our app alone, for a cursor list's first page, a cursor page sorted by price
   from the middle of the catalogue, and `q` in cursor mode for a rare term (one product) and a common one (every
   product), against their targets; a numbered first page (which counts every match) beside them.

Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`), and PostgreSQL and Redis.
Environment (all optional): BENCH_POSTGRES_URL (a server URL whose user may create databases, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_URL (default redis://127.0.0.1:6379/0; only read),
BENCH_DURATION (seconds per measured run, default 6), BENCH_ROUNDS (default 2), BENCH_CONNECTIONS (default 32),
BENCH_STORM_CONNECTIONS (default 32), BENCH_PORT (our port; the baseline and our second take the next two, the
scale scenario's server the one after; default 8101), BENCH_USERS (default 2000), BENCH_READS=1 (the GET
scenarios only: no order, login or storm),
BENCH_STRICT=1 (exit 1 when a target is missed), BENCH_SCALE (`1`, the default: everything; `0`: skip the scale
scenario; `only`: the scale scenario alone), BENCH_SCALE_PRODUCTS (default 1000000).
"""

import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from auth.jwt import create_access_token
from models import User

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WRK_SCRIPT = ROOT / "bench" / "report.lua"
HOST = "127.0.0.1"  # all load stays on loopback

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DURATION = int(os.environ.get("BENCH_DURATION", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
LOGIN_CONNECTIONS = 4
LOGIN_SECONDS = 10
STORM_CONNECTIONS = int(os.environ.get("BENCH_STORM_CONNECTIONS", "32"))
PORT = int(os.environ.get("BENCH_PORT", "8101"))
STRICT = os.environ.get("BENCH_STRICT") == "1"
READS_ONLY = os.environ.get("BENCH_READS") == "1"
# Enough that each of them stays far below 120 requests a minute at our throughput over a whole run.
USERS = int(os.environ.get("BENCH_USERS", "2000"))
HIGH_LIMIT = "100000000/minute"
LOW_LIMIT = "120/minute"
SCALE = os.environ.get("BENCH_SCALE", "1")
SCALE_PRODUCTS = int(os.environ.get("BENCH_SCALE_PRODUCTS", "1000000"))
PRODUCTS = 10_000
# The run's signing key, given to every server it starts.
SECRET = secrets.token_urlsafe(48)
WARM_UP_SECONDS = 2
BCRYPT_ROUNDS = 12

ADMIN = {"username": "bench_admin", "password": "bench-admin-password"}
CUSTOMER = {"username": "bench_customer", "password": "bench-password-123"}
PRODUCT = "GET one product"
PAGE = "GET a page of 20"
MANY_LOW = "one product, users, 120/min"
# (ours >= ratio × baseline requests/s) for these scenarios; the storm may raise p99 by less than STORM_LIMIT.
RATIO_TARGETS = {PRODUCT: 0.25, PAGE: 0.20}
# At 120/minute within 10 % of 10^8/minute, each with many users (the same requests, only the limit differs).
LIMIT_TARGET = 0.9
STORM_LIMIT = 5.0
# Seeded names are "Product 000001" to "Product 1000000": the rare term is in one name, the common one in all.
RARE_TERM = "123456"
COMMON_TERM = "product"
# p50 of single requests at SCALE_PRODUCTS, in ms; scenarios without one are shown for comparison.
SCALE_TARGETS_MS = {
    "cursor: first page": 10.0,
    "cursor: by price, mid-catalogue": 10.0,
    f"cursor: q={RARE_TERM} (rare)": 20.0,
    f"cursor: q={COMMON_TERM} (common)": 20.0,
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str = ""
    authorised: bool = True
    connections: int = CONNECTIONS
    seconds: int = 0  # 0: BENCH_DURATION
    warm_up: bool = True
    ours: str = "ours"  # which of our servers
    tokens: Path | None = None  # a file of tokens to take in turn, instead of the one token
    against: str = "baseline"  # what it is compared with, run in turn with it: the baseline or one of ours
    against_tokens: Path | None = None  # the tokens the other side takes, when they are not the same


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Server:
    """One uvicorn process on 127.0.0.1, logging to bench/results/<name>.log."""

    def __init__(self, name: str, app: str, port: int, env: dict[str, str]) -> None:
        self.name, self.port = name, port
        self.base_url = f"http://{HOST}:{port}"
        self.log_path = RESULTS / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        with self.log_path.open("w") as log_file:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request_json(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, url, json=body, headers=headers, timeout=60)
    response.raise_for_status()
    return response.json()


def run_wrk(url: str, scenario: Scenario, token: str, seconds: int, connections: int | None = None) -> Measurement:
    output = start_wrk(url, scenario, token, seconds, connections).communicate()[0]
    return parse_wrk(output, url)


def start_wrk(url: str, scenario: Scenario, token: str, seconds: int, connections: int | None = None) -> Any:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_BODY": scenario.body,
        "BENCH_TOKEN": token if scenario.authorised else "",
        "BENCH_TOKENS_FILE": str(scenario.tokens or ""),
    }
    command = ["wrk", "-t1", f"-c{connections or scenario.connections}", f"-d{seconds}s", "--timeout", "60s"]
    command += ["-s", str(WRK_SCRIPT), url + scenario.path]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(output: str, url: str) -> Measurement:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            return Measurement(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                non_2xx=raw["non_2xx"],
                socket_errors=raw["socket_errors"],
            )
    raise RuntimeError(f"wrk against {url} printed no result:\n{output}")


def combine(runs: list[Measurement]) -> dict[str, float]:
    """Requests/s over all runs together; p50 and p99 as the mean of the runs' own."""
    return {
        "rps": sum(run.requests for run in runs) / (sum(run.seconds for run in runs) or 1),
        "p50_ms": statistics.fmean(run.p50_ms for run in runs),
        "p99_ms": statistics.fmean(run.p99_ms for run in runs),
        "requests": sum(run.requests for run in runs),
        "errors": sum(run.non_2xx + run.socket_errors for run in runs),
    }


async def create_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def server_version() -> str:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_average_at_start": [round(value, 2) for value in load],
        "python": platform.python_version(),
        "system": platform.platform(),
        "wrk": wrk_version.split(" Copyright")[0].strip() if wrk_version else "unknown",
    }


def run_step(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stdout}\n{result.stderr}")


def measure_scenarios(
    scenarios: list[Scenario], servers: dict[str, Server], baseline: Server, token: str
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        ours = servers[scenario.ours]
        other = baseline if scenario.against == "baseline" else servers[scenario.against]
        other_scenario = replace(scenario, tokens=scenario.against_tokens or scenario.tokens)
        seconds = scenario.seconds or DURATION
        warm_up = "warm-up, then " if scenario.warm_up else ""
        log(f"{scenario.name}: {warm_up}{ROUNDS} × ({scenario.ours}, {other.name}) × {seconds}s")
        if scenario.warm_up:
            run_wrk(ours.base_url, scenario, token, WARM_UP_SECONDS)
            run_wrk(other.base_url, other_scenario, token, WARM_UP_SECONDS)
        runs: dict[str, list[Measurement]] = {"ours": [], "baseline": []}
        for _ in range(ROUNDS):
            runs["ours"].append(run_wrk(ours.base_url, scenario, token, seconds))
            runs["baseline"].append(run_wrk(other.base_url, other_scenario, token, seconds))
        ours_result, baseline_result = combine(runs["ours"]), combine(runs["baseline"])
        results[scenario.name] = {
            "against": other.name,
            "ours": ours_result,
            "baseline": baseline_result,
            "ratio": ours_result["rps"] / baseline_result["rps"] if baseline_result["rps"] else float("nan"),
            "runs": {side: [asdict(run) for run in side_runs] for side, side_runs in runs.items()},
        }
    return results


def measure_storm(product: Scenario, login: Scenario, ours: Server, token: str) -> dict[str, Any]:
    """p99 of GET one product alone, then while a second wrk keeps STORM_CONNECTIONS logins in flight."""
    log(f"login storm: {ROUNDS} × (GET one product alone, then during {STORM_CONNECTIONS} concurrent logins)")
    alone: list[Measurement] = []
    stormy: list[Measurement] = []
    storms: list[Measurement] = []
    ramp_up = 2
    for _ in range(ROUNDS):
        alone.append(run_wrk(ours.base_url, product, token, DURATION))
        storm = start_wrk(ours.base_url, login, token, DURATION + 2 * ramp_up, STORM_CONNECTIONS)
        time.sleep(ramp_up)  # every storm connection is waiting on bcrypt before measuring starts
        stormy.append(run_wrk(ours.base_url, product, token, DURATION))
        storms.append(parse_wrk(storm.communicate()[0], ours.base_url))
    p99_alone = statistics.fmean(run.p99_ms for run in alone)
    p99_storm = statistics.fmean(run.p99_ms for run in stormy)
    return {
        "alone": combine(alone),
        "during_storm": combine(stormy),
        "storm_logins": combine(storms),
        "p99_factor": p99_storm / p99_alone,
    }


def report(results: dict[str, Any], storm: dict[str, Any] | None, context: dict[str, Any]) -> tuple[str, bool]:
    lines = [
        f"shop bench, {context['when']}: one uvicorn worker each, PostgreSQL {context['postgres']} + Redis, "
        f"{PRODUCTS} products, BCRYPT_ROUNDS={BCRYPT_ROUNDS}, rate limiting on ({HIGH_LIMIT}; {LOW_LIMIT} where "
        f"named), {USERS} users where named; the baseline: PyJWT and one SELECT a read",
        f"machine: {context['machine']['cpus']} CPUs, {context['machine']['cpu_model']}, "
        f"load average at start {context['machine']['load_average_at_start']}; {context['machine']['wrk']}",
        f"wrk -t1 -c{CONNECTIONS} (login -c{LOGIN_CONNECTIONS}), {ROUNDS} interleaved runs of {DURATION}s per side "
        f"(login {max(DURATION, LOGIN_SECONDS)}s); p50/p99 are the runs' mean",
        "",
        f"{'scenario':<30}{'ours req/s':>11}{'p50 ms':>8}{'p99 ms':>8}  {'base req/s':>11}{'p50 ms':>8}"
        f"{'p99 ms':>8}  {'ratio':>6}  target",
    ]
    met = True
    for name, result in results.items():
        ours, base = result["ours"], result["baseline"]
        target = RATIO_TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = result["ratio"] >= target
            met &= ok
            verdict = f">= {target:.2f} {'met' if ok else 'MISSED'}"
        lines.append(
            f"{name:<30}{ours['rps']:>11.1f}{ours['p50_ms']:>8.1f}{ours['p99_ms']:>8.1f}  {base['rps']:>11.1f}"
            f"{base['p50_ms']:>8.1f}{base['p99_ms']:>8.1f}  {result['ratio']:>6.2f}  {verdict}"
        )
    if MANY_LOW in results:
        pair = results[MANY_LOW]
        ok = pair["ratio"] >= LIMIT_TARGET
        met &= ok
        lines += [
            f"({MANY_LOW}: its base columns are ours at {HIGH_LIMIT} with as many other users, run in turn with it)",
            f"120/minute against 10^8/minute, many users: {pair['ratio']:.2f} "
            f"(target >= {LIMIT_TARGET:.2f}: {'met' if ok else 'MISSED'}); against {PRODUCT} (one user, one "
            f"token, measured earlier): {pair['ours']['rps'] / results[PRODUCT]['ours']['rps']:.2f}",
        ]
    errors = {name: result["ours"]["errors"] + result["baseline"]["errors"] for name, result in results.items()}
    if storm is None:
        if any(errors.values()):
            lines.append(f"ERRORS (non-2xx or socket errors): {errors}")
        return "\n".join(lines), met
    storm_ok = storm["p99_factor"] < STORM_LIMIT
    met &= storm_ok
    lines += [
        "",
        f"login storm ({STORM_CONNECTIONS} concurrent logins, {storm['storm_logins']['rps']:.1f} logins/s served): "
        f"GET one product p99 {storm['alone']['p99_ms']:.1f} ms alone, {storm['during_storm']['p99_ms']:.1f} ms "
        f"during the storm = {storm['p99_factor']:.2f}x (target < {STORM_LIMIT:.0f}x: "
        f"{'met' if storm_ok else 'MISSED'}); requests/s {storm['alone']['rps']:.1f} -> "
        f"{storm['during_storm']['rps']:.1f}",
    ]
    errors["storm"] = storm["alone"]["errors"] + storm["during_storm"]["errors"] + storm["storm_logins"]["errors"]
    if any(errors.values()):
        lines.append(f"ERRORS (non-2xx or socket errors): {errors}")
    return "\n".join(lines), met


def scale_scenarios(base_url: str, token: str) -> list[Scenario]:
    """The scale scenario's requests; the mid-catalogue cursor comes from a numbered page halfway down."""
    middle = f"{base_url}/api/v1/products?sort=price&size=20&page={SCALE_PRODUCTS // 40}"
    cursor = request_json("GET", middle, token=token)["next_cursor"]
    single = {"connections": 1}
    return [
        Scenario("page: first page (counts)", "/api/v1/products?size=20", **single),
        Scenario("cursor: first page", "/api/v1/products?size=20&cursor=", **single),
        Scenario("cursor: by price, mid-catalogue", f"/api/v1/products?sort=price&size=20&cursor={cursor}", **single),
        Scenario(f"cursor: q={RARE_TERM} (rare)", f"/api/v1/products?q={RARE_TERM}&size=20&cursor=", **single),
        Scenario(f"cursor: q={COMMON_TERM} (common)", f"/api/v1/products?q={COMMON_TERM}&size=20&cursor=", **single),
        Scenario(f"page: q={RARE_TERM} (rare)", f"/api/v1/products?q={RARE_TERM}&size=20", **single),
    ]


async def vacuum_analyze(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE products")
    finally:
        await connection.close()


def measure_scale() -> dict[str, Any]:
    """Single-request latencies of our app alone over SCALE_PRODUCTS products, in a database of their own."""
    name = f"shop_bench_scale_{uuid.uuid4().hex[:8]}"
    env = bench_env(name)
    log(f"scale: creating database {name}, migrating, seeding {SCALE_PRODUCTS} products (takes a while)")
    asyncio.run(create_database(name))
    server: Server | None = None
    try:
        run_step([sys.executable, "-m", "alembic", "upgrade", "head"], env, "alembic upgrade head")
        started = time.monotonic()
        run_step([sys.executable, "cli.py", "seed-products", "--count", str(SCALE_PRODUCTS)], env, "seeding")
        asyncio.run(vacuum_analyze(env["BASELINE_DATABASE_URL"]))
        seeded_seconds = time.monotonic() - started
        server = Server("ours-scale", "main:app", PORT + 3, env)
        server.wait_ready()
        token = request_json("POST", f"{server.base_url}/api/v1/auth/login", ADMIN)["access_token"]
        results: dict[str, Any] = {}
        for scenario in scale_scenarios(server.base_url, token):
            log(f"scale: {scenario.name}: warm-up, then {ROUNDS} × {DURATION}s, one connection")
            run_wrk(server.base_url, scenario, token, WARM_UP_SECONDS)
            runs = [run_wrk(server.base_url, scenario, token, DURATION) for _ in range(ROUNDS)]
            results[scenario.name] = {"ours": combine(runs), "runs": [asdict(run) for run in runs]}
    finally:
        if server is not None:
            server.stop()
        asyncio.run(drop_database(name))
    return {"products": SCALE_PRODUCTS, "seed_and_vacuum_seconds": seeded_seconds, "scenarios": results}


def scale_report(scale: dict[str, Any], context: dict[str, Any]) -> tuple[str, bool]:
    lines = [
        f"shop bench scale, {context['when']}: PostgreSQL {context['postgres']}, one uvicorn worker; "
        f"machine: {context['machine']['cpus']} CPUs, {context['machine']['cpu_model']}, "
        f"load average at start {context['machine']['load_average_at_start']}",
        f"{scale['products']:,} products (seeded and vacuumed in {scale['seed_and_vacuum_seconds']:.0f}s), "
        f"our app alone, single requests (wrk -c1), {ROUNDS} runs of {DURATION}s",
        "",
        f"{'scenario':<36}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}  target",
    ]
    met = True
    for name, result in scale["scenarios"].items():
        ours = result["ours"]
        target = SCALE_TARGETS_MS.get(name)
        verdict = ""
        if target is not None:
            ok = ours["p50_ms"] <= target
            met &= ok
            verdict = f"p50 <= {target:.0f} ms {'met' if ok else 'MISSED'}"
        lines.append(f"{name:<36}{ours['rps']:>8.1f}{ours['p50_ms']:>8.1f}{ours['p99_ms']:>8.1f}  {verdict}")
    errors = {name: result["ours"]["errors"] for name, result in scale["scenarios"].items() if result["ours"]["errors"]}
    if errors:
        lines.append(f"ERRORS (non-2xx or socket errors): {errors}")
    return "\n".join(lines), met


def bench_env(database: str, rate_limit: str = HIGH_LIMIT) -> dict[str, str]:
    """What every server of the run is started with, on `database`."""
    database_url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=database)
    plain_url = make_url(POSTGRES_URL).set(drivername="postgresql", database=database)
    return {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "ACCESS_TOKEN_TTL_SECONDS": "3600",  # outlives the run
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_DEFAULT": rate_limit,
        # The login scenarios sign in far more often than the auth limit allows one client address.
        "RATE_LIMIT_AUTH": HIGH_LIMIT,
        # Up to 20 pooled connections kept open, as the baseline's asyncpg pool does; the default 10 + 10 overflow
        # would close and reopen a connection per request whenever more than 10 are in flight.
        "DATABASE_POOL_SIZE": "20",
        "DATABASE_MAX_OVERFLOW": "0",
        "BCRYPT_ROUNDS": str(BCRYPT_ROUNDS),
        "LOG_LEVEL": "WARNING",
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": "bench_admin@example.com",
        "ADMIN_PASSWORD": ADMIN["password"],
        "BASELINE_DATABASE_URL": plain_url.render_as_string(hide_password=False),
    }


async def add_users(database_url: str, prefix: str, count: int) -> list[int]:
    """`count` customers straight into the database, no password anyone can use: only their tokens sign in."""
    rows = [
        {"username": f"{prefix}{n}", "email": f"{prefix}{n}@example.com", "hashed_password": "!" * 60}
        for n in range(count)
    ]
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(insert(User).returning(User.id), rows)
            return list(result.scalars())
    finally:
        await engine.dispose()


def token_file(database_url: str, prefix: str) -> Path:
    """A file of one access token a line, for USERS new users, signed with the run's key."""
    user_ids = asyncio.run(add_users(database_url, prefix, USERS))
    tokens = [
        create_access_token(user_id=user_id, role="user", secret=SECRET, algorithm="HS256", ttl_seconds=3600)[0]
        for user_id in user_ids
    ]
    path = RESULTS / f"{prefix}tokens.txt"
    path.write_text("\n".join(tokens) + "\n")
    return path


def measure_throughput() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Ours against the baseline over PRODUCTS products, then the login storm, in a database of their own."""
    name = f"shop_bench_{uuid.uuid4().hex[:8]}"
    env = bench_env(name)
    servers: list[Server] = []
    log(f"creating database {name}, migrating, seeding {PRODUCTS} products")
    asyncio.run(create_database(name))
    try:
        run_step([sys.executable, "-m", "alembic", "upgrade", "head"], env, "alembic upgrade head")
        run_step([sys.executable, "cli.py", "seed-products", "--count", str(PRODUCTS)], env, "seeding")
        log(f"adding 2 × {USERS} users and signing their tokens")
        # One set of users for each of our servers: they count against the same keys in Redis.
        high_tokens = token_file(env["DATABASE_URL"], "bench_high_")
        low_tokens = token_file(env["DATABASE_URL"], "bench_low_")
        log("starting our app (twice: at each limit) and the baseline")
        ours = Server("ours", "main:app", PORT, env)
        servers.append(ours)
        baseline = Server("baseline", "bench.baseline:app", PORT + 1, env)
        servers.append(baseline)
        ours_low = Server("ours-120", "main:app", PORT + 2, bench_env(name, LOW_LIMIT))
        servers.append(ours_low)
        for server in servers:
            server.wait_ready()

        admin_token = request_json("POST", f"{ours.base_url}/api/v1/auth/login", ADMIN)["access_token"]
        stocked = request_json(
            "POST",
            f"{ours.base_url}/api/v1/products",
            {"name": "Bench stock", "price": "9.99", "stock": 1_000_000_000},
            admin_token,
        )
        request_json(
            "POST", f"{ours.base_url}/api/v1/auth/register", {**CUSTOMER, "email": "bench_customer@example.com"}
        )
        token = request_json("POST", f"{ours.base_url}/api/v1/auth/login", CUSTOMER)["access_token"]

        one_product = f"/api/v1/products/{PRODUCTS // 2}"
        product = Scenario(PRODUCT, one_product)
        login = Scenario(
            "login",
            "/api/v1/auth/login",
            method="POST",
            body=json.dumps({"username": CUSTOMER["username"], "password": CUSTOMER["password"]}),
            authorised=False,
            connections=LOGIN_CONNECTIONS,
            # A bcrypt check at 12 rounds takes a few hundred ms: longer runs, and nothing to warm up.
            seconds=max(DURATION, LOGIN_SECONDS),
            warm_up=False,
        )
        scenarios = [
            product,
            Scenario(PAGE, "/api/v1/products?size=20&cursor="),
            Scenario(
                MANY_LOW, one_product, ours="ours-120", tokens=low_tokens, against="ours", against_tokens=high_tokens
            ),
        ]
        if not READS_ONLY:
            scenarios += [
                Scenario(
                    "POST an order",
                    "/api/v1/orders",
                    method="POST",
                    body=json.dumps({"items": [{"product_id": stocked["id"], "quantity": 1}]}),
                ),
                login,
            ]
        results = measure_scenarios(scenarios, {"ours": ours, "ours-120": ours_low}, baseline, token)
        storm = None if READS_ONLY else measure_storm(product, login, ours, token)
    finally:
        for server in servers:
            server.stop()
        asyncio.run(drop_database(name))
    return results, storm


def main() -> int:
    if shutil.which("wrk") is None:
        print(
            "make bench needs wrk, the HTTP load generator: install it with `apt-get install -y wrk` "
            "(Debian/Ubuntu) or `brew install wrk` (macOS), then run it again.",
            file=sys.stderr,
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    context = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    context["postgres"] = asyncio.run(server_version())
    document: dict[str, Any] = {"context": context}
    texts: list[str] = []
    met = True
    if SCALE != "only":
        results, storm = measure_throughput()
        text, throughput_met = report(results, storm, context)
        document.update(scenarios=results, storm=storm)
        texts.append(text)
        met &= throughput_met
    if SCALE != "0":
        document["scale"] = measure_scale()
        text, scale_met = scale_report(document["scale"], context)
        texts.append(text)
        met &= scale_met

    text = "\n\n".join(texts)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"bench-{stamp}.txt").write_text(text + "\n")
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(text)
    print(f"\n(written to {RESULTS.relative_to(ROOT)}/bench-{stamp}.txt and .json)")
    if STRICT and not met:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
