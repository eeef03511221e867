"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from service.errors import NotReady, problem_responses
from service.health.readiness import ReadinessProbe

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    degradedReasons: list[str] = []
    findings: list[dict[str, Any]] = []


def get_readiness_probe(request: Request) -> ReadinessProbe:
    probe: ReadinessProbe = request.app.state.readiness
    return probe


ProbeDep = Annotated[ReadinessProbe, Depends(get_readiness_probe)]


@router.get("/healthz", operation_id="getLiveness", response_model=Liveness)
async def liveness() -> Liveness:
    """The process is up. Never touches the database."""
    return Liveness()


@router.get(
    "/readyz",
    operation_id="getReadiness",
    response_model=Readiness,
    responses=problem_responses(NotReady),
)
async def readiness(probe: ProbeDep) -> Readiness:
    """Database reachable and schema complete. 200 ``degraded`` when only the strategic-config schema is
    degraded (the allocator has a defined fallback); 503 ``NOT_READY`` with the findings otherwise."""
    report = await probe.report()
    if not report.ready:
        errors = [f for f in report.findings if f.get("severity") == "error"]
        raise NotReady("The database is unreachable or its schema is not what this version needs", findings=errors)
    return Readiness(
        status=report.status,
        degradedReasons=report.degraded_reasons,
        findings=[f for f in report.findings if f.get("severity") in ("error", "warning")],
    )
