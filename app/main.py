"""create_app(): the FastAPI application with its routers, middleware and static files."""

import logging
import os
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

import app.models  # noqa: F401 - every table on the metadata
from app.audit.service import use_chain_key
from app.auth import admin_pages
from app.auth import pages as auth_pages
from app.auth.rate_limit import TokenRateLimiter
from app.checklists import api as checklists_api
from app.checklists import pages as checklists_pages
from app.core.api_docs import router as api_docs_router
from app.core.body_limit import BodySizeLimitMiddleware
from app.core.config import Settings, get_settings, resource_dir
from app.core.db import make_engine
from app.core.error_handlers import install_error_handlers
from app.core.health import router as health_router
from app.core.middleware import AccessLogMiddleware, SecurityHeadersMiddleware
from app.core.migrations import head_revision
from app.core.nul import refuse_nul_characters
from app.core.openapi import build_openapi
from app.dashboard import pages as dashboard_pages
from app.escalation import api as escalation_api
from app.escalation import pages as escalation_pages
from app.home import pages as home_pages
from app.incidents import api as incidents_api
from app.incidents import pages as incidents_pages
from app.patterns import pages as patterns_pages
from app.people import api as people_api
from app.people import pages as people_pages
from app.policies import api as policies_api
from app.policies import pages as policies_pages
from app.retention import pages as retention_pages
from app.webhooks import api as webhooks_api
from app.webhooks import pages as webhooks_pages
from app.worker import start_in_thread

API_DESCRIPTION = """\
Haven's JSON API for the school's MIS. Authenticate with `Authorization: Bearer hvn_...`
(tokens are made by an administrator with scopes). Errors are `application/problem+json`.
"""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    os.umask(0o077)  # what Haven writes is readable by its owner only (as `haven` sets it)
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    use_chain_key(engine, settings.secret_key)  # audit events are chained with its key
    logging.basicConfig(level=settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker = start_in_thread(engine, settings) if settings.worker == "on" else None
        yield
        if worker is not None:
            thread, stop = worker
            stop.set()
            thread.join(timeout=10)
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="Haven",
        version="1",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.openapi = lambda: build_openapi(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.migration_head = head_revision()
    app.state.rate_limiter = TokenRateLimiter(settings.api_rate_limit, settings.rate_limit_storage)

    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=(settings.max_upload_mb + 1) * 1024 * 1024,  # a file plus its form
        file_limit_bytes=settings.max_upload_mb * 1024 * 1024,
        max_data_bytes=settings.max_json_mb * 1024 * 1024,
    )
    app.add_middleware(AccessLogMiddleware)  # inside the next: it logs the request's id
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: headers on every answer
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=resource_dir("static")), name="static")

    app.include_router(health_router)
    app.include_router(api_docs_router)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(refuse_nul_characters)])
    api.include_router(people_api.router)
    api.include_router(checklists_api.router)
    api.include_router(incidents_api.router)
    api.include_router(escalation_api.router)
    api.include_router(webhooks_api.router)
    api.include_router(policies_api.router)
    app.include_router(api)
    app.include_router(auth_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(checklists_pages.router)
    app.include_router(incidents_pages.router)
    app.include_router(escalation_pages.router)
    app.include_router(patterns_pages.router)
    app.include_router(retention_pages.router)
    app.include_router(webhooks_pages.router)
    app.include_router(people_pages.router)
    app.include_router(policies_pages.router)
    app.include_router(policies_pages.public_router)
    app.include_router(dashboard_pages.router)
    app.include_router(home_pages.router)
    return app
