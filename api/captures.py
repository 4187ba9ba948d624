"""在线取证: ``POST /v1/captures`` starts a capture job, ``GET /v1/captures/{id}`` follows it.

A capture runs in a bounded worker pool (:mod:`ledger.capture.jobs`), created
on first use and stopped with the app. A finished job names the evidence it
deposited and carries its receipt; from there the capture is evidence like
any other (proof, certificate, package). Rights holders see only their own
jobs (another account's job answers 404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Account, permit
from api.deps import ServicesDep
from api.schemas import TEXT, problem_responses
from ledger.capture import CaptureOptions
from ledger.capture.jobs import CaptureJob, QueueFull
from ledger.capture.options import MAX_DURATION
from ledger.capture.steps import MAX_STEPS
from ledger.errors import InvalidInput
from ledger.offload import in_thread
from ledger.services import Services
from ledger.services.captures import MAX_AHEAD, MAX_BATCH, parse_start_at

__all__ = ["router", "shutdown"]

router = APIRouter(
    prefix="/v1", tags=["captures"], responses=problem_responses(400, 401, 403, 404, 422)
)
Depositor = Annotated[Account, Depends(permit("capture.create"))]
Reader = Annotated[Account, Depends(permit("capture.read"))]


class CaptureOptionsIn(BaseModel):
    """How to capture: viewport, wait condition, full page, user-agent note, timeout;
    for a recorded capture: video, steps, duration."""

    model_config = ConfigDict(extra="forbid")

    viewport_width: int = Field(default=1280, ge=320, le=3840)
    viewport_height: int = Field(default=800, ge=240, le=2160)
    wait: Literal["load", "networkidle", "delay"] = "load"
    delay_ms: int = Field(default=0, ge=0, le=60_000, description="with wait=delay")
    full_page: bool = True
    user_agent_note: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[ -~]+$"
    )
    timeout: int = Field(default=30, ge=1, le=600, description="seconds for loading the page")
    partial: bool = Field(
        default=False,
        description="when a limit is reached or a step fails, deposit what was captured "
        "(status partial)",
    )
    video: bool = Field(
        default=False,
        description="record the browser session as a video (UTC clock and URL on every frame)",
    )
    duration: int = Field(
        default=0,
        ge=0,
        le=MAX_DURATION,
        description="with video: seconds to keep recording after the page loaded and the "
        "steps ran (media muted, autoplay allowed); capped by the operator's limit",
    )
    steps: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description='scripted steps, each an object naming its action: {"action": "goto", '
        '"url": ...}, {"action": "click", "selector": ...}, {"action": "type", "selector": '
        '..., "text": ..., "secret": false}, {"action": "press", "key": "Enter"}, '
        '{"action": "scroll", "y": 800}, {"action": "wait", "seconds": 2} or '
        '{"action": "wait", "selector": ...}, {"action": "screenshot", "name": ...}; '
        'input actions at coordinates: {"action": "pointer", "type": "click", "x": ..., '
        '"y": ..., "button": "left"}, {"action": "wheel", "dy": ...}, {"action": "key", '
        '"key": "Enter"}, {"action": "text", "text": ..., "secret": false}. '
        "A secret text is never stored nor shown.",
    )
    step_timeout: int = Field(default=10, ge=1, le=60, description="seconds each step may take")


_URL = r"^[hH][tT][tT][pP][sS]?://\S+$"


class CaptureCreate(BaseModel):
    """A capture request: the page's URL (http or https), or a batch of URLs
    captured with the same options; optionally when to start; options."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=8192, pattern=_URL)
    urls: list[Annotated[str, Field(min_length=8, max_length=8192, pattern=_URL)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BATCH,
        description=f"a batch of up to {MAX_BATCH} URLs (instead of url): one job each, "
        "scheduled (status scheduled) and run as workers free up",
    )
    start_at: str | None = Field(
        default=None,
        max_length=40,
        description="RFC 3339 time with its offset (2026-03-01T09:00:00Z) to start at, in the "
        f"future and at most {MAX_AHEAD.days} days ahead; the job waits as scheduled",
        examples=["2026-03-01T09:00:00+08:00"],
    )
    title: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    options: CaptureOptionsIn = Field(default_factory=CaptureOptionsIn)

    @model_validator(mode="after")
    def _one_of(self) -> CaptureCreate:
        if (self.url is None) == (self.urls is None):
            raise ValueError("give either url or urls")
        return self


class CaptureJobPublic(BaseModel):
    """A capture job. ``status``: scheduled (waiting for ``start_at`` or a free
    worker), queued, running, complete or partial (evidence
    deposited: ``evidence_id`` and ``receipt``), or a failure status (refused,
    unreachable, timeout, tls_error, http_error, download, too_many_redirects,
    protocol_error, limit_exceeded, browser_error, step_failed, recording_error,
    storage_full, interrupted, error) with
    ``detail``, and no evidence."""

    job_id: str
    status: str
    url: str
    title: str | None = None
    options: dict[str, Any]
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    detail: str | None = None
    limit: str | None = Field(default=None, description="bytes, requests or time")
    capture_id: str | None = None
    evidence_id: str | None = None
    receipt: dict[str, Any] | None = None
    start_at: str | None = Field(default=None, description="when a scheduled job starts (UTC)")


class CaptureBatchPublic(BaseModel):
    """The jobs of a batch, one per URL, in the order given."""

    jobs: list[CaptureJobPublic]


def _public(job: CaptureJob) -> CaptureJobPublic:
    data = job.to_json()
    data.pop("owner")
    data.pop("pid")
    return CaptureJobPublic(**data)


def shutdown(app: FastAPI) -> None:
    """Stop this process's capture pool (running captures finish; queued ones
    become interrupted)."""
    services: Services | None = getattr(app.state, "services", None)
    if services is not None:
        services.interactive.shutdown()
        services.captures.shutdown()


@router.post(
    "/captures",
    status_code=202,
    response_model=CaptureJobPublic | CaptureBatchPublic,
    response_model_exclude_none=True,
    summary="Capture a web page (在线取证): starts or schedules jobs, answers 202",
    responses={
        202: {"description": "Accepted: follow the job at the Location (a batch: each job)"},
        **problem_responses(429),
    },
)
def create_capture(
    body: CaptureCreate,
    response: Response,
    account: Depositor,
    services: ServicesDep,
) -> CaptureJobPublic | CaptureBatchPublic:
    """Start capturing ``url`` in the platform's browser, or schedule it with
    ``start_at``; or schedule a batch of ``urls``. Each job ends with the
    evidence id and receipt, or with a failure status and no evidence."""
    try:
        options = CaptureOptions.from_json(body.options.model_dump())
        start_at = parse_start_at(body.start_at) if body.start_at is not None else None
    except InvalidInput as e:
        raise HTTPException(400, str(e)) from e
    if body.urls is not None:
        jobs = services.captures.create_batch(account, body.urls, options, body.title, start_at)
        return CaptureBatchPublic(jobs=[_public(j) for j in jobs])
    assert body.url is not None  # the model's validator
    try:
        job = services.captures.create(account, body.url, options, body.title, start_at)
    except QueueFull as e:
        raise HTTPException(429, str(e), headers={"Retry-After": "10"}) from e
    response.headers["Location"] = f"/v1/captures/{job.job_id}"
    return _public(job)


@router.get("/captures/{job_id}", response_model=CaptureJobPublic, response_model_exclude_none=True)
async def get_capture(job_id: str, account: Reader, services: ServicesDep) -> CaptureJobPublic:
    """A capture job's status; when it is done, the evidence id and receipt."""
    return _public(await in_thread(services.captures.get, account, job_id))
