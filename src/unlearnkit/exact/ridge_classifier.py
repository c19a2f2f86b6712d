"""An exact ridge classifier: closed-form least squares on one-hot targets.

:class:`RidgeClassifierEngine` (registry name ``exact_ridge``) fits
:class:`~unlearnkit.exact.linear.LinearRegressionUnlearner` on the flattened
inputs with a column of ones appended (the bias, penalised like every other
coefficient) against the one-hot encoded labels, and predicts the class of the
largest score. ``forget`` is the unlearner's rank-k downdate, so the
coefficients equal a refit without the forgotten rows to rounding (``tolerance``
1e-8 relative), not bit for bit.

The features are used exactly as the data set holds them. The engine fits no
statistic of the data (no standardisation, no centring): a statistic of the
training set would itself have to be recomputed, and the whole solution refit,
on every forget. Scale the data by data-independent constants beforehand if
needed; a larger ``ridge`` also tames badly scaled features.

``predict_proba`` is the softmax of the scores. Ridge scores are not calibrated
log-odds: the probabilities rank the classes as the scores do (so ``predict`` and
accuracy are the classifier's), and serve the probability-based metrics (MIA, KL)
only as a monotone reading of the scores.

The engine is not persistent: its state is in memory. ``state_dict()`` returns
it (plain arrays and JSON values), ``save(path)`` writes it to one ``.npz`` file
atomically, and ``RidgeClassifierEngine.load`` takes either.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> engine = RidgeClassifierEngine(ridge=1.0).fit(data.train)
>>> result = engine.forget(data.train.ids[:5])
>>> result.forgotten, result.extra["path"], result.extra["fallback"]
(5, 'refit', True)

Raw digits pixels with ``ridge=1`` give statistics of condition ~4e6: a downdate's
estimated error would exceed the solver's ``tol``, so the engine refits (SVD) and
says why in ``result.extra["reason"]``; better-conditioned data (or a larger
``ridge``) take the O(k·d²) downdate.
>>> fresh = RidgeClassifierEngine(ridge=1.0).fit(data.train, exclude_ids=data.train.ids[:5])
>>> bool((engine.predict(data.test.X) == fresh.predict(data.test.X)).all())
True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from torch import nn

from unlearnkit.checkpoint import load_npz_state, save_npz_state
from unlearnkit.errors import (
    ConfigError,
    DatasetError,
    ForgetSelectionError,
    NotFittedError,
    StoreError,
)
from unlearnkit.exact.base import (
    ExactEngine,
    ForgetResult,
    check_request_id,
    check_retry,
    register,
)
from unlearnkit.exact.ids import coerce_forget_ids
from unlearnkit.params import Range

FORMAT = "unlearnkit-exact-ridge"
FORMAT_VERSION = 1
_NO_IDS = np.zeros(0, dtype=np.int64)


class RidgeScores(nn.Module):
    """``x -> flatten(x) @ weight.T + bias``: the ridge classifier's class scores.

    ``weight`` (classes × features) and ``bias`` are float64 buffers, the
    coefficients as solved; inputs are promoted to float64 and the scores returned
    as float32, like the other models' logits. ``softmax`` of the output is the
    engine's ``predict_proba``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.to(torch.float64))
        self.register_buffer("bias", bias.to(torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = x.flatten(1).to(torch.float64) @ self.weight.T + self.bias
        return scores.to(torch.float32)


@register
class RidgeClassifierEngine(ExactEngine):
    """Closed-form ridge classifier on one-hot targets with exact, fast forgetting.

    Parameters (keyword-only):

    - ``ridge`` (``λ > 0``, default 1.0): the penalty ``λ‖W‖²`` of the least-squares
      fit, bias included. Positive, so the solution is unique whatever the data.
    - ``num_classes``: score columns; defaults to ``max(label) + 1`` of the training
      data (give it when a class may be missing from ``train``).

    Learned state after ``fit`` or ``load``: ``unlearner_`` (the
    :class:`~unlearnkit.exact.linear.LinearRegressionUnlearner`), ``num_classes_``,
    ``input_shape_``, ``known_ids_`` (every id given to ``fit``, sorted),
    ``deleted_ids_``, ``requests_`` (the :class:`ForgetResult` of every request),
    ``fit_seconds_``.
    """

    name = "exact_ridge"
    summary = "closed-form ridge classifier on one-hot targets; forget by rank-k downdate"
    bit_exact = False
    tolerance = 1e-8
    persistent = False
    tasks = ("classification",)

    def __init__(
        self,
        *,
        ridge: Annotated[float, Range(gt=0)] = 1.0,
        num_classes: Annotated[int, Range(ge=1)] | None = None,
    ) -> None:
        self.ridge = ridge
        self.num_classes = num_classes

    @staticmethod
    def run_options(*, ridge: Annotated[float, Range(gt=0)] = 1.0) -> None:
        """``unlearnkit run -o exact_ridge.ridge=VALUE``.

        The run's ``--model`` and training recipe do not apply: this engine's model
        is always the closed-form linear map on the raw, flattened features.
        """

    @classmethod
    def for_run(
        cls, *, model, training, seed, num_classes, store=None, progress=None, **options
    ) -> RidgeClassifierEngine:
        return cls(num_classes=num_classes, **options)

    # -- fit ------------------------------------------------------------------------------
    def _design(self, X: torch.Tensor) -> np.ndarray:
        """Flattened float64 features with the bias column of ones appended."""
        flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return np.hstack([flat, np.ones((len(flat), 1))])

    def fit(self, train, *, exclude_ids=None) -> RidgeClassifierEngine:
        """Fit on ``train`` (a :class:`~unlearnkit.data.Split`); returns ``self``.

        ``exclude_ids`` fits as if those ids had been forgotten right after the fit:
        the rows are left out (the others keep their order) and the ids count as
        deleted. This is the reference a ``forget`` of the same ids must equal.
        """
        from unlearnkit.exact.linear import LinearRegressionUnlearner  # scipy: only when fitting

        if not isinstance(self.ridge, int | float) or not self.ridge > 0:
            raise ConfigError(f"exact_ridge.ridge must be a finite number > 0; got {self.ridge!r}")
        if len(train) == 0:
            raise ConfigError("cannot fit exact_ridge on an empty training split")
        self.check_task(train)
        started = time.perf_counter()
        exclude = _NO_IDS
        if exclude_ids is not None:
            exclude = np.unique(np.asarray(exclude_ids, dtype=np.int64))
            train.positions(exclude)  # unknown ids raise UnknownIdsError
            if len(exclude) == len(train):
                raise ForgetSelectionError(
                    "exclude_ids covers every training sample; nothing to fit"
                )
        labels = train.y.numpy()
        num_classes = self.num_classes or int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= num_classes:
            raise DatasetError(
                f"labels must lie in 0..{num_classes - 1} (num_classes={num_classes}); "
                f"got {int(labels.min())}..{int(labels.max())}"
            )
        kept = train.without(exclude) if exclude.size else train
        targets = np.eye(num_classes)[kept.y.numpy()]
        self.unlearner_ = LinearRegressionUnlearner(ridge=float(self.ridge)).fit(
            self._design(kept.X), targets, ids=kept.ids.numpy()
        )
        self.num_classes_ = num_classes
        self.input_shape_ = tuple(train.X.shape[1:])
        self.known_ids_ = np.sort(train.ids.numpy())
        self.deleted_ids_ = exclude
        self.requests_: list[ForgetResult] = []
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "unlearner_"):
            raise NotFittedError(
                "this exact_ridge engine is not fitted; call fit(train) or load() first"
            )

    # -- forget ---------------------------------------------------------------------------
    def forget(self, ids, *, request_id: str | None = None) -> ForgetResult:
        """Remove ``ids`` by a rank-k downdate (or a reported refit); see ``extra["path"]``."""
        self._check_fitted()
        started = time.perf_counter()
        request_id = check_request_id(request_id)
        ids = coerce_forget_ids(ids, known=self.known_ids_, deleted=_NO_IDS)
        if request_id is not None:
            for earlier in self.requests_:
                if earlier.request_id == request_id:
                    check_retry(request_id, ids, served_ids=earlier.ids, request=earlier.request)
                    return earlier.served_again()
        ids = coerce_forget_ids(ids, known=self.known_ids_, deleted=self.deleted_ids_)
        update = self.unlearner_.forget(ids)  # changes nothing if it raises
        refit = update.path == "refit"
        result = ForgetResult(
            request=len(self.requests_) + 1,
            ids=tuple(ids.tolist()),
            seconds=time.perf_counter() - started,
            request_id=request_id,
            # The rows the update read: the removed ones for a downdate, all kept ones for a refit.
            sample_passes=update.n_remaining if refit else update.removed,
            samples_retrained=update.n_remaining if refit else 0,
            extra={
                "path": update.path,
                "fallback": update.fallback,
                "reason": update.reason,
                "rcond": update.rcond,
                "form": update.form,
                "n_remaining": update.n_remaining,
            },
        )
        self.deleted_ids_ = np.union1d(self.deleted_ids_, ids)
        self.requests_.append(result)
        return result

    # -- prediction -----------------------------------------------------------------------
    def as_module(self) -> RidgeScores:
        """The scores as an ``nn.Module`` (``softmax`` of its output is ``predict_proba``)."""
        self._check_fitted()
        coef = torch.from_numpy(np.ascontiguousarray(self.unlearner_.coef_))  # (classes, d + 1)
        return RidgeScores(coef[:, :-1], coef[:, -1]).eval()

    @torch.no_grad()
    def predict_proba(self, X) -> torch.Tensor:
        """Softmax of the ridge scores ``(n, classes)`` (a monotone map: argmax is kept)."""
        self._check_fitted()
        X = torch.as_tensor(X)
        if X.ndim < 2 or math.prod(X.shape[1:]) != math.prod(self.input_shape_):
            raise DatasetError(
                f"inputs must have shape (n, {', '.join(map(str, self.input_shape_))}); "
                f"got {tuple(X.shape)}"
            )
        return torch.softmax(self.as_module()(X), dim=1)

    # -- inspection -----------------------------------------------------------------------
    def status(self) -> dict:
        self._check_fitted()
        return {
            "engine": self.name,
            "model": "ridge (closed form) on raw features + bias",
            "ridge": float(self.ridge),
            "num_classes": self.num_classes_,
            "features": int(math.prod(self.input_shape_)),
            "samples": int(self.unlearner_.n_samples_),
            "deleted": len(self.deleted_ids_),
            "requests_served": len(self.requests_),
            "form": self.unlearner_.form_,
        }

    def verify(self) -> list[str]:
        """Consistency of ids and coefficients; the problems found (empty when sound)."""
        self._check_fitted()
        problems = []
        kept = self.unlearner_.ids_
        if np.isin(kept, self.deleted_ids_).any():
            problems.append("a forgotten id is still among the fitted rows")
        if len(kept) + len(self.deleted_ids_) != len(self.known_ids_):
            problems.append("fitted and forgotten ids do not add up to the ids given to fit")
        if not np.isfinite(self.unlearner_.coef_).all():
            problems.append("the coefficients are not finite")
        return problems

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Hyper-parameters, ids, the request log and the unlearner's state (arrays + JSON)."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": {"ridge": float(self.ridge), "num_classes": self.num_classes},
            "num_classes": self.num_classes_,
            "input_shape": list(self.input_shape_),
            "known_ids": self.known_ids_.copy(),
            "deleted_ids": self.deleted_ids_.copy(),
            "requests": [r.to_dict() for r in self.requests_],
            "fit_seconds": self.fit_seconds_,
            "unlearner": self.unlearner_.state_dict(),
        }

    def load_state_dict(self, state: Mapping) -> RidgeClassifierEngine:
        from unlearnkit.exact.linear import LinearRegressionUnlearner

        try:
            if state.get("format") != FORMAT:
                raise StoreError(f"not an exact_ridge state (format {state.get('format')!r})")
            if state["format_version"] > FORMAT_VERSION:
                raise StoreError(
                    f"exact_ridge state format {state['format_version']} is newer than this "
                    f"unlearnkit reads ({FORMAT_VERSION}); upgrade unlearnkit"
                )
            unlearner = LinearRegressionUnlearner().load_state_dict(state["unlearner"])
            requests = [
                ForgetResult(
                    **{
                        **r,
                        "ids": tuple(int(i) for i in r["ids"]),
                        "files_deleted": tuple(r["files_deleted"]),
                        "parts": {int(p): int(k) for p, k in r["parts"].items()},
                    }
                )
                for r in state["requests"]
            ]
            self.ridge = float(state["params"]["ridge"])
            self.num_classes = state["params"]["num_classes"]
            self.num_classes_ = int(state["num_classes"])
            self.input_shape_ = tuple(int(d) for d in state["input_shape"])
            self.known_ids_ = np.asarray(state["known_ids"], dtype=np.int64)
            self.deleted_ids_ = np.asarray(state["deleted_ids"], dtype=np.int64)
            self.fit_seconds_ = state.get("fit_seconds")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"exact_ridge state is incomplete or corrupt ({exc!r})") from None
        self.unlearner_, self.requests_ = unlearner, requests
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`state_dict` to ``path`` (``.npz``) atomically; returns the path."""
        state = self.state_dict()
        inner = state.pop("unlearner")
        arrays = {f"unlearner.{k}": v for k, v in inner["arrays"].items()}
        arrays["known_ids"], arrays["deleted_ids"] = (
            state.pop("known_ids"),
            state.pop("deleted_ids"),
        )
        return save_npz_state(path, meta={**state, "unlearner_meta": inner["meta"]}, arrays=arrays)

    @classmethod
    def load(cls, source: Mapping | str | os.PathLike) -> RidgeClassifierEngine:
        """An engine from a :meth:`state_dict` or a file written by :meth:`save`."""
        if isinstance(source, Mapping):
            return cls().load_state_dict(source)
        meta, arrays = load_npz_state(
            source, what="exact_ridge state", fix="fit and save(path) an engine again"
        )
        inner = {k.removeprefix("unlearner."): v for k, v in arrays.items() if "." in k}
        state = {
            **{k: v for k, v in meta.items() if k != "unlearner_meta"},
            "known_ids": arrays.get("known_ids"),
            "deleted_ids": arrays.get("deleted_ids"),
            "unlearner": {"meta": meta.get("unlearner_meta"), "arrays": inner},
        }
        return cls().load_state_dict(state)


__all__ = ["RidgeClassifierEngine", "RidgeScores"]
