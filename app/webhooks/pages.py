"""The webhooks page: an administrator connects the DSL's inbox and watches deliveries."""

from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError

from app.auth.dependencies import AdminUser, PageActor
from app.core.db import DbSession
from app.core.errors import DomainError, InvalidInput
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.webhooks import payloads, service
from app.webhooks.dependencies import destination_check
from app.webhooks.models import EndpointFormat, EndpointIn, EventType

router = page_router(prefix="/admin/webhooks")

NOTICES = {
    "test": "A test event is on its way. Its delivery appears below within seconds.",
    "saved": "Saved.",
    "retry": "The delivery will be tried again now.",
}


def _page(request, session, admin, *, status_code=200, **context):
    endpoints = service.list_endpoints(session=session, school_id=admin.school_id)
    context = {
        "endpoints": [
            (e, service.deliveries(session=session, endpoint=e, limit=20)) for e in endpoints
        ],
        "events": list(EventType),
        "formats": list(EndpointFormat),
        **context,
    }
    return render(request, "webhooks/webhooks.html", context, status_code=status_code)


@router.get("")
def webhooks_page(request: Request, session: DbSession, admin: AdminUser, notice: str = ""):
    return _page(request, session, admin, notice=NOTICES.get(notice, ""))


@router.post("")
def add_endpoint(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    url: Annotated[str, Form(max_length=500)] = "",
    description: Annotated[str, Form(max_length=200)] = "",
    format: Annotated[str, Form(max_length=20)] = "standard",
    events: Annotated[list[str] | None, Form()] = None,
):
    form = {"url": url, "description": description, "format": format, "events": events or []}
    try:
        try:
            data = EndpointIn(url=url, description=description, format=format, events=events or [])
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInput(f"Please check {first['loc'][0]}: {first['msg']}.") from None
        endpoint = service.create_endpoint(
            session=session,
            school_id=admin.school_id,
            data=data,
            actor=actor,
            check_url=destination_check(request.app.state.settings),
        )
    except DomainError as exc:
        session.rollback()
        return _page(
            request, session, admin, status_code=exc.status_code, error=exc.detail, form=form
        )
    session.commit()
    return _page(
        request,
        session,
        admin,
        status_code=201,
        new_secret=endpoint.secret,
        new_secret_for=endpoint,
    )


@router.post("/{endpoint_id}/rotate")
def rotate(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, endpoint_id: int
):
    endpoint = service.get_endpoint(
        session=session, school_id=admin.school_id, endpoint_id=endpoint_id
    )
    secret = service.rotate_secret(session=session, endpoint=endpoint, actor=actor)
    session.commit()
    return _page(request, session, admin, new_secret=secret, new_secret_for=endpoint, rotated=True)


@router.post("/{endpoint_id}/test")
def send_test(request: Request, session: DbSession, admin: AdminUser, endpoint_id: int):
    endpoint = service.get_endpoint(
        session=session, school_id=admin.school_id, endpoint_id=endpoint_id
    )
    if not endpoint.is_active:
        raise InvalidInput("Turn the endpoint on before sending a test.")
    service.enqueue(
        session=session,
        school_id=admin.school_id,
        event_type=EventType.webhook_test,
        endpoint_id=endpoint.id,
        data=payloads.webhook_test(),
    )
    session.commit()
    return see_other(request, "/admin/webhooks?notice=test")


@router.post("/{endpoint_id}/active")
def set_active(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    endpoint_id: int,
    is_active: Annotated[bool, Form()] = False,
):
    endpoint = service.get_endpoint(
        session=session, school_id=admin.school_id, endpoint_id=endpoint_id
    )
    service.set_active(
        session=session,
        endpoint=endpoint,
        active=is_active,
        reason="Turned off by an administrator.",
        actor=actor,
    )
    session.commit()
    return see_other(request, "/admin/webhooks?notice=saved")


@router.post("/deliveries/{message_id}/retry")
def retry(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, message_id: int
):
    service.retry_now(
        session=session, school_id=admin.school_id, message_id=message_id, actor=actor
    )
    session.commit()
    return see_other(request, "/admin/webhooks?notice=retry")
