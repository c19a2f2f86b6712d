"""The request and response bodies of the service API (pydantic), as OpenAPI documents them.

Field names are part of the API: clients and scripts rely on them (issue 15
names ``ids``, ``idempotency_key``, ``id``, ``status``, the three timestamps and
``receipt``). Timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt

Status = Literal["queued", "running", "done", "failed"]
# Sample ids are int64 in every engine and in SQLite; a larger integer is a 422, not a crash.
SampleId = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]


class DeletionRequest(BaseModel):
    ids: list[SampleId] = Field(
        min_length=1, description="sample ids to delete (each once, integers)"
    )
    idempotency_key: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x20-\x7e]+$",
        description="the caller's key (printable ASCII): the same key again returns the "
        "same request, never a second one",
    )


class DeletionAccepted(BaseModel):
    id: str
    status: Status


class Exactness(BaseModel):
    bit_exact: bool
    tolerance: float
    claim: str


class ReceiptBatch(BaseModel):
    id: int
    key: str = Field(description="the request_id the engine was called with")
    requests: list[str]
    forgotten: int
    engine_request: int
    resumed: bool
    already_served: bool
    seconds: float


class Receipt(BaseModel):
    receipt: int = Field(description="position in the hash chain (1 = first)")
    request: str
    idempotency_key: str
    ids: list[int]
    engine: str
    exactness: Exactness
    model_version_before: str | None
    model_version_after: str
    parts_retrained: dict[str, int] = Field(
        description="each retrained part (SISA shard) -> the first step it redid (1-based)"
    )
    steps_retrained: int
    sample_passes: int
    samples_retrained: int
    files_deleted: list[str]
    batch: ReceiptBatch
    received: str
    started: str | None
    committed: str
    seconds_to_compliance: float
    previous_sha256: str


class DeletionStatus(BaseModel):
    id: str
    status: Status
    idempotency_key: str
    ids: list[int]
    received: str
    started: str | None
    committed: str | None
    error: str | None
    receipt: Receipt | None = None
    receipt_sha256: str | None = None


class PredictRequest(BaseModel):
    features: list[list[float]] = Field(
        min_length=1, description="one row of flattened features per sample"
    )


class Prediction(BaseModel):
    predictions: list[int]
    probabilities: list[list[float]]
    model_version: str


class RequestCounts(BaseModel):
    queued: int
    running: int
    done: int
    failed: int


class PendingDeletions(BaseModel):
    requests: int
    ids: int


class ModelInfo(BaseModel):
    version: str
    engine: str
    exactness: Exactness
    accuracy: float | None = Field(description="percent correct on the held-out data")
    accuracy_on: str = Field(description="what the accuracy is measured on, or why it is null")
    samples: int = Field(description="training samples the served model keeps")
    deleted: int = Field(description="samples the engine has forgotten")
    requests: RequestCounts
    pending_deletions: PendingDeletions


class Health(BaseModel):
    status: str
    detail: str | None = None


class ChainReport(BaseModel):
    ok: bool
    receipts: int
    head_sha256: str
    problems: list[str]


class TokenCreate(BaseModel):
    role: Literal["admin", "deleter", "reader"]
    label: str | None = Field(default=None, max_length=200)


class TokenCreated(BaseModel):
    id: int
    role: str
    label: str | None
    token: str = Field(description="shown once; only its SHA-256 is stored")


class TokenInfo(BaseModel):
    id: int
    role: str
    label: str | None
    created: str
    revoked: str | None
