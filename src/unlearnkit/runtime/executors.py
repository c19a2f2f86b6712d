"""Executors: one interface for every batch of independent jobs in the library.

``executor.map(fn, jobs)`` runs ``fn(job)`` for each job and returns the
results in job order. Three implementations share it:

- :class:`SerialExecutor` runs the jobs one after another in this process;
- :class:`ProcessExecutor` runs them in local worker processes (default: one
  per core), started with ``forkserver`` (``spawn`` where that is missing) so
  workers never inherit a forked copy of a threaded parent;
- :class:`RayExecutor` runs them as Ray tasks, on a cluster given by address or
  on a local one it starts (``pip install unlearnkit[ray]``).

``fn`` and the jobs must be picklable: a function defined at module level in an
importable module, and plain data. A job that raises re-raises its own
exception here (with a note naming the job); a worker that dies raises
:class:`JobFailedError`. Neither hangs: jobs not yet started are cancelled, and
``map`` returns control once the jobs already running have stopped, so nothing
launched by a failed ``map`` is still writing files when the error arrives.

Worker processes do not outlive the process that owns the executor: if it dies,
even by ``SIGKILL``, each worker exits at once, and the fork server and
multiprocessing's resource tracker, which stay up only while the owner or a
worker holds their pipes, exit after them (a few seconds at most). This relies
only on the pipe (a process handle on Windows) that multiprocessing gives every
child to watch its parent, so it holds on every platform with the
``forkserver`` and ``spawn`` start methods; with ``fork`` a worker's watch pipe
is also held by the workers forked after it, so they end one after another,
the newest first. A local Ray cluster is left to Ray: its GCS, raylet and
workers die with a killed driver, but (Ray 2.60) its dashboard and runtime-env
agents outlived one by more than a minute.

>>> with get_executor("serial") as executor:
...     executor.map(abs, [-1, 2, -3])
[1, 2, 3]
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from tqdm.auto import tqdm

from unlearnkit.errors import (  # noqa: F401  (JobFailedError: re-exported, callers catch it here)
    ConfigError,
    JobFailedError,
    UnknownExecutorError,
)
from unlearnkit.registry import Registry


def _label(labels: Sequence[str] | None, index: int) -> str:
    return labels[index] if labels is not None else f"job {index}"


def _noted(exc: BaseException, label: str, executor: str) -> BaseException:
    exc.add_note(f"(raised by {label} on the {executor} executor)")
    return exc


def _note(exc: BaseException, label: str, executor: str) -> None:
    _noted(exc, label, executor)


class Executor:
    """Base class: ``map`` jobs, ``close`` resources; usable as a context manager."""

    name: ClassVar[str]

    @property
    def workers(self) -> int:
        """How many jobs run at the same time."""
        return 1

    def map(
        self,
        fn: Callable[[Any], Any],
        jobs: Sequence[Any],
        *,
        labels: Sequence[str] | None = None,
        description: str = "jobs",
        progress: bool | None = None,
    ) -> list[Any]:
        """``[fn(job) for job in jobs]``, possibly in parallel; results keep the job order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; a later ``map`` starts them again."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"

    @staticmethod
    def _bar(total: int, description: str, progress: bool | None):
        from unlearnkit.training import progress_enabled

        return tqdm(
            total=total, desc=description, leave=False, disable=not progress_enabled(progress)
        )


class SerialExecutor(Executor):
    """Runs jobs one by one in this process (no pickling, easiest to debug)."""

    name = "serial"

    def map(self, fn, jobs, *, labels=None, description="jobs", progress=None):
        results = []
        with self._bar(len(jobs), description, progress) as bar:
            for i, job in enumerate(jobs):
                try:
                    results.append(fn(job))
                except Exception as exc:
                    _note(exc, _label(labels, i), self.name)
                    raise
                bar.update()
        return results


def _init_worker(threads: int) -> None:
    _exit_with_owner()
    # Workers share the machine's cores: one intra-op thread each avoids
    # oversubscription (N workers x N threads) that makes parallel runs slower.
    import torch

    torch.set_num_threads(threads)


# The exit status of a worker whose owner died; nobody reads it, it only names the cause.
_OWNER_DIED_EXIT_CODE = 70


