"""The benchmark's jobs as Dask tasks (``dask.distributed``): a Yosys task for each design
and family, and a nextpnr task for each seed that depends on it, so that the seeds of one
design spread over the workers. The workers are those of a ``LocalCluster`` of
single-threaded processes on this machine, or those of an existing cluster
(``--scheduler``), which need this package and the tools installed and the work directory
at the same path (a filesystem they share). stderr shows each job's start and finish with
how many jobs are done and left."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from distributed import (Client, Future, LocalCluster, WorkerPlugin, as_completed,
                         get_worker)

from fp8hw.cli import EXIT_INTERRUPTED
from fp8hw.errors import Fp8hwError
from hw.bench import BenchError
from hw.bench.configs import Design
from hw.bench.measure import (Result, Routing, Synthesis, combine, job_stamps, place_and_route,
                              synthesize)

TOPIC = "hw.bench"          # the workers' events: a job started
CONNECT_TIMEOUT = 10        # seconds to reach --scheduler


@contextmanager
def connect(scheduler: str | None, workers: int):
    """A client of the cluster at ``scheduler``, or of a new LocalCluster of ``workers``
    processes with one thread each (they inherit this environment, so they find the same
    tools)."""
    if scheduler is None:
        # Errors only: a worker closed with a job running (after Ctrl-C) warns of it.
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            client.register_plugin(_ExitOnInterrupt())
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError) as e:          # a timeout is an OSError
        raise BenchError(f"cannot connect to the Dask scheduler {scheduler}: {e}") from None
    with client:
        yield client


class _ExitOnInterrupt(WorkerPlugin):
    """Ctrl-C reaches the local workers and their tools too: a worker exits at once, so
    that it saves no outcome of the tool it stopped (--reuse runs that job again) and
    prints no traceback."""

    def setup(self, worker):
        signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))


def _job(name: str, function: Callable, *args):
    """On a worker: tell the client that the job started, then run it."""
    worker = get_worker()
    worker.log_event(TOPIC, [name, worker.address])
    return function(*args)


def _describe(outcome: Synthesis | Routing | None) -> str:
    if outcome is None:
        return "not run (Yosys failed)"
    if outcome.error:
        text = outcome.error
    elif isinstance(outcome, Synthesis):
        text = f"yosys {outcome.seconds:.1f} s, {outcome.ffs} FF"
    else:
        text = f"Fmax {outcome.fmax:.2f} MHz, nextpnr {outcome.seconds:.1f} s"
        if outcome.path:
            text += (f"; critical path {outcome.path['from']} -> {outcome.path['to']}, "
                     f"{outcome.path['logic_levels']} logic levels")
    return text + (" (reused)" if outcome.reused else "")


@dataclass
class DesignJobs:
    """The jobs of one design on one family."""
    design: Design
    family: str
    workdir: str
    synthesis: Future
    routings: list[Future]

    def result(self) -> Result:
        """Once the jobs are done: the design's result, or the failure of a job that
        raised."""
        for future in (self.synthesis, *self.routings):
            if future.status != "finished":
                d = self.design
                return Result(d.unit, d.config, self.family, per_cycle=d.per_cycle, op=d.op,
                              note=d.note, workdir=self.workdir,
                              error=f"failed: {future.exception()}")
        return combine(self.design, self.family, self.workdir, self.synthesis.result(),
                       [f.result() for f in self.routings])


class Sweep:
    """A run's jobs on a Dask client: ``add`` every design, then ``wait``."""

    def __init__(self, client: Client, log: Callable[[str], None], reuse: bool):
        self.client, self.log, self.reuse = client, log, reuse
        self.names: dict[str, str] = {}         # a job's future key: its name
        self.futures: list[Future] = []
        self.done = 0
        client.subscribe_topic(TOPIC, self._started)

    def _submit(self, name: str, function: Callable, *args) -> Future:
        # Not pure: a job is run again (or read back) even when a cluster holds its result.
        future = self.client.submit(_job, name, function, *args, pure=False)
        self.names[future.key] = name
        self.futures.append(future)
        return future

    def add(self, design: Design, family: str, workdir: str, seeds: int) -> DesignJobs:
        what = f"{design.unit} {design.config} {family}"
        synthesis_stamp, seed_stamps = job_stamps(design, family, seeds)
        synthesis = self._submit(f"{what} yosys", synthesize, design, family, workdir,
                                 synthesis_stamp, self.reuse)
        routings = [self._submit(f"{what} seed {seed}", place_and_route, synthesis, family,
                                 workdir, seed, stamp, self.reuse)
                    for seed, stamp in enumerate(seed_stamps, 1)]
        return DesignJobs(design, family, workdir, synthesis, routings)

    def _started(self, event: tuple) -> None:
        """A worker's event (time, [job name, worker address]), in the client's thread."""
        name, worker = event[1]
        self.log(f"{name}: started on {worker} {self._count()}")

    def _count(self) -> str:
        total = len(self.futures)
        return f"({self.done} of {total} jobs done, {total - self.done} left)"

    def wait(self) -> None:
        """Until every job is done. A job that raises the project's error (a missing tool,
        a work directory the workers do not share) stops the run; any other exception is
        its design's failure."""
        for future in as_completed(self.futures):
            self.done += 1
            name = self.names[future.key]
            if future.status == "finished":
                outcome = _describe(future.result())
            elif future.cancelled():
                raise BenchError(f"{name}: cancelled (the Dask scheduler went away?)")
            elif isinstance(future.exception(), Fp8hwError):
                raise future.exception()
            else:
                outcome = f"failed: {future.exception()!r}"
            self.log(f"{name}: {outcome} {self._count()}")
