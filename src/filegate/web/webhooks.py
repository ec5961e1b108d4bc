"""Webhook endpoints of the caller's tenant: add, list, remove (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from filegate.blocking import run_blocking
from filegate.domain import is_valid_id
from filegate.errors import ErrorCode, FilegateError
from filegate.services import webhooks
from filegate.web.deps import Admin, RuntimeDep
from filegate.web.schemas import WebhookCreated, WebhookIn, WebhookList, WebhookOut

router = APIRouter(tags=["webhooks"])


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Add a webhook endpoint (the signing secret is shown only here)",
)
async def add_webhook(body: WebhookIn, runtime: RuntimeDep, principal: Admin) -> WebhookCreated:
    # Resolving the target's name blocks, so it runs in the thread pool with the insert.
    record, secret = await run_blocking(
        lambda: webhooks.create_endpoint(
            runtime.db,
            tenant=principal.tenant,
            url=body.url,
            events=body.events,
            allow_internal=runtime.settings.webhook_allow_internal,
        )
    )
    return WebhookCreated(**WebhookOut.of(record).model_dump(), secret=secret)


@router.get("/v1/webhooks", response_model=WebhookList, summary="List webhook endpoints")
async def list_webhooks(runtime: RuntimeDep, principal: Admin) -> WebhookList:
    records = await run_blocking(webhooks.list_endpoints, runtime.db, principal.tenant)
    return WebhookList(items=[WebhookOut.of(r) for r in records])


@router.delete("/v1/webhooks/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint")
async def remove_webhook(endpoint_id: str, runtime: RuntimeDep, principal: Admin) -> Response:
    removed = is_valid_id(endpoint_id) and await run_blocking(
        webhooks.remove_endpoint, runtime.db, endpoint_id, principal.tenant
    )
    if not removed:
        # Another tenant's endpoint is reported exactly like a missing one.
        raise FilegateError(ErrorCode.WEBHOOK_NOT_FOUND, "No such webhook endpoint.")
    return Response(status_code=204)
