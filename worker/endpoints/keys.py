"""Key management for signed-in users: ``/api/v1/keys`` and ``/api/v1/keys/{keyId}[/usage]``.

Every operation is scoped to the session's user: someone else's key id answers 404 exactly like
an unknown one. Request bodies may carry only ``name`` and ``expires_in_days`` (create) or
``reason`` (revoke); tier, scopes and limits come from the account, ids from the server.

An account holds at most its tier's ``max_keys`` live keys (one more answers 400
``key_limit_reached``: the spec documents no other failure for creation), and creations and
revocations spend the account's key-operation windows (429 with ``Retry-After`` when spent).
"""

from __future__ import annotations

import json
import time
from typing import Any

from worker.access.keys import ApiKey, KeyLimitReached, KeyStoreError, key_ops_limit_id
from worker.contract.tiers import KEY_OPS_PER_DAY, TIERS
from worker.errors import ApiError, InvalidParameter, NotFound, RateLimited
from worker.http import Response
from worker.limits.usage import daily, summarise
from worker.routing import Ctx

CREATE_FIELDS = {"name", "expires_in_days"}
REVOKE_FIELDS = {"reason"}
DAY = 86_400
JSON_MEDIA = "application/json"  # parameters such as charset may follow


class InvalidBody(ApiError):
    status = 400
    code = "invalid_body"


class TooManyKeys(ApiError):
    status = 400
    code = "key_limit_reached"


