"""The HTTP API of the deletion-request service (FastAPI): ``create_app(store) -> FastAPI``.

Endpoints (the paths and named fields are fixed by issue 15; OpenAPI at ``/docs``):

==========================  ========  ==========================================================
``POST /v1/deletions``      deleter   submit ``{"ids", "idempotency_key"}``: 202 once journaled;
                                      the same key again 200 (same id); same key, other ids 409;
                                      unknown / repeated / deleted / pending ids 422; too big 413
``GET /v1/deletions/{id}``  deleter   status, timestamps and, when done, the receipt (a deleter
                                      sees its own requests, 404 for others; admin sees all)
``POST /v1/predict``        reader    predictions from the last committed version
``GET /v1/model``           reader    version, held-out accuracy, counts of samples and requests
``GET /v1/receipts/verify`` admin     recompute the receipt hash chain
``POST /v1/tokens``         admin     create a token (shown once); ``GET`` lists, ``DELETE`` revokes
``GET /healthz``            open      the process answers
``GET /readyz``             open      200 once the engine is loaded and the worker runs, else 503
==========================  ========  ==========================================================

Admin may call everything. No token: 401; a token of the wrong role: 403. The
server writes only its journal (``<store>/service.sqlite3`` or ``db``, with a
``.lock`` beside it that keeps a second server off the same journal) and, through
the engine, the store.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse

from unlearnkit.errors import IdempotencyConflictError, IdsRefusedError, JournalError
from unlearnkit.service import schemas
from unlearnkit.service.auth import Principal, create_token, require
from unlearnkit.service.journal import Journal, default_path, iso, refused_message
from unlearnkit.service.worker import Worker

DEFAULT_MAX_IDS = 10_000
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: 10k ids or a few hundred feature rows


class BodyLimit:
    """ASGI middleware refusing bodies over ``max_bytes`` with 413.

    It checks the declared ``Content-Length`` first and then counts what actually
    arrives (a chunked upload declares nothing), buffering at most ``max_bytes``
    before the app sees the body.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        response = JSONResponse(
            status_code=413,
            content={
                "detail": f"the request body is over {self.max_bytes} bytes; send fewer ids or "
                "feature rows per request"
            },
        )
        await response({"type": "http"}, None, send)


class Service:
    """What the endpoints share: the journal, the worker and the limits."""

    def __init__(self, *, store, db, batch_window, max_batch, max_ids, executor, loader=None):
        self.store = Path(store)
        self.journal = Journal(db if db is not None else default_path(store))
        self.max_ids = max_ids
        self.worker = Worker(
            store=self.store,
            journal=self.journal,
            batch_window=batch_window,
            max_batch=max_batch,
            executor=executor,
            loader=loader,
        )
        self._lock_file = None

    def acquire(self) -> None:
        """Hold the journal for this server; a second server on it is refused at once."""
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: one server per journal assumed
            return
        path = self.journal.path.with_name(self.journal.path.name + ".lock")
        handle = open(path, "a")  # noqa: SIM115 (held open for the server's life)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise JournalError(
                f"another server is using the journal {self.journal.path}; stop it first, or "
                "give this one another --db"
            ) from None
        self._lock_file = handle

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def close(self) -> None:
        """Stop the worker, release the journal and close the engine (tests call it)."""
        self.worker.stop()
        self.release()
        if self.worker.engine is not None:
            self.worker.engine.close()
        self.journal.close()

    def loaded_snapshot(self):
        snapshot = self.worker.snapshot
        if snapshot is None:
            raise HTTPException(
                status_code=503, detail=self.worker.error or "the model is still loading"
            )
        return snapshot

    def check_ids(self, ids: list[int]) -> None:
        """Refuse repeated ids, ids never fitted and ids the engine already forgot."""
        arr = np.asarray(ids, dtype=np.int64)  # sorted by the journal
        repeated = np.unique(arr[1:][arr[1:] == arr[:-1]])
        unknown = arr[~_contains(self.worker.known_ids, arr)]
        gone = np.unique(arr[_contains(self.worker.engine_deleted, arr)])
        refused = {
            "repeated": repeated.tolist(),
            "unknown": unknown.tolist(),
            "already_deleted": gone.tolist(),
        }
        refused = {k: v for k, v in refused.items() if v}
        if refused:
            raise IdsRefusedError(refused_message(refused), refused=refused)


