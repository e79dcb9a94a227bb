"""Infrastructure endpoints at the root: liveness, readiness and Prometheus metrics."""

import logging

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from api.errors import problem
from api.openapi import problems
from api.routing import api_router
from api.schemas import HealthOut, ReadinessOut
from observability.metrics import CONTENT_TYPE, render_metrics

router = api_router(tags=["infrastructure"])
logger = logging.getLogger(__name__)


@router.get("/health", response_model=HealthOut, summary="Liveness: 200 while the process runs")
async def health() -> HealthOut:
    return HealthOut()


@router.get(
    "/ready",
    response_model=ReadinessOut,
    responses=problems(503),
    summary="Readiness: 200 when the database (and Redis, if configured) answer, else 503",
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        await state.database.ping()
        checks["database"] = "ok"
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        checks["database"] = "unavailable"
    if state.redis is not None:
        try:
            await state.redis.ping()
            checks["redis"] = "ok"
        except Exception:
            logger.warning("readiness: redis unreachable", exc_info=True)
            checks["redis"] = "unavailable"
    if all(result == "ok" for result in checks.values()):
        return JSONResponse(ReadinessOut(status="ok", checks=checks).model_dump())  # type: ignore[arg-type]
    failed = ", ".join(name for name, result in checks.items() if result != "ok")
    return problem(503, f"Not ready: {failed} unreachable", code="not_ready", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics() -> Response:
    return Response(render_metrics(), media_type=CONTENT_TYPE)