def _spend_key_op(ctx: Ctx, tier_name: str) -> None:
    """Count one key creation or revocation against the account; 429 once its windows are spent."""
    tier, scale = TIERS[tier_name], ctx.app.limit_scale
    per_minute, per_day = int(tier.key_ops_per_minute * scale), int(KEY_OPS_PER_DAY * scale)
    assert ctx.user is not None  # a session route: App._admit set the user
    decision = ctx.app.limiter.hit(key_ops_limit_id(ctx.user), per_minute, per_day)
    if not decision.allowed:
        window = decision.binding
        raise RateLimited(
            "Too many API key operations. Please wait before creating or revoking more keys.",
            details={
                "limit": per_day if window == "day" else per_minute,
                "window": window,
                "scope": "key_operations",
                "tier": tier_name,
            },
            headers={"retry-after": str(max(1, decision.retry_after))},
        )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def _body(ctx: Ctx, allowed: set[str], *, required: bool) -> dict[str, Any]:
    raw = ctx.req.body
    if not raw.strip():
        if required:
            raise InvalidBody("A JSON request body is required.")
        return {}
    media = ctx.req.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != JSON_MEDIA:  # a form or text/plain is what a cross-site page can send unasked
        raise InvalidBody(
            "The request body must be JSON (Content-Type: application/json).",
            details={"content_type": ctx.req.headers.get("content-type", "")},
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBody("The request body is not valid JSON.") from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise InvalidBody("The request body nests too deeply.") from None
    if not isinstance(body, dict):
        raise InvalidBody("The request body must be a JSON object.")
    extra = sorted(set(body) - allowed)
    if extra:
        raise InvalidParameter(
            f"Unknown or read-only fields: {', '.join(extra)}",
            details={"allowed_fields": sorted(allowed)},
        )
    return body


def _status(key: ApiKey, now: float) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and now >= key.expires_at:
        return "expired"
    return "active"


def key_info(
    key: ApiKey, totals: dict[str, tuple[int, float | None]], now: float
) -> dict[str, Any]:
    tier = TIERS[key.tier]
    count, last = totals.get(key.id, (0, None))
    last_used = max(t for t in (last, key.last_used_at, 0) if t is not None) or None
    return {
        "id": key.id,
        "name": key.name or "",
        "key_preview": key.preview,
        "tier": key.tier,
        "scopes": list(key.scopes),
        "rate_limit_per_minute": tier.per_minute,
        "rate_limit_per_day": tier.per_day,
        "total_requests": count,
        "last_used_at": _iso(last_used),
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "status": _status(key, now),
        "revoked_at": _iso(key.revoked_at),
    }


def _own_key(ctx: Ctx) -> ApiKey:
    key: ApiKey | None = ctx.app.keys.get(ctx.params.get("keyId", ""), user=ctx.user)
    if key is None:
        raise NotFound("No API key with this id belongs to you.")
    return key


def list_keys(ctx: Ctx) -> Response:
    keys = ctx.app.keys.list(ctx.user)
    totals = ctx.app.usage.totals([k.id for k in keys])
    now = time.time()
    data = [key_info(k, totals, now) for k in keys]
    return _json(200, {"data": data, "meta": {"total": len(data)}})


def create_key(ctx: Ctx) -> Response:
    body = _body(ctx, CREATE_FIELDS, required=True)
    name, days = body.get("name"), body.get("expires_in_days")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(
            "name is required: a string of 1 to 100 characters", details={"parameter": "name"}
        )
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise InvalidParameter(
            "expires_in_days must be an integer from 1 to 365",
            details={"parameter": "expires_in_days"},
        )
    tier = ctx.app.accounts.tier_of(ctx.user)
    _spend_key_op(ctx, tier)
    cap = TIERS[tier].max_keys
    try:
        secret, key = ctx.app.keys.create(
            ctx.user, tier, name=name.strip(), expires_in_days=days, max_live=cap
        )
    except KeyLimitReached as exc:
        raise TooManyKeys(str(exc), details={"max_keys": cap, "tier": tier}) from None
    except KeyStoreError as exc:
        raise InvalidParameter(str(exc)) from None
    data = key_info(key, {}, time.time()) | {"key": secret}
    warning = "Store this API key securely. It will not be shown again."
    resp = _json(201, {"data": data, "meta": {"warning": warning}})
    resp.header("cache-control", "no-store")
    return resp


def get_key(ctx: Ctx) -> Response:
    key = _own_key(ctx)
    now = time.time()
    info = key_info(key, ctx.app.usage.totals([key.id]), now)
    rows = ctx.app.usage.rows(key.id, now - 30 * DAY)
    info["usage"] = {"daily": daily(rows, days=30, now=now)}
    return _json(200, {"data": info})


def revoke_key(ctx: Ctx) -> Response:
    body = _body(ctx, REVOKE_FIELDS, required=False)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidParameter(
            "reason must be a string of at most 500 characters", details={"parameter": "reason"}
        )
    _spend_key_op(ctx, ctx.app.accounts.tier_of(ctx.user))
    _own_key(ctx)
    ctx.app.keys.revoke(ctx.params["keyId"], user=ctx.user, reason=reason)
    return _json(200, {"success": True, "message": "API key revoked successfully"})


def _days(ctx: Ctx) -> int:
    raw = ctx.req.query.get("days", "7")
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= 90:
        raise InvalidParameter(
            "Invalid days: must be an integer from 1 to 90",
            details={"parameter": "days", "minimum": 1, "maximum": 90},
        )
    return days


def _window(limit: int, current: int) -> dict[str, Any]:
    return {
        "limit": limit,
        "current": current,
        "remaining": max(0, limit - current),
        "percentUsed": round(100 * current / limit, 2) if limit else 0.0,
    }


def key_usage(ctx: Ctx) -> Response:
    key = _own_key(ctx)
    days = _days(ctx)
    now = time.time()
    start = now - days * DAY
    tier = TIERS[key.tier]
    stats = summarise(ctx.app.usage.rows(key.id, start), days=days, now=now)
    peek = ctx.app.limiter.peek(key.limit_id, tier.per_minute, tier.per_day)  # the account's
    stats["rateLimits"] = {
        "perMinute": _window(tier.per_minute, tier.per_minute - peek.remaining),
        "perDay": _window(tier.per_day, tier.per_day - peek.day_remaining),
    }
    data = {
        "key": {"id": key.id, "name": key.name or "", "tier": key.tier},
        "period": {"days": days, "start": _iso(start), "end": _iso(now)},
        **stats,
    }
    return _json(200, {"data": data})
