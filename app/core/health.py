"""Liveness and readiness probes for Docker, load balancers and monitoring."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.core.migrations import current_revision

router = APIRouter(tags=["health"])


class Up(BaseModel):
    status: Literal["ok"]


class Ready(Up):
    revision: str = Field(description="The database's migration revision")


class NotReady(BaseModel):
    status: Literal["unavailable"]
    reason: Literal["database unreachable", "migrations pending"]
    run: Literal["haven migrate"] | None = Field(
        default=None, description="What brings the database up to date, when that is the reason"
    )


@router.get("/healthz", operation_id="healthz", summary="The process is up", response_model=Up)
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database is reachable and migrated to the latest revision",
    responses={
        200: {"model": Ready, "description": "Ready to serve requests"},
        503: {"model": NotReady, "description": "Not ready: the reason says why"},
    },
)
def readyz(request: Request) -> JSONResponse:
    try:
        # A look, not a transaction: it must not wait behind a request that is writing.
        engine = request.app.state.engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = current_revision(connection)
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
    head = request.app.state.migration_head
    if revision != head:
        return JSONResponse(
            {"status": "unavailable", "reason": "migrations pending", "run": "haven migrate"}, 503
        )
    return JSONResponse({"status": "ok", "revision": revision})
