"""JSON responses rendered straight from a response schema.

A route that returns a model lets FastAPI dump it and validate it a second time against `response_model`; on a
small request that costs more than the database work. The schema built here already has the declared shape, so
routes hand FastAPI a finished response and keep `response_model=` for the OpenAPI document only.
"""

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.responses import Response


class ModelResponse(Response):
    media_type = "application/json"

    def __init__(self, model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(model.model_dump_json(), status_code=status_code, headers=headers)


def created(model: BaseModel, location: str) -> ModelResponse:
    """201 with the new resource's URL in `Location`."""
    return ModelResponse(model, status_code=201, headers={"Location": location})