def _contains(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` are in ``sorted_reference``: a binary search, no re-sort per request."""
    if len(sorted_reference) == 0:
        return np.zeros(len(values), dtype=bool)
    where = np.searchsorted(sorted_reference, values).clip(max=len(sorted_reference) - 1)
    return sorted_reference[where] == values


def _status(service: Service, request) -> schemas.DeletionStatus:
    found = service.journal.receipt(request.id) if request.status == "done" else None
    return schemas.DeletionStatus(
        id=request.id,
        status=request.status,
        idempotency_key=request.idempotency_key,
        ids=list(request.ids),
        received=iso(request.received),
        started=iso(request.started),
        committed=iso(request.committed),
        error=request.error,
        receipt=found[0] if found else None,
        receipt_sha256=found[1] if found else None,
    )


def create_app(
    store: str | os.PathLike,
    *,
    db: str | os.PathLike | None = None,
    batch_window: float = 0.5,
    max_batch: int = 64,
    max_ids: int = DEFAULT_MAX_IDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    start_worker: bool = True,
    executor: str = "serial",
    loader=None,
    docs: bool = True,
) -> FastAPI:
    """The service app on the engine store ``store`` (journal at ``db``, default in the store).

    The engine loads when the app starts (its lifespan): in the worker thread with
    ``start_worker`` (``/readyz`` answers 503 until it has loaded), or before the app
    answers without it; then ``app.state.service.worker.run_once()`` applies batches
    by hand (tests do). ``loader(store)`` replaces how the engine is opened.

    ``docs`` serves the OpenAPI schema and its pages (``/docs``, ``/redoc``,
    ``/openapi.json``) without a token: they describe the API and hold no data
    (choice; ``docs=False`` removes them, e.g. on a public address).
    """
    service = Service(
        store=store, db=db, batch_window=batch_window, max_batch=max_batch,
        max_ids=max_ids, executor=executor, loader=loader,
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.acquire()
        try:
            if start_worker:
                service.worker.start()
            else:
                service.worker.open()
            yield
        finally:
            service.worker.stop()
            service.release()

    app = FastAPI(
        title="unlearnkit deletion-request service",
        summary="Accept, journal, batch and apply deletion requests on a served exact model.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    deleter = Depends(require("deleter"))
    reader = Depends(require("reader"))
    admin = Depends(require("admin"))

    @app.get("/healthz", response_model=schemas.Health, tags=["health"])
    def healthz():
        """The process answers (no token needed)."""
        return schemas.Health(status="ok")

    @app.get(
        "/readyz",
        response_model=schemas.Health,
        responses={503: {"model": schemas.Health}},
        tags=["health"],
    )
    def readyz():
        """200 once the engine is loaded and the worker runs (no token needed)."""
        worker = service.worker
        if worker.error:
            return JSONResponse(
                status_code=503, content={"status": "error", "detail": worker.error}
            )
        if not worker.loaded:
            return JSONResponse(status_code=503, content={"status": "loading", "detail": None})
        if not worker.running:
            return JSONResponse(
                status_code=503,
                content={"status": "stopped", "detail": "the worker is not running"},
            )
        return schemas.Health(status="ready")

    @app.post(
        "/v1/deletions",
        status_code=202,
        response_model=schemas.DeletionAccepted,
        responses={
            200: {"model": schemas.DeletionAccepted, "description": "the same key again"},
            409: {"description": "the idempotency key was used for other ids"},
            413: {"description": "more ids than the server's limit"},
            422: {"description": "unknown, repeated, already deleted or pending ids"},
        },
        tags=["deletions"],
    )
    def submit(body: schemas.DeletionRequest, response: Response, who: Principal = deleter):
        """Journal a deletion request; answered only once it is committed to disk."""
        service.loaded_snapshot()  # the ids are checked against the loaded engine
        if len(body.ids) > service.max_ids:
            raise HTTPException(
                status_code=413,
                detail=f"{len(body.ids)} ids in one request; the limit is {service.max_ids}: "
                "split the request",
            )
        try:
            request, created = service.journal.submit(
                key=body.idempotency_key, ids=body.ids, token=who.token_id, check=service.check_ids
            )
        except IdempotencyConflictError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except IdsRefusedError as exc:
            raise HTTPException(
                status_code=422, detail={"message": str(exc), "refused": exc.refused}
            ) from None
        if created:
            service.worker.notify()
        else:
            response.status_code = 200
        return schemas.DeletionAccepted(id=request.id, status=request.status)

    @app.get(
        "/v1/deletions/{request_id}",
        response_model=schemas.DeletionStatus,
        responses={404: {"description": "no such request (or not yours)"}},
        tags=["deletions"],
    )
    def deletion_status(request_id: str, who: Principal = deleter):
        """A request's status, times and, once done, its receipt."""
        request = service.journal.get(request_id)
        if request is None or (who.role != "admin" and request.token != who.token_id):
            raise HTTPException(status_code=404, detail=f"no deletion request {request_id!r}")
        return _status(service, request)

    @app.post("/v1/predict", response_model=schemas.Prediction, tags=["model"])
    def predict(body: schemas.PredictRequest, who: Principal = reader):
        """Class predictions and probabilities from the last committed model version."""
        snapshot = service.loaded_snapshot()
        widths = {len(row) for row in body.features}
        expected = int(np.prod(snapshot.input_shape)) if snapshot.input_shape else None
        if len(widths) != 1 or (expected is not None and widths != {expected}):
            raise HTTPException(
                status_code=422,
                detail=f"every feature row must have {expected or 'the same number of'} values; "
                f"got rows of {sorted(widths)}",
            )
        probabilities = snapshot.predict_proba(body.features)
        return schemas.Prediction(
            predictions=probabilities.argmax(1).tolist(),
            probabilities=probabilities.tolist(),
            model_version=snapshot.version,
        )

    @app.get("/v1/model", response_model=schemas.ModelInfo, tags=["model"])
    def model(who: Principal = reader):
        """The served version, its held-out accuracy, and counts of samples and requests."""
        worker = service.worker
        # The version and the counts of one commit, never a version beside older counts.
        snapshot, counts = worker.committed(service.journal.counts)
        if snapshot is None:
            service.loaded_snapshot()
        engine = worker.engine
        accuracy = snapshot.score(worker.test)
        requests = counts["requests"]
        capabilities = engine.capabilities()
        return schemas.ModelInfo(
            version=snapshot.version,
            engine=engine.name,
            exactness=schemas.Exactness(
                bit_exact=capabilities["bit_exact"],
                tolerance=capabilities["tolerance"],
                claim="bit-identical to retraining without the deleted ids"
                if capabilities["bit_exact"]
                else f"within {capabilities['tolerance']} relative of retraining",
            ),
            accuracy=accuracy,
            accuracy_on=worker.test_note,
            samples=snapshot.samples,
            deleted=snapshot.deleted,
            requests=schemas.RequestCounts(**requests),
            pending_deletions=schemas.PendingDeletions(
                requests=requests["queued"] + requests["running"], ids=counts["pending_ids"]
            ),
        )

    @app.get("/v1/receipts/verify", response_model=schemas.ChainReport, tags=["audit"])
    def verify_receipts(who: Principal = admin):
        """Recompute the receipt hash chain end to end; ``problems`` names the first break."""
        problems = service.journal.verify_chain()
        count, head = service.journal.head()
        return schemas.ChainReport(
            ok=not problems, receipts=count, head_sha256=head, problems=problems
        )

    @app.post("/v1/tokens", status_code=201, response_model=schemas.TokenCreated, tags=["tokens"])
    def new_token(body: schemas.TokenCreate, who: Principal = admin):
        """Create a token; the response is the only time it is shown."""
        token_id, token = create_token(service.journal, role=body.role, label=body.label)
        return schemas.TokenCreated(id=token_id, role=body.role, label=body.label, token=token)

    @app.get("/v1/tokens", response_model=list[schemas.TokenInfo], tags=["tokens"])
    def list_tokens(who: Principal = admin):
        """Every token's id, role, label and times (never the token)."""
        return [
            schemas.TokenInfo(
                id=t.id, role=t.role, label=t.label, created=iso(t.created), revoked=iso(t.revoked)
            )
            for t in service.journal.tokens()
        ]

    @app.delete("/v1/tokens/{token_id}", status_code=204, tags=["tokens"])
    def revoke_token(token_id: int, who: Principal = admin):
        """Revoke a token: from now on it is answered 401."""
        if not service.journal.revoke_token(token_id):
            raise HTTPException(status_code=404, detail=f"no active token {token_id}")
        return Response(status_code=204)

    return app


__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_IDS", "Service", "create_app"]
