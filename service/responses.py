"""JSON responses built from the declared response models.

Routes declare ``response_model`` (the OpenAPI document) and return :func:`model_response`: the body is
the model's own serialisation. Returning the model to FastAPI instead would dump it to a dict, validate that
dict against the same model and serialise it again — measurable on the internal read path and on a
400-booking decision trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


def model_response(
    model: BaseModel, *, headers: Mapping[str, str] | None = None, exclude_unset: bool = False, status_code: int = 200
) -> Response:
    return Response(
        content=model.model_dump_json(exclude_unset=exclude_unset),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )
