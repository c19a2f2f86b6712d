"""The exact-engine contract: what every exact unlearning engine does and declares.

An exact engine trains its own model(s) and forgets samples so that the result
equals training again without them: bit for bit (``bit_exact``), or to rounding
for a closed-form engine (``tolerance``). Every engine is one class with two
verbs and the same learned state:

- ``fit(train, *, exclude_ids=None) -> self``: train on a :class:`~unlearnkit.data.Split`;
  ``exclude_ids`` trains as if those ids had been forgotten right after the fit,
  which is the engine's own golden (what ``forget(exclude_ids)`` must equal);
- ``forget(ids, *, request_id=None) -> ForgetResult``: forget sample ids;
- ``predict_proba(X)`` / ``predict(X)``, and ``as_module()``: an ``nn.Module`` whose
  outputs ``softmax`` to ``predict_proba`` (so :func:`unlearnkit.evaluate` scores it);
- ``deleted_ids_`` (sorted int64 array), ``status() -> dict``, ``verify() -> list[str]``
  (the problems found; empty when all is well);
- ``state_dict()`` and the class method ``load(source)``. ``load`` accepts what
  ``state_dict()`` returned; a ``persistent`` engine also loads from its store
  directory ``store_`` alone (its state lives there and every ``forget`` commits to
  it), a non-persistent one from a file it wrote with ``save(path)``.

Capabilities are class attributes, like the methods' ``exact`` / ``needs_forget``:
``bit_exact``, ``tolerance`` (relative, for engines that are not bit-exact),
``persistent``, ``tasks`` (a tuple of ``"classification"`` / ``"regression"``),
with ``name`` and ``summary``. ``tests/exact/test_engine_conformance.py`` runs
every registered engine through the same checks against them.

Ids follow one policy (:func:`unlearnkit.exact.ids.coerce_forget_ids`): a repeated
id, an unknown id, an id already forgotten, an empty request or ids that are not
integers are errors, and nothing changes. ``request_id`` makes a request safe to
retry: the same key with the same ids returns the committed result with
``already_served=True`` and changes nothing; the same key with other ids is a
:class:`~unlearnkit.errors.RequestIdConflictError`.

Plugging in an engine: subclass :class:`ExactEngine`, set the capability
attributes, implement the abstract methods, declare the options of
``unlearnkit run -o NAME.PARAM=VALUE`` as the keyword-only, annotated parameters
of ``run_options`` (:mod:`unlearnkit.params` checks them), build the engine from
the run's recipe in ``for_run``, and decorate the class with :func:`register`.

>>> from unlearnkit import exact
>>> exact.names()
['arcane', 'exact_ridge', 'sisa']
>>> exact.get("sisa").bit_exact, exact.get("exact_ridge").tasks
(True, ('classification',))
>>> exact.get("sisa2")
Traceback (most recent call last):
...
unlearnkit.errors.UnknownEngineError: unknown engine 'sisa2'; valid names: arcane, exact_ridge, sisa
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from unlearnkit.errors import (
    ConfigError,
    ForgetSelectionError,
    RequestIdConflictError,
    UnknownEngineError,
)
from unlearnkit.registry import Registry

TASKS = ("classification", "regression")

# A request id is a caller's idempotency key (an HTTP request id, a ticket number):
# short and printable, so it can sit in a log line and an error message.
REQUEST_ID_MAX_LENGTH = 200


@dataclass(frozen=True)
class ForgetResult:
    """What one ``forget`` call did, in fields every engine fills.

    - ``request``: the request's number (1 for the first request after ``fit``);
      ``request_id``: the caller's key, if one was given.
    - ``ids``: the ids forgotten (sorted); ``forgotten`` is their number.
    - ``seconds``: wall time of the request.
    - ``resumed``: the request had been interrupted and this call finished it;
      ``already_served``: an earlier call with the same ``request_id`` served it, and
      this call returned that result without changing anything.
    - ``parts``: each retrained part (a SISA shard) -> the first step it redid
      (1-based); empty for an engine without parts. ``steps_retrained``: steps redone
      in all; ``sample_passes``: the cost-model quantity (samples times epochs over
      the redone steps; for a closed-form engine, the rows the update read);
      ``samples_retrained``: samples left in the retrained parts.
    - ``files_deleted``: store files this call removed (superseded checkpoints and
      data that held a forgotten sample), relative to the store.
    - ``extra``: engine-specific fields (e.g. the linear engine's update path).

    >>> r = ForgetResult(request=1, ids=(3, 7), seconds=0.5)
    >>> r.forgotten, r.to_dict()["ids"], r.already_served
    (2, [3, 7], False)
    """

    request: int
    ids: tuple[int, ...]
    seconds: float
    request_id: str | None = None
    resumed: bool = False
    already_served: bool = False
    parts: dict[int, int] = field(default_factory=dict)
    steps_retrained: int = 0
    sample_passes: int = 0
    samples_retrained: int = 0
    files_deleted: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def forgotten(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict:
        """Plain JSON-ready values (lists for tuples; part numbers stay ints)."""
        out = dataclasses.asdict(self)
        out["ids"] = list(self.ids)
        out["files_deleted"] = list(self.files_deleted)
        return out

    def served_again(self) -> ForgetResult:
        """This committed result, as a retry with the same ``request_id`` returns it."""
        return dataclasses.replace(self, already_served=True, resumed=False, files_deleted=())


def check_request_id(request_id: Any) -> str | None:
    """``request_id`` if it is ``None`` or a short printable string; else a clear error.

    >>> check_request_id("ticket-17"), check_request_id(None)
    ('ticket-17', None)
    >>> check_request_id("")
    Traceback (most recent call last):
    ...
    unlearnkit.errors.ForgetSelectionError: request_id must be a non-empty string of at most 200 printable characters; got ''
    """
    if request_id is None:
        return None
    if (
        not isinstance(request_id, str)
        or not 0 < len(request_id) <= REQUEST_ID_MAX_LENGTH
        or not request_id.isprintable()
    ):
        raise ForgetSelectionError(
            f"request_id must be a non-empty string of at most {REQUEST_ID_MAX_LENGTH} "
            f"printable characters; got {request_id!r}"
        )
    return request_id


def check_retry(request_id: str, ids: np.ndarray, *, served_ids, request: int) -> None:
    """Refuse a ``request_id`` that an earlier request used with other ids."""
    if not np.array_equal(np.sort(np.asarray(served_ids, dtype=np.int64)), ids):
        raise RequestIdConflictError(
            f"request_id {request_id!r} was already used by request {request} for other ids; "
            "a retry must send the same ids, and a new request needs a new request_id"
        )


class ExactEngine(abc.ABC):
    """Base class of the exact engines (see the module docstring for the contract).

    Constructors store hyper-parameters only (keyword-only); ``fit`` returns ``self``;
    learned state ends in ``_``. An engine holding processes or temporary files
    releases them in ``close()`` (it is also a context manager).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    bit_exact: ClassVar[bool] = False
    # Largest relative difference to a fresh fit(exclude_ids=...) that still counts as
    # exact; 0 for bit-exact engines.
    tolerance: ClassVar[float] = 0.0
    persistent: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...]] = ("classification",)

    deleted_ids_: np.ndarray

    # -- how `unlearnkit run` builds the engine --------------------------------------------
    @staticmethod
    def run_options() -> None:
        """Declares the ``-o NAME.PARAM=VALUE`` options of ``unlearnkit run`` (none here).

        Subclasses redefine it with keyword-only, ``Annotated`` parameters and defaults;
        :func:`unlearnkit.params.validate` checks options against them.
        """
        return None  # a hook: engines override it when they need to

    @classmethod
    def for_run(
        cls,
        *,
        model,
        training,
        seed: int,
        num_classes: int,
        store=None,
        progress: bool | None = None,
        **options,
    ) -> ExactEngine:
        """An unfitted engine for the run's recipe and the validated ``run_options``.

        ``model`` is the run's model (built by :func:`unlearnkit.models.make`),
        ``training`` its :class:`~unlearnkit.TrainConfig`, ``store`` a fresh directory
        a persistent engine may use (``None``: its own temporary one).
        """
        raise NotImplementedError(f"{cls.__name__} cannot be built by unlearnkit run")

    @classmethod
    def check_run(cls, *, train_size: int, options: dict) -> None:
        """Refuse, before any training, options that cannot work with ``train_size`` samples."""
        return None  # a hook: engines override it when they need to

    @classmethod
    def capabilities(cls) -> dict:
        return {
            "bit_exact": cls.bit_exact,
            "tolerance": cls.tolerance,
            "persistent": cls.persistent,
            "tasks": list(cls.tasks),
        }

    @classmethod
    def check_task(cls, train) -> None:
        """Refuse training targets of a task the engine does not declare."""
        floating = train.y.is_floating_point()
        if floating and "regression" not in cls.tasks:
            raise ConfigError(
                f"{cls.name} is a classification engine (tasks: {', '.join(cls.tasks)}) and "
                f"needs integer class labels; got {train.y.dtype} (regression) targets"
            )
        if not floating and "classification" not in cls.tasks:
            raise ConfigError(
                f"{cls.name} is a regression engine and needs float targets; got {train.y.dtype}"
            )

    # -- the contract ------------------------------------------------------------------------
    @abc.abstractmethod
    def fit(self, train, *, exclude_ids=None) -> ExactEngine: ...

    @abc.abstractmethod
    def forget(self, ids, *, request_id: str | None = None) -> ForgetResult: ...

    @abc.abstractmethod
    def predict_proba(self, X): ...

    def predict(self, X):
        """Class labels: the argmax of :meth:`predict_proba` (ties go to the lowest class)."""
        return self.predict_proba(X).argmax(1)

    @abc.abstractmethod
    def as_module(self): ...

    @abc.abstractmethod
    def status(self) -> dict: ...

    @abc.abstractmethod
    def verify(self) -> list[str]: ...

    @abc.abstractmethod
    def state_dict(self) -> dict: ...

    @classmethod
    @abc.abstractmethod
    def load(cls, source, **options) -> ExactEngine: ...

    def save(self, path):
        """Write the state to one file that ``load(path)`` reads (non-persistent engines)."""
        raise NotImplementedError(
            f"{self.name} is persistent: its store directory is its saved state; "
            "load it with load(store)"
        )

    def close(self) -> None:
        """Release processes or other resources; nothing to do by default."""
        return None  # a hook: engines override it when they need to

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


ENGINES: Registry[type[ExactEngine]] = Registry("engine", error=UnknownEngineError)


def register(cls: type[ExactEngine]) -> type[ExactEngine]:
    """Class decorator adding an engine to the registry under ``cls.name``."""
    unknown = set(cls.tasks) - set(TASKS)
    if not cls.tasks or unknown:
        raise ValueError(f"engine {cls.name!r} declares tasks {cls.tasks}; choose from {TASKS}")
    ENGINES.add(cls.name, cls)
    return cls


def get(name: str) -> type[ExactEngine]:
    """The engine class registered as ``name``; unknown names list the valid ones."""
    return ENGINES.get(name)


def names() -> list[str]:
    return ENGINES.names()


__all__ = [
    "ENGINES",
    "REQUEST_ID_MAX_LENGTH",
    "TASKS",
    "ExactEngine",
    "ForgetResult",
    "check_request_id",
    "check_retry",
    "get",
    "names",
    "register",
]
