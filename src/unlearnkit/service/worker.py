"""The background worker: batches queued deletion requests and applies them to the engine.

One batch is one engine call. The worker waits for the first queued request,
then ``batch_window`` seconds more (or until ``max_batch`` requests wait), so
that SISA and ARCANE retrain a shard once for many requests. Then:

1. one journal transaction marks the requests running as a batch with a key
   (``service-<journal id>-batch-<n>``) and the current model version;
2. ``engine.forget(union of ids, request_id=key)``: predictions keep being answered
   from the old :class:`~unlearnkit.service.serving.Snapshot` meanwhile;
3. the new version is loaded, then, under the serving lock, one journal transaction
   marks the requests done, their ids deleted and writes their receipts, and the
   served snapshot is swapped. A prediction that starts after the commit is answered
   by the new version.

A crash anywhere is safe. Before step 1 nothing was promised but the queued rows;
between 1 and 3 the batch is ``running`` in the journal, and the next start applies it
again under the same key: the engine resumes an interrupted request, or returns
``already_served`` for one it committed, so no request is applied twice and none is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from unlearnkit.errors import StoreBusyError
from unlearnkit.service import serving
from unlearnkit.service.journal import Batch, Journal

log = logging.getLogger("unlearnkit.service")


def _warm_up_optimiser() -> None:
    """One throwaway optimiser step, before the service reports ready.

    torch's first optimiser step in a process imports machinery it needs once (about
    1.5 s on 2 cores); paid here, it no longer delays the first deletion's compliance.
    """
    import torch

    weight = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    weight.sum().backward()
    optimiser.step()


class Worker:
    """Owns the engine: loads it, answers with snapshots, applies batches.

    ``loader(store)`` opens the engine (tests pass one that wraps it);
    ``start()`` runs :meth:`run_once` in a daemon thread until :meth:`stop`.
    """

    def __init__(
        self,
        *,
        store,
        journal: Journal,
        batch_window: float = 0.5,
        max_batch: int = 64,
        executor: str = "serial",
        loader: Callable | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        self.batch_window = batch_window
        self.max_batch = max_batch
        self.executor = executor
        self.loader = loader or (lambda store: serving.open_engine(store, executor=executor))
        self.engine = None
        self.known_ids = None
        self.test = None
        self.test_note = "the model is not loaded yet"
        self.error: str | None = None
        self._snapshot: serving.Snapshot | None = None
        # Held while the journal commits a batch and the snapshot is swapped, so that a
        # reader sees either the old version with the old status, or both new.
        self.serve_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recovering: list[int] = []
        self._attempts: dict[int, int] = {}

    # -- state ---------------------------------------------------------------------------
    @property
    def snapshot(self) -> serving.Snapshot | None:
        with self.serve_lock:
            return self._snapshot

    def committed(self, read: Callable[[], object]) -> tuple[serving.Snapshot | None, object]:
        """The served snapshot and ``read()`` taken together, between two commits."""
        with self.serve_lock:
            return self._snapshot, read()

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def engine_deleted(self) -> np.ndarray:
        engine = self.engine
        return np.asarray(engine.deleted_ids_, dtype=np.int64) if engine is not None else None

    def open(self) -> None:
        """Load the engine and its current version; queue batches a crash left running."""
        self.engine = self.loader(self.store)
        _warm_up_optimiser()
        self.known_ids = serving.fitted_ids(self.engine)
        self.test, self.test_note = serving.held_out(self.engine)
        with self.serve_lock:
            self._snapshot = serving.snapshot(self.engine)
        self._recovering = [b.id for b in self.journal.running_batches()]
        if self._recovering:
            log.info(
                "resuming %d batch(es) left running: %s", len(self._recovering), self._recovering
            )

    def notify(self) -> None:
        """A request was queued: wake the worker."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------
    def start(self) -> None:
        """Open the engine (if not yet) and serve batches in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="unlearnkit-worker", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop after the current batch; a batch still retraining resumes at the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            if not self.loaded:
                self.open()
        except Exception as exc:  # the server stays up to say why on /readyz
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("cannot load the store %s", self.store)
            return
        while not self._stop.is_set():
            try:
                self.run_once(wait=0.5)
            except Exception:  # a journal or engine fault: keep serving, retry the batch later
                log.exception("the worker failed; retrying in 1 s")
                self._stop.wait(1.0)

    def run_once(self, *, wait: float = 0.0) -> bool:
        """Apply one batch (a recovered one first); False if nothing was queued within ``wait``."""
        if self._recovering:
            batch = self.journal.batch(self._recovering[0])
            self._apply(batch, resumed=True)
            self._recovering.pop(0)
            return True
        first = self.journal.oldest_queued()
        if first is None:
            self._wake.wait(wait)
            self._wake.clear()
            first = self.journal.oldest_queued()
            if first is None:
                return False
        # The window counts from the oldest request's arrival: a request waits at most
        # batch_window for company, however long the previous batch took.
        deadline = first.received + self.batch_window
        while (
            not self._stop.is_set()
            and time.time() < deadline
            and self.journal.count("queued") < self.max_batch
        ):
            self._wake.wait(min(0.05, max(0.0, deadline - time.time())))
            self._wake.clear()
        batch = self.journal.claim_batch(
            max_batch=self.max_batch, version_before=self.snapshot.version
        )
        if batch is None:
            return False
        self._apply(batch, resumed=False)
        return True

    # -- one batch -----------------------------------------------------------------------
    def _apply(self, batch: Batch, *, resumed: bool) -> None:
        ids = batch.ids
        log.info("batch %s: %d request(s), %d id(s)", batch.key, len(batch.requests), len(ids))
        try:
            result = self.engine.forget(ids, request_id=batch.key)
        except StoreBusyError:
            # Another process writes the store (a CLI forget): the batch stays running and
            # is tried again, under the same key, once the store is free.
            if batch.id not in self._recovering:
                self._recovering.insert(0, batch.id)
            raise
        except Exception as exc:
            result = self._after_failure(batch, exc)
            if result is None:
                return
        try:
            new = serving.snapshot(self.engine)
            outcome = self._outcome(batch, result, new, resumed=resumed)
            with self.serve_lock:
                self.journal.complete_batch(batch, outcome=outcome, committed=time.time())
                self._snapshot = new
        except Exception:
            # The engine committed but the journal did not: apply the batch again (the
            # engine answers already_served) rather than leave it running until a restart.
            if batch.id not in self._recovering:
                self._recovering.insert(0, batch.id)
            raise
        log.info("batch %s committed: model %s", batch.key, new.version[:12])

    def _after_failure(self, batch: Batch, exc: Exception):
        """The result of a batch whose engine call raised, or ``None`` once it is failed.

        The engine may have committed before failing (e.g. while deleting superseded
        files): reopen it, and if it holds the batch's ids deleted, ask once more under
        the batch's key, which answers ``already_served`` for a committed request.
        """
        log.warning("batch %s failed: %s: %s", batch.key, type(exc).__name__, exc)
        try:
            old, self.engine = self.engine, self.loader(self.store)
            if old is not self.engine:
                old.close()
            if np.isin(batch.ids, self.engine.deleted_ids_).all():
                return self.engine.forget(batch.ids, request_id=batch.key)
            pending = getattr(self.engine, "pending_request_", None)
        except Exception as again:  # the original error is the one to report
            log.warning("batch %s: the engine cannot be reopened (%s)", batch.key, again)
            pending = None
        attempts = self._attempts[batch.id] = self._attempts.get(batch.id, 0) + 1
        if pending is not None and pending.get("request_id") == batch.key and attempts < 3:
            # Interrupted inside the engine (a worker process died): the engine holds the
            # batch as its pending request and would refuse any other, so finish this one.
            if batch.id not in self._recovering:
                self._recovering.insert(0, batch.id)
            raise exc
        self.journal.fail_batch(batch, error=f"{type(exc).__name__}: {exc}")
        return None

    def _outcome(self, batch: Batch, result, new: serving.Snapshot, *, resumed: bool) -> dict:
        """What a batch did, in the fields every one of its receipts carries."""
        engine = self.engine
        capabilities = engine.capabilities()
        return {
            "engine": engine.name,
            "exactness": {
                "bit_exact": capabilities["bit_exact"],
                "tolerance": capabilities["tolerance"],
                "claim": (
                    "bit-identical to retraining without the ids"
                    if capabilities["bit_exact"]
                    else f"equal to retraining without the ids within {capabilities['tolerance']} relative"
                ),
            },
            "model_version_before": batch.version_before,
            "model_version_after": new.version,
            "parts_retrained": {str(p): k for p, k in result.parts.items()},
            "steps_retrained": result.steps_retrained,
            "sample_passes": result.sample_passes,
            "samples_retrained": result.samples_retrained,
            "files_deleted": list(result.files_deleted),
            "batch": {
                "forgotten": result.forgotten,
                "engine_request": result.request,
                "resumed": bool(resumed or result.resumed),
                "already_served": result.already_served,
                "seconds": round(result.seconds, 6),
            },
        }


__all__ = ["Worker"]
