"""GET /v1/usage: what the caller's tenant keeps and sends, against its quotas."""

from __future__ import annotations

from fastapi import APIRouter

from filegate.blocking import run_blocking
from filegate.services import quotas
from filegate.web.deps import LimiterDep, Member, RuntimeDep
from filegate.web.schemas import QuotaOut, UsageOut

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", response_model=UsageOut, summary="The tenant's usage and quotas")
async def get_usage(runtime: RuntimeDep, limiter: LimiterDep, principal: Member) -> UsageOut:
    """Any key of the tenant may ask, whatever its scopes."""
    now = await run_blocking(quotas.usage, runtime.db, runtime.settings, principal.tenant)
    limits = runtime.settings.quotas
    remaining = await run_blocking(limiter.uploads_remaining, principal.tenant)
    return UsageOut(
        tenant=principal.tenant,
        stored_bytes=_quota(now.stored_bytes, int(limits.stored_bytes)),
        stored_files=_quota(now.stored_files, limits.stored_files),
        in_flight_bytes=_quota(now.in_flight_bytes, int(limits.in_flight_bytes)),
        in_flight_uploads=_quota(now.in_flight_uploads, limits.in_flight_uploads),
        uploads_per_minute=limits.uploads_per_minute or None,
        uploads_remaining=remaining,
        requests_per_second=limits.requests_per_second or None,
        rate_limits_shared=limiter.shared,
    )


def _quota(used: int, limit: int) -> QuotaOut:
    return QuotaOut(used=used, limit=limit or None)
