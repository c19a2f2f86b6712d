"""The deletion-request service: accept, journal, batch and apply "forget me" requests.

``unlearnkit serve --store DIR`` serves any persistent exact engine's store (SISA,
ARCANE) over HTTP:

- :mod:`~unlearnkit.service.journal`: the SQLite journal (requests, batches,
  receipts chained by hash, hashed tokens);
- :mod:`~unlearnkit.service.auth`: bearer tokens and roles;
- :mod:`~unlearnkit.service.serving`: opening the engine, the served snapshot and
  its content-hash version;
- :mod:`~unlearnkit.service.worker`: the background batcher;
- :mod:`~unlearnkit.service.app`: the FastAPI app (``create_app``).

Importing this package imports FastAPI only through :func:`create_app`.
"""

from __future__ import annotations


def create_app(store, **options):
    """See :func:`unlearnkit.service.app.create_app`."""
    from unlearnkit.service.app import create_app as make

    return make(store, **options)


__all__ = ["create_app"]
