"""The HTTP API through FastAPI's test client, on a tiny SISA store.

Most tests run without the worker thread and apply batches with
``worker.run_once()``, so every step is deterministic; the tests about serving
while a batch retrains, and about the thread itself, run it for real.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import pytest
from fastapi.testclient import TestClient

from unlearnkit.errors import JournalError
from unlearnkit.service.app import create_app
from unlearnkit.service.auth import create_token
from unlearnkit.service.serving import open_engine


class Served:
    """A running app, a client, and one token per role."""

    def __init__(self, app, client):
        self.app, self.client = app, client
        self.service = app.state.service
        self.worker = self.service.worker
        self.journal = self.service.journal
        self.tokens = {}

    def token(self, role, name=None):
        name = name or role
        if name not in self.tokens:
            self.tokens[name] = create_token(self.journal, role=role)[1]
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def submit(self, ids, key, *, as_="deleter"):
        return self.client.post(
            "/v1/deletions", json={"ids": ids, "idempotency_key": key}, headers=self.token(as_)
        )

    def status(self, request_id, *, as_="admin"):
        return self.client.get(f"/v1/deletions/{request_id}", headers=self.token(as_))

    def predict(self, X, *, as_="reader"):
        return self.client.post(
            "/v1/predict", json={"features": X.tolist()}, headers=self.token(as_)
        )

    def requests_journaled(self):
        return self.journal._read("SELECT COUNT(*) FROM requests")[0][0]


@pytest.fixture
def serve(store):
    """``serve(**create_app options)`` -> a :class:`Served` (closed after the test)."""
    stack = contextlib.ExitStack()

    def make(**options):
        app = create_app(store, **({"batch_window": 0.0, "start_worker": False} | options))
        client = stack.enter_context(TestClient(app))
        stack.callback(app.state.service.close)
        return Served(app, client)

    with stack:
        yield make


@pytest.fixture(scope="module")
def test_X():
    import unlearnkit as uk

    return uk.datasets.load("digits", seed=0).test.X[:5]


# -- health, auth and roles -------------------------------------------------------------


def test_health_is_open_and_readiness_waits_for_engine_and_worker(serve, wait_for):
    manual = serve()
    assert manual.client.get("/healthz").json() == {"status": "ok", "detail": None}
    # Loaded, but no worker thread: not ready.
    assert manual.client.get("/readyz").status_code == 503
    manual.service.close()

    release = threading.Event()

    def slow_loader(store):
        release.wait(10)
        return open_engine(store)

    threaded = serve(start_worker=True, loader=slow_loader)
    assert threaded.client.get("/readyz").json()["status"] == "loading"
    assert threaded.client.get("/v1/model", headers=threaded.token("reader")).status_code == 503
    release.set()
    wait_for(lambda: threaded.client.get("/readyz").status_code == 200, what="ready")


ENDPOINTS = [
    ("post", "/v1/deletions", {"ids": [1], "idempotency_key": "k"}),
    ("get", "/v1/deletions/nope", None),
    ("post", "/v1/predict", {"features": [[0.0] * 64]}),
    ("get", "/v1/model", None),
    ("get", "/v1/receipts/verify", None),
    ("post", "/v1/tokens", {"role": "reader"}),
    ("get", "/v1/tokens", None),
    ("delete", "/v1/tokens/1", None),
]
# Which roles each endpoint admits besides admin.
ALLOWED = {
    "/v1/deletions": {"deleter"},
    "/v1/deletions/nope": {"deleter"},
    "/v1/predict": {"reader"},
    "/v1/model": {"reader"},
}


def test_no_endpoint_but_health_answers_without_a_valid_token(serve):
    served = serve()
    for method, path, body in ENDPOINTS:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
            response = served.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"


def test_each_role_reaches_only_its_endpoints(serve):
    served = serve()
    for method, path, body in ENDPOINTS:
        for role in ("reader", "deleter"):
            code = served.client.request(method, path, json=body, headers=served.token(role))
            if role in ALLOWED.get(path, set()):
                assert code.status_code not in (401, 403), (role, path)
            else:
                assert code.status_code == 403, (role, path)
                assert role in code.json()["detail"]
    assert served.client.get("/v1/tokens", headers=served.token("admin")).status_code == 200


def test_tokens_are_created_listed_and_revoked_by_admin(serve):
    served = serve()
    admin = served.token("admin")
    made = served.client.post("/v1/tokens", json={"role": "reader", "label": "ci"}, headers=admin)
    assert made.status_code == 201
    token = made.json()["token"]
    reader = {"Authorization": f"Bearer {token}"}
    assert served.client.get("/v1/model", headers=reader).status_code == 200
    listed = served.client.get("/v1/tokens", headers=admin).json()
    assert {"id": made.json()["id"], "role": "reader", "label": "ci"}.items() <= listed[-1].items()
    assert token not in str(listed)
    stored = served.journal._read("SELECT sha256 FROM tokens")
    assert all(token not in row[0] for row in stored)  # only hashes are kept
    assert served.client.delete(f"/v1/tokens/{made.json()['id']}", headers=admin).status_code == 204
    assert served.client.get("/v1/model", headers=reader).status_code == 401
    assert served.client.delete(f"/v1/tokens/{made.json()['id']}", headers=admin).status_code == 404
    bad = served.client.post("/v1/tokens", json={"role": "root"}, headers=admin)
    assert bad.status_code == 422


def test_openapi_documents_the_fields(serve):
    served = serve()
    assert served.client.get("/docs").status_code == 200
    schemas = served.client.get("/openapi.json").json()["components"]["schemas"]
    assert {"ids", "idempotency_key"} <= set(schemas["DeletionRequest"]["properties"])
    assert {"status", "received", "started", "committed", "receipt"} <= set(
        schemas["DeletionStatus"]["properties"]
    )
    assert {"model_version_before", "model_version_after", "files_deleted"} <= set(
        schemas["Receipt"]["properties"]
    )


def test_docs_can_be_switched_off(serve):
    served = serve(docs=False)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert served.client.get(path).status_code == 404
    assert served.client.get("/healthz").status_code == 200


# -- deletions --------------------------------------------------------------------------


def test_a_deletion_goes_queued_running_done_with_a_receipt(serve, train_ids, test_X):
    served = serve()
    before = served.client.get("/v1/model", headers=served.token("reader")).json()
    ids = train_ids[:3]
    accepted = served.submit(ids, "ticket-1")
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "queued"
    request_id = accepted.json()["id"]
    status = served.status(request_id, as_="deleter").json()
    assert status["status"] == "queued" and status["receipt"] is None
    assert status["started"] is None and status["received"]

    assert served.worker.run_once()
    done = served.status(request_id, as_="deleter").json()
    assert done["status"] == "done"
    assert done["received"] <= done["started"] <= done["committed"]
    receipt = done["receipt"]
    assert receipt["ids"] == sorted(ids) and receipt["request"] == request_id
    assert receipt["model_version_before"] == before["version"]
    assert receipt["model_version_after"] != before["version"]
    assert receipt["exactness"]["bit_exact"] is True and receipt["engine"] == "sisa"
    assert receipt["parts_retrained"] and receipt["steps_retrained"] >= 1
    assert receipt["files_deleted"] and all(
        f.endswith(".safetensors") for f in receipt["files_deleted"]
    )
    assert receipt["seconds_to_compliance"] > 0
    assert receipt["batch"]["requests"] == [request_id]

    after = served.client.get("/v1/model", headers=served.token("reader")).json()
    assert after["version"] == receipt["model_version_after"]
    assert after["deleted"] == 3 and after["samples"] == before["samples"] - 3
    assert after["requests"]["done"] == 1 and after["pending_deletions"] == {
        "requests": 0,
        "ids": 0,
    }
    assert after["accuracy"] is not None and "digits" in after["accuracy_on"]
    predicted = served.predict(test_X).json()
    assert predicted["model_version"] == after["version"]
    # The served module answers as the engine does.
    with open_engine(served.service.store) as engine:
        assert predicted["predictions"] == engine.predict(test_X).tolist()
        assert set(ids) <= set(engine.deleted_ids_.tolist())


def test_requests_in_one_window_are_applied_as_one_batch(serve, train_ids):
    served = serve(max_batch=2)
    first = served.submit(train_ids[:2], "a").json()["id"]
    second = served.submit(train_ids[2:4], "b").json()["id"]
    third = served.submit(train_ids[4:5], "c").json()["id"]
    assert served.worker.run_once()
    one, two = served.status(first).json(), served.status(second).json()
    assert (
        one["status"] == two["status"] == "done"
        and served.status(third).json()["status"] == "queued"
    )
    assert one["receipt"]["batch"] == two["receipt"]["batch"]
    assert one["receipt"]["batch"]["forgotten"] == 4
    assert served.worker.run_once() and not served.worker.run_once()
    assert served.worker.engine.requests_served_ == 2  # two engine calls for three requests


def test_the_same_key_returns_the_same_request_and_other_ids_conflict(serve, train_ids):
    served = serve()
    first = served.submit(train_ids[:2], "same")
    again = served.submit(train_ids[1::-1], "same")
    assert again.status_code == 200 and again.json() == first.json()
    served.worker.run_once()
    # After it is done its ids are deleted, and a retry still answers the request.
    done = served.submit(train_ids[:2], "same")
    assert done.status_code == 200 and done.json() == {"id": first.json()["id"], "status": "done"}
    conflict = served.submit(train_ids[5:7], "same")
    assert conflict.status_code == 409 and "same" in conflict.json()["detail"]
    assert served.requests_journaled() == 1


def test_bad_ids_are_refused_with_their_names_and_nothing_is_journaled(serve, train_ids):
    served = serve()
    served.submit(train_ids[:2], "first")
    served.worker.run_once()
    served.submit(train_ids[2:4], "pending")
    journaled = served.requests_journaled()
    cases = {
        "repeated": [train_ids[10], train_ids[10]],
        "unknown": [10**9, train_ids[11]],
        "already_deleted": [train_ids[0], train_ids[12]],
        "pending": [train_ids[3], train_ids[13]],
    }
    for reason, ids in cases.items():
        response = served.submit(ids, f"bad-{reason}")
        assert response.status_code == 422, reason
        detail = response.json()["detail"]
        refused = {cases[reason][0]}
        assert set(detail["refused"][reason]) == refused, reason
        assert str(cases[reason][0]) in detail["message"]
    for body in ({"ids": [], "idempotency_key": "e"}, {"ids": ["3"], "idempotency_key": "s"},
                 {"ids": [1.5], "idempotency_key": "f"}, {"ids": [2**64], "idempotency_key": "big"}, {"ids": [1]}, {"ids": [1], "idempotency_key": ""}):  # fmt: skip
        response = served.client.post("/v1/deletions", json=body, headers=served.token("deleter"))
        assert response.status_code == 422, body
    assert served.requests_journaled() == journaled


def test_size_limits_answer_413(serve, train_ids):
    served = serve(max_ids=3, max_body_bytes=2000)
    too_many = served.submit(train_ids[:4], "many")
    assert too_many.status_code == 413 and "limit is 3" in too_many.json()["detail"]
    headers = served.token("deleter") | {"content-type": "application/json"}
    big = b'{"ids": [1], "idempotency_key": "' + b"x" * 3000 + b'"}'
    assert served.client.post("/v1/deletions", content=big, headers=headers).status_code == 413
    # Streamed without a Content-Length: the bytes that arrive are counted.
    chunks = (big[i : i + 500] for i in range(0, len(big), 500))
    streamed = served.client.post("/v1/deletions", content=chunks, headers=headers)
    assert streamed.status_code == 413
    assert served.requests_journaled() == 0


def test_a_deleter_sees_only_its_own_requests(serve, train_ids):
    served = serve()
    mine = served.client.post(
        "/v1/deletions",
        json={"ids": train_ids[:1], "idempotency_key": "m"},
        headers=served.token("deleter", "alice"),
    ).json()["id"]
    served.token("deleter", "bob")
    assert served.status(mine, as_="alice").status_code == 200
    assert served.status(mine, as_="bob").status_code == 404
    assert served.status(mine, as_="admin").status_code == 200
    assert served.status("no-such-request", as_="admin").status_code == 404


def test_a_failed_batch_reports_its_error_and_releases_the_ids(serve, train_ids):
    served = serve()
    engine = served.worker.engine
    real = engine.forget

    def broken(ids, *, request_id=None):
        raise RuntimeError("disk on fire")

    engine.forget = broken
    served.worker.loader = lambda store: engine  # reopening gives the same broken engine
    failed = served.submit(train_ids[:2], "doomed").json()["id"]
    served.worker.run_once()
    status = served.status(failed).json()
    assert status["status"] == "failed" and "disk on fire" in status["error"]
    assert status["receipt"] is None
    engine.forget = real
    retry = served.submit(train_ids[:2], "second try")
    assert retry.status_code == 202
    served.worker.run_once()
    assert served.status(retry.json()["id"]).json()["status"] == "done"


# -- serving while a batch retrains -----------------------------------------------------


def test_predictions_come_from_the_old_version_until_the_commit(serve, train_ids, test_X, wait_for):
    served = serve(start_worker=True)
    wait_for(lambda: served.client.get("/readyz").status_code == 200, what="ready")
    engine = served.worker.engine
    real, entered, release = engine.forget, threading.Event(), threading.Event()

    def held(ids, *, request_id=None):
        entered.set()
        assert release.wait(20)
        return real(ids, request_id=request_id)

    engine.forget = held
    old = served.predict(test_X).json()["model_version"]
    request_id = served.submit(train_ids[:5], "slow").json()["id"]
    assert entered.wait(20)
    assert served.status(request_id).json()["status"] == "running"
    # Retraining has started (and may finish on disk) but has not committed: old version.
    assert served.predict(test_X).json()["model_version"] == old
    assert served.client.get("/v1/model", headers=served.token("reader")).json()["version"] == old
    release.set()
    done = wait_for(
        lambda: (s := served.status(request_id).json())["status"] == "done" and s, what="commit"
    )
    new = done["receipt"]["model_version_after"]
    assert new != old and served.predict(test_X).json()["model_version"] == new


# -- the receipt chain ------------------------------------------------------------------


def test_the_receipt_chain_verifies_and_names_a_tampered_receipt(serve, train_ids):
    served = serve()
    for k in range(3):
        served.submit(train_ids[k : k + 1], f"t{k}")
        served.worker.run_once()
    admin = served.token("admin")
    report = served.client.get("/v1/receipts/verify", headers=admin).json()
    assert report["ok"] and report["receipts"] == 3 and report["problems"] == []
    db = sqlite3.connect(served.journal.path)
    db.execute(
        "UPDATE receipts SET body = replace(body, '\"ids\":[', '\"ids\":[4242,') WHERE seq = 2"
    )
    db.commit()
    db.close()
    report = served.client.get("/v1/receipts/verify", headers=admin).json()
    assert not report["ok"] and report["problems"][0].startswith("receipt #2 ")


# -- restarts ---------------------------------------------------------------------------


def test_a_batch_left_running_by_a_crash_is_applied_exactly_once(store, train_ids, serve):
    from unlearnkit.service.journal import Journal, default_path

    # The crash: the journal marked a batch running and the engine committed it under the
    # batch key, then the process died before the journal's commit.
    journal = Journal(default_path(store))
    request, _ = journal.submit(key="crash", ids=train_ids[:4])
    queued_after, _ = journal.submit(key="later", ids=train_ids[4:6])
    batch = journal.claim_batch(max_batch=1, version_before="before-the-crash")
    journal.close()
    with open_engine(store) as engine:
        engine.forget(batch.ids, request_id=batch.key)
        served_before = engine.requests_served_

    served = serve()
    assert served.worker.run_once()  # the recovered batch first
    status = served.status(request.id).json()
    assert status["status"] == "done"
    receipt = status["receipt"]
    assert receipt["batch"]["already_served"] and receipt["batch"]["resumed"]
    assert receipt["model_version_before"] == "before-the-crash"
    assert served.worker.engine.requests_served_ == served_before  # not applied twice
    assert served.worker.run_once()
    assert served.status(queued_after.id).json()["status"] == "done"
    assert served.worker.engine.requests_served_ == served_before + 1


def test_a_batch_interrupted_before_the_engine_ran_resumes_after_restart(
    store, train_ids, serve, wait_for
):
    from unlearnkit.service.journal import Journal, default_path

    journal = Journal(default_path(store))
    request, _ = journal.submit(key="cut", ids=train_ids[:2])
    journal.claim_batch(max_batch=1, version_before=None)
    journal.close()
    served = serve(start_worker=True)
    done = wait_for(
        lambda: (s := served.status(request.id).json())["status"] == "done" and s, what="done"
    )
    assert not done["receipt"]["batch"]["already_served"] and done["receipt"]["batch"]["resumed"]
    assert served.worker.engine.requests_served_ == 1


def test_a_second_server_on_the_same_journal_is_refused(store, serve):
    serve()
    with pytest.raises(JournalError, match="another server"), TestClient(create_app(store)):
        pass


def test_accuracy_is_null_with_a_reason_when_the_store_names_no_data(tmp_path, fit_store):
    path = fit_store(tmp_path / "bare", shards=2, slices=1)
    app = create_app(path, start_worker=False)
    _, token = create_token(app.state.service.journal, role="reader")
    with TestClient(app) as client:
        info = client.get("/v1/model", headers={"Authorization": f"Bearer {token}"}).json()
    app.state.service.close()
    assert info["accuracy"] is None and "records no data set" in info["accuracy_on"]


def test_the_version_is_a_content_hash_stable_across_loads(serve, store):
    from unlearnkit.service.serving import model_version

    served = serve()
    version = served.client.get("/v1/model", headers=served.token("reader")).json()["version"]
    with open_engine(store) as engine:
        assert model_version(engine.as_module(), engine_name=engine.name) == version


def test_an_arcane_store_is_served_too(tmp_path, train_ids):
    import unlearnkit as uk
    from unlearnkit.exact import ARCANE

    data = uk.datasets.load("digits", seed=0)
    path = tmp_path / "arcane"
    with ARCANE(
        blocks=2, epochs=1, hidden=[8], rep_dim=4, executor="serial", store=path
    ) as arcane:  # fmt: skip
        arcane.fit(data.train)
    app = create_app(path, start_worker=False, batch_window=0.0)
    _, token = create_token(app.state.service.journal, role="admin")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as client:
            accepted = client.post(
                "/v1/deletions",
                json={"ids": train_ids[:2], "idempotency_key": "a"},
                headers=headers,
            ).json()
            assert app.state.service.worker.run_once()
            done = client.get(f"/v1/deletions/{accepted['id']}", headers=headers).json()
            assert done["status"] == "done" and done["receipt"]["engine"] == "arcane"
            predicted = client.post(
                "/v1/predict", json={"features": data.test.X[:2].tolist()}, headers=headers
            ).json()
            assert predicted["model_version"] == done["receipt"]["model_version_after"]
    finally:
        app.state.service.close()
