"""The partitioned core of the exact engines that train one model per part (SISA, ARCANE).

- :class:`PartitionedEngine` (``engine``): fit, forget, commit, cleanup, resume;
  an engine subclasses it and supplies its hooks (assignment, learning schedule,
  combination, optional moves between blocks).
- :mod:`~unlearnkit.exact.partitioned.learners`: what a part trains (a registry).
- :func:`train_part` (``worker``): the job an executor runs for one part.
- :class:`PartStore` (``store``): the SQLite database and tensor files of a store.
"""

from unlearnkit.exact.partitioned import learners  # noqa: F401
from unlearnkit.exact.partitioned.engine import PartitionedEngine  # noqa: F401
from unlearnkit.exact.partitioned.learners import Learner  # noqa: F401
from unlearnkit.exact.partitioned.store import PartStore  # noqa: F401
from unlearnkit.exact.partitioned.worker import PartJob, torch_threads, train_part  # noqa: F401

__all__ = [
    "Learner",
    "PartJob",
    "PartStore",
    "PartitionedEngine",
    "learners",
    "torch_threads",
    "train_part",
]