def _exit_with_owner() -> None:
    """End this worker as soon as the process that owns its pool dies, however it dies.

    When the owner is killed (SIGKILL, the OOM killer) none of its clean-up runs:
    an idle worker would wait on its job queue forever, and because every worker
    holds the fork server's "alive" pipe, the fork server would stay too.

    multiprocessing gives each child a sentinel of its parent: the read end of a
    pipe whose write end only the owner holds (under ``forkserver`` too, where the
    OS parent is the fork server), so it reads EOF the moment the owner's file
    descriptors close, that is when it dies. A daemon thread blocked on it costs
    nothing and needs no polling. It was preferred to ``prctl(PR_SET_PDEATHSIG)``,
    which under ``forkserver`` would fire for the fork server, not the owner,
    fires when the owner's *thread* that started a child exits (a worker thread
    calling ``map`` would kill the pool), and exists on Linux only.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:  # not started by multiprocessing
        return
    threading.Thread(
        target=_exit_when_dead, args=(parent,), name="unlearnkit-owner-watch", daemon=True
    ).start()


def _exit_when_dead(parent) -> None:
    parent.join()  # returns only when the owner has died
    # os._exit, not sys.exit: the job running in the main thread must stop now (it
    # may be writing files that a retry will write again), and nothing waits for
    # this process's clean-up. A job holding the GIL in C code delays this until
    # it releases it; torch's kernels do release it.
    os._exit(_OWNER_DIED_EXIT_CODE)


class ProcessExecutor(Executor):
    """Runs jobs in a pool of local worker processes.

    The pool starts on the first ``map`` and is kept for later calls (starting a
    worker imports torch, which takes seconds); ``close`` stops it. ``workers``
    defaults to the number of cores this process may use. If this process dies
    without closing it, the workers and the fork server end by themselves.
    """

    name = "process"

    def __init__(
        self,
        workers: int | None = None,
        *,
        start_method: str | None = None,
        threads_per_worker: int = 1,
        # torch._dynamo: the first optimizer built in a process imports it (2-3 s);
        # preloaded in the fork server, no worker pays that again.
        preload: Sequence[str] = ("torch", "torch._dynamo", "unlearnkit.training"),
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1; got {workers}")
        available = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in available else "spawn"
        if start_method not in available:
            raise ConfigError(
                f"start method {start_method!r} is not available here; use one of {available}"
            )
        if threads_per_worker < 1:
            raise ConfigError(f"threads_per_worker must be >= 1; got {threads_per_worker}")
        self._workers = workers or _usable_cores()
        self.start_method = start_method
        self.threads_per_worker = threads_per_worker
        self.preload = tuple(preload)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._finalizer = None

    @property
    def workers(self) -> int:
        return self._workers

    def start(self) -> ProcessExecutor:
        """Start the worker processes now (otherwise the first ``map`` does)."""
        if self._pool is None:
            context = multiprocessing.get_context(self.start_method)
            if self.start_method == "forkserver" and self.preload:
                # The fork server imports these once; each worker then forks from it
                # in milliseconds instead of importing torch itself.
                context.set_forkserver_preload(list(self.preload))
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.threads_per_worker,),
            )
            self._finalizer = weakref.finalize(self, self._pool.shutdown, wait=True)
            # Submitting one no-op per worker makes them all start now, so the
            # start-up cost is paid here rather than inside the first timed map.
            try:
                list(self._pool.map(_usable_cores, [None] * self._workers))
            except cf.process.BrokenProcessPool:
                self.close()
                raise JobFailedError(
                    "worker processes died while starting. Workers import the main script: "
                    "if it is a script, put its code under 'if __name__ == \"__main__\":' "
                    "(or use the serial executor)"
                ) from None
        return self

    def map(self, fn, jobs, *, labels=None, description="jobs", progress=None):
        if not jobs:
            return []
        pool = self.start()._pool
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        results: list[Any] = [None] * len(jobs)
        with self._bar(len(jobs), description, progress) as bar:
            for future in cf.as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except Exception as exc:
                    self._abort(futures)
                    if isinstance(exc, cf.process.BrokenProcessPool):
                        self.close()  # a broken pool cannot be reused; the next map starts one
                        raise JobFailedError(
                            f"a worker process died while running {_label(labels, i)} (killed, or "
                            "out of memory); completed work is kept, rerun the command to resume"
                        ) from exc
                    _note(exc, _label(labels, i), self.name)
                    raise
                bar.update()
        return results

    @staticmethod
    def _abort(futures) -> None:
        # Cancel what has not started; wait for what is running so that no job of
        # this map is still writing when the caller handles the error.
        for future in futures:
            future.cancel()
        cf.wait(list(futures))

    def close(self) -> None:
        if self._pool is not None:
            self._finalizer.detach()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _usable_cores(_=None) -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_job(fn, job):
    return fn(job)


class RayExecutor(Executor):
    """Runs jobs as Ray tasks (one CPU each by default).

    ``address`` names a running cluster (``"auto"``, ``"ray://host:10001"``);
    without it a local cluster with ``num_cpus`` CPUs is started on first use and
    shut down by ``close``. If Ray is already initialised in this process, that
    session is used and left running. On a multi-machine cluster every worker
    must see the files the jobs read and write (e.g. a SISA store on a shared
    file system).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        cpus_per_job: float = 1,
    ) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the ray executor needs Ray; install it with 'pip install unlearnkit[ray]'"
            ) from None
        if cpus_per_job <= 0:
            raise ConfigError(f"cpus_per_job must be > 0; got {cpus_per_job}")
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_job = cpus_per_job
        self._started_here = False

    @property
    def workers(self) -> int:
        import ray

        if not ray.is_initialized():
            return int(self.num_cpus or _usable_cores())
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_job))

    def start(self) -> RayExecutor:
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
                self._started_here = True
        return self

    def map(self, fn, jobs, *, labels=None, description="jobs", progress=None):
        import ray
        from ray.exceptions import RayError, RayTaskError

        if not jobs:
            return []
        self.start()
        remote = ray.remote(num_cpus=self.cpus_per_job, max_retries=0)(_run_job)
        fn_ref = ray.put(fn)
        refs = {remote.remote(fn_ref, job): i for i, job in enumerate(jobs)}
        results: list[Any] = [None] * len(jobs)
        pending = list(refs)
        with self._bar(len(jobs), description, progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                i = refs[done[0]]
                try:
                    results[i] = ray.get(done[0])
                except RayTaskError as exc:
                    self._abort(pending)
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, Exception) and not isinstance(cause, RayError):
                        raise _noted(cause, _label(labels, i), self.name) from exc
                    raise JobFailedError(f"{_label(labels, i)} failed on Ray: {exc}") from exc
                except RayError as exc:
                    self._abort(pending)
                    raise JobFailedError(
                        f"Ray lost {_label(labels, i)} ({type(exc).__name__}: {exc}); "
                        "completed work is kept, rerun the command to resume"
                    ) from exc
                bar.update()
        return results

    @staticmethod
    def _abort(pending) -> None:
        import ray

        for ref in pending:
            ray.cancel(ref)
        if pending:
            ray.wait(pending, num_returns=len(pending))

    def close(self) -> None:
        import ray

        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._started_here = False


_EXECUTORS: Registry[type[Executor]] = Registry("executor", error=UnknownExecutorError)
for _cls in (SerialExecutor, ProcessExecutor, RayExecutor):
    _EXECUTORS.add(_cls.name, _cls)


def names() -> list[str]:
    return _EXECUTORS.names()


def get_executor(
    executor: str | Executor | None = "process",
    *,
    workers: int | None = None,
    address: str | None = None,
) -> Executor:
    """An executor by name (``serial``, ``process``, ``ray``); an instance passes through.

    ``workers`` sets the process count (``process``) or the CPUs of a local Ray
    cluster (``ray``); ``address`` connects Ray to a running cluster.

    >>> get_executor("process", workers=2)
    ProcessExecutor(workers=2)
    >>> get_executor("threads")
    Traceback (most recent call last):
    ...
    unlearnkit.errors.UnknownExecutorError: unknown executor 'threads'; valid names: process, ray, serial
    """
    if isinstance(executor, Executor):
        return executor
    name = executor or "process"
    cls = _EXECUTORS.get(name)
    if cls is ProcessExecutor:
        return ProcessExecutor(workers)
    if cls is RayExecutor:
        return RayExecutor(address, num_cpus=workers)
    return cls()
