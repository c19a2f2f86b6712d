"""Bearer tokens and roles of the deletion-request service.

A token is 32 random bytes (``secrets.token_urlsafe``), shown once when created;
the journal stores only its SHA-256, so a copy of the journal lets nobody in.
A plain (unsalted) hash is enough because the token itself has 256 bits of
entropy: there is nothing to guess a dictionary for.

Roles:

- ``reader``: predict and read the model's status;
- ``deleter``: submit deletion requests and read the status of its own;
- ``admin``: everything, including token management and the chain check.

A request without a token, or with an unknown or revoked one, is answered 401; a
token whose role may not do what is asked, 403.

>>> token = new_token()
>>> len(token) >= 43, token_sha256(token) == token_sha256(token)
(True, True)
>>> allowed("admin", ("reader",)), allowed("reader", ("deleter",))
(True, False)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from unlearnkit.errors import AuthError, ConfigError

ROLES = ("admin", "deleter", "reader")


@dataclass(frozen=True)
class Principal:
    """Who made an HTTP request: the token's id in the journal and its role."""

    token_id: int
    role: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def allowed(role: str, roles: tuple[str, ...]) -> bool:
    """Whether ``role`` may do what needs one of ``roles`` (admin may do everything)."""
    return role == "admin" or role in roles


def create_token(journal, *, role: str, label: str | None = None) -> tuple[int, str]:
    """Make a token of ``role``; returns ``(token id, token)``. Only the hash is kept."""
    check_role(role)
    token = new_token()
    record = journal.add_token(sha256=token_sha256(token), role=role, label=label)
    return record.id, token


def authenticate(journal, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer TOKEN`` header, or :class:`AuthError`."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "missing bearer token; send 'Authorization: Bearer TOKEN' (create one with "
            "'unlearnkit serve token create --store DIR --role ROLE')"
        )
    record = journal.token_by_hash(token_sha256(token))
    if record is None or record.revoked is not None:
        raise AuthError("unknown or revoked token; ask an admin for a valid one")
    return Principal(token_id=record.id, role=record.role)


def require(*roles: str) -> Callable:
    """A FastAPI dependency admitting tokens of ``roles`` (and admin); 401 / 403 otherwise.

    The journal is read from ``request.app.state.service`` so one dependency serves
    every app :func:`unlearnkit.service.app.create_app` makes.
    """
    for role in roles:
        check_role(role)

    def dependency(request: Request) -> Principal:
        journal = request.app.state.service.journal
        try:
            principal = authenticate(journal, request.headers.get("authorization"))
        except AuthError as exc:
            raise HTTPException(
                status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        if not allowed(principal.role, roles):
            raise HTTPException(
                status_code=403,
                detail=f"a {principal.role} token may not do this; it needs the role "
                f"{' or '.join(roles)} (or admin)",
            )
        return principal

    return dependency


__all__ = [
    "ROLES",
    "Principal",
    "allowed",
    "authenticate",
    "check_role",
    "create_token",
    "new_token",
    "require",
    "token_sha256",
]
