"""The webhook-endpoints API, for IT technicians connecting the DSL's inbox."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.core.db import DbSession
from app.core.pagination import Page
from app.core.types import RowId
from app.webhooks import payloads, service
from app.webhooks.dependencies import destination_check
from app.webhooks.models import (
    DeliveryPublic,
    EndpointCreated,
    EndpointIn,
    EndpointPublic,
    EventType,
    WebhookEndpoint,
    WebhookTestQueued,
)

router = APIRouter(tags=["webhooks"])
AdminToken = Annotated[ApiToken, Depends(require_scope(Scope.webhooks_admin))]


def _public(endpoint: WebhookEndpoint) -> EndpointPublic:
    return EndpointPublic.model_validate(endpoint.model_dump())


@router.get("/webhook-endpoints", operation_id="listWebhookEndpoints", summary="Endpoints")
def list_endpoints(session: DbSession, token: AdminToken) -> Page[EndpointPublic]:
    endpoints = service.list_endpoints(session=session, school_id=token.school_id)
    return Page[EndpointPublic](data=[_public(e) for e in endpoints])


@router.post(
    "/webhook-endpoints",
    operation_id="createWebhookEndpoint",
    summary="Add an endpoint; its whsec_ secret is shown once",
    status_code=201,
)
def create_endpoint(
    request: Request, session: DbSession, token: AdminToken, body: EndpointIn
) -> EndpointCreated:
    endpoint = service.create_endpoint(
        session=session,
        school_id=token.school_id,
        data=body,
        actor=token_actor(request),
        check_url=destination_check(request.app.state.settings),
    )
    session.commit()
    return EndpointCreated.model_validate({**endpoint.model_dump(), "secret": endpoint.secret})


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    operation_id="testWebhookEndpoint",
    summary="Send a webhook.test event",
    status_code=202,
    response_model=WebhookTestQueued,
)
def send_test(
    request: Request, session: DbSession, token: AdminToken, endpoint_id: RowId
) -> JSONResponse:
    endpoint = service.get_endpoint(
        session=session, school_id=token.school_id, endpoint_id=endpoint_id
    )
    (message,) = service.enqueue(
        session=session,
        school_id=token.school_id,
        event_type=EventType.webhook_test,
        endpoint_id=endpoint.id,
        data=payloads.webhook_test(),
    )
    session.commit()
    return JSONResponse({"webhook_id": message.webhook_id, "status": "queued"}, status_code=202)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    operation_id="listWebhookDeliveries",
    summary="The latest deliveries to an endpoint",
)
def list_deliveries(
    session: DbSession, token: AdminToken, endpoint_id: RowId
) -> Page[DeliveryPublic]:
    endpoint = service.get_endpoint(
        session=session, school_id=token.school_id, endpoint_id=endpoint_id
    )
    messages = service.deliveries(session=session, endpoint=endpoint)
    return Page[DeliveryPublic](
        data=[DeliveryPublic.model_validate(m.model_dump()) for m in messages]
    )


@router.post(
    "/webhook-deliveries/{message_id}/retry",
    operation_id="retryWebhookDelivery",
    summary="Try a failed delivery again now",
)
def retry(
    request: Request, session: DbSession, token: AdminToken, message_id: RowId
) -> DeliveryPublic:
    message = service.retry_now(
        session=session,
        school_id=token.school_id,
        message_id=message_id,
        actor=token_actor(request),
    )
    session.commit()
    return DeliveryPublic.model_validate(message.model_dump())
