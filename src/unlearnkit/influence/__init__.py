"""Influence machinery: per-sample gradients, curvature-vector products, inverse solves.

One package that masks (:mod:`unlearnkit.methods.masking`), influence unlearning
(:class:`unlearnkit.methods.influence.InfluenceUnlearning`) and the later PUMA and
data-debugging work all use:

- :mod:`~unlearnkit.influence.gradients`: flat parameter vectors, the gradient of
  the training objective, and per-sample gradients (``torch.func`` ``vmap`` over
  ``grad``, in chunks bounded in memory);
- :mod:`~unlearnkit.influence.curvature`: products of a vector with the Hessian of
  the training objective (forward-over-reverse), its Gauss-Newton matrix or the
  empirical Fisher (both positive semi-definite by construction);
- :mod:`~unlearnkit.influence.solvers`: damped inverse products, by conjugate
  gradients (``scipy.sparse.linalg.cg`` on a ``LinearOperator``) or LiSSA, each
  reporting iterations, residual and any negative curvature it met.

The training objective is the mean loss over the data (cross-entropy for class
labels, squared error for real targets) plus ``weight_decay / 2 · ||θ||²`` (what
SGD's ``weight_decay`` adds to the gradient).
"""

from unlearnkit.influence.curvature import CURVATURES, CurvatureOperator
from unlearnkit.influence.gradients import (
    ParameterVector,
    objective_gradient,
    per_sample_gradients,
)
from unlearnkit.influence.solvers import (
    SOLVERS,
    InverseSolve,
    conjugate_gradient,
    inverse_product,
    lissa,
)

__all__ = [
    "CURVATURES",
    "SOLVERS",
    "CurvatureOperator",
    "InverseSolve",
    "ParameterVector",
    "conjugate_gradient",
    "inverse_product",
    "lissa",
    "objective_gradient",
    "per_sample_gradients",
]
