"""Where cells run. An engine only decides that; the driver (:mod:`lab.experiments.sweep`)
orders the cells, and alone writes the store and the cell folders' final names.

* :class:`InProcess` (``--engine local``, the default): each cell in this process, one
  after another, with its own progress bars;
* :class:`Workers` (``--engine local --workers N``): N processes from the standard
  library's :class:`concurrent.futures.ProcessPoolExecutor`, the cores divided between them
  (``torch.set_num_threads(cores // N)`` in each: two torch processes that each take every
  core slow each other down many times over);
* :class:`RayEngine` (``--engine ray [--address ADDR]``): each cell a Ray task on an existing
  cluster (or a local one), a GPU per training and evaluation cell where the cluster has
  GPUs. The task gets the files of the cells it depends on and returns its own files as
  bytes, so workers need no shared file system.

``submit(cell, where) -> Future[Outcome]``; ``slots``: how many cells may run at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.experiments.cells import Outcome, Where, run_cell

ENGINES = ("local", "ray")


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


class InProcess:
    """Run each cell in this process when it is submitted (the returned future is done);
    ``threads``: torch threads per cell (0: torch's default)."""

    slots = 1
    name = "local"

    def __init__(self, *, device: str = "auto", data_dir: str = "", progress: bool = True, threads: int = 0) -> None:
        self.device, self.data_dir, self.progress, self.threads = device, data_dir, progress, threads

    def where(self, work: Path, deps: Mapping[str, Path]) -> Where:
        return Where(work=work, deps=dict(deps), device=self.device, threads=self.threads, data_dir=self.data_dir,
                     progress=self.progress)  # fmt: skip

    def submit(self, cell: Mapping[str, Any], where: Where) -> cf.Future[Outcome]:
        fut: cf.Future[Outcome] = cf.Future()
        try:
            fut.set_result(run_cell(cell, where))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the cell failed: recorded, the sweep goes on
            fut.set_exception(exc)
        return fut

    def close(self) -> None:
        pass


class Workers(InProcess):
    """``n`` worker processes (spawned), each with ``threads`` torch threads (default ``cores // n``)."""

    name = "local"

    def __init__(self, n: int, *, device: str = "auto", data_dir: str = "", threads: int = 0) -> None:
        if n < 1:
            raise LabError(f"--workers must be >= 1, got {n}")
        super().__init__(device=device, data_dir=data_dir, progress=False, threads=threads or max(1, cpu_count() // n))
        self.slots = n
        self.pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, cell: Mapping[str, Any], where: Where) -> cf.Future[Outcome]:
        return self.pool.submit(run_cell, dict(cell), where)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- Ray
def _pack(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _unpack(files: Mapping[str, bytes], folder: Path) -> None:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def ray_cell(cell: dict[str, Any], deps: dict[str, dict[str, bytes]], resume: dict[str, bytes], device: str,
             threads: int, data_dir: str) -> tuple[Outcome, dict[str, bytes]]:  # fmt: skip
    """The body of one Ray task: the dependencies' files and any resumable state unpacked in
    a temporary folder, :func:`run_cell`, and the work folder's files returned as bytes."""
    root = Path(tempfile.mkdtemp(prefix="lab-cell-"))
    try:
        dep_dirs = {}
        for key, files in deps.items():
            _unpack(files, root / key)
            dep_dirs[key] = root / key
        work = root / "work"
        work.mkdir()
        _unpack(resume, work)
        outcome = run_cell(cell, Where(work=work, deps=dep_dirs, device=device, threads=threads, data_dir=data_dir,
                                       progress=False))  # fmt: skip
        return outcome, _pack(work)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class RayEngine(InProcess):
    """Each cell a Ray task (``num_cpus`` = ``cpus_per_cell``; one GPU where the cluster has them)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, cpus_per_cell: int = 1, num_cpus: int | None = None,
                 data_dir: str = "", device: str = "auto") -> None:  # fmt: skip
        try:
            import ray  # optional: pip install the-lab[cluster]
        except ImportError:
            raise LabError("--engine ray needs Ray: pip install 'the-lab[cluster]' (or pip install ray)") from None
        super().__init__(device=device, data_dir=data_dir, progress=False)
        self.ray = ray
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise LabError(f"could not join the Ray cluster {address or '(local)'}: {exc}") from None
            self._started = True
        else:
            self._started = False
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        self.cpus_per_cell = max(1, cpus_per_cell)
        self.slots = max(1, cpus // self.cpus_per_cell) if not self.gpus else max(1, min(cpus, self.gpus))
        self.task = ray.remote(ray_cell)

    def submit(self, cell: Mapping[str, Any], where: Where) -> cf.Future[Outcome]:
        gpu = self.gpus > 0 and cell["kind"] in ("train", "evaluate")
        deps = {k: _pack(p) for k, p in where.deps.items()}
        resume = _pack(where.work) if cell["kind"] == "train" and (where.work / "train_state.safetensors").is_file() else {}
        ref = self.task.options(num_cpus=self.cpus_per_cell, num_gpus=1 if gpu else 0).remote(
            dict(cell), deps, resume, "cuda" if gpu else ("cpu" if self.device == "auto" else self.device),
            self.cpus_per_cell, self.data_dir)
        inner: cf.Future[tuple[Outcome, dict[str, bytes]]] = ref.future()
        outer: cf.Future[Outcome] = cf.Future()
        work = where.work

        def done(f: cf.Future[tuple[Outcome, dict[str, bytes]]]) -> None:
            try:
                outcome, files = f.result()
            except BaseException as exc:
                outer.set_exception(_ray_error(exc))
                return
            _unpack(files, work)  # the driver writes the cell's files
            outer.set_result(outcome)

        inner.add_done_callback(done)
        return outer

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


def _ray_error(exc: BaseException) -> BaseException:
    """The cell's own exception out of Ray's wrapper (a LabError stays a LabError)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
