"""A grid of independent runs (a reproduction's rows and seeds), one after another, in parallel on this machine,
or as Ray tasks on a cluster.

    run_grid(jobs, run_one, done, workers=4)          # 4 processes on this machine
    run_grid(jobs, run_one, done, ray_address="auto")  # one Ray task per run (pip install 'lifelong[ray]')

`run_one(job)` makes one run and returns what is saved of it (plain data); it must be a module-level function
and `job` plain data, since both are pickled to another process. `done(job, result)` is called here, in this
process, as each run ends (in the order they end): the caller writes the run's own file and rewrites the table
there, so the files are the same whichever way the runs were made, an interrupted grid keeps every run that ended,
and the same command continues it.

workers=1 runs the jobs here, one after another. workers=N starts N processes (spawn: fresh interpreters that copy
nothing of this one's state), each pinned to cores // N torch threads on cores of its own (Linux; and, where the
runs use GPUs, to one GPU of its own through CUDA_VISIBLE_DEVICES), since N runs with every core's worth of threads
each would take turns on the cores and run slower than one after another. The same seed gives the same numbers with
any N: each run builds its own model and random state from its seed, and the thread count is written into every
run (results can differ in their last digits with it).
"""

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Callable

from .errors import ConfigError

RAY_MISSING = "Ray is not installed: pip install 'lifelong[ray]' (or run without --ray, on this machine)"


def require_ray() -> None:
    """A clear error before any work when Ray is asked for and absent (the core never imports it otherwise)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(RAY_MISSING) from None


def run_grid(jobs: list, run_one: Callable, done: Callable, workers: int = 1, threads: int | None = None,
             gpu: bool = False, ray_address: str | None = None) -> None:
    """Make every run of `jobs` with `run_one`, calling `done(job, result)` here as each ends.

    threads: torch threads per run (default: this machine's cores // workers, at least 1; with Ray, 1).
    gpu: the runs use a GPU (a pool gives each worker its own; Ray gives each task one).
    ray_address: run each job as a Ray task: "local" starts a single-node instance for this grid, anything else
    is the address of a running cluster ("auto", "ray://host:10001").
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if ray_address is not None:
        return _ray_grid(jobs, run_one, done, threads or 1, gpu, ray_address)
    if workers == 1:
        for job in jobs:
            done(job, run_one(job))
        return
    import torch

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # Linux: the cores we may use
    threads = threads or max(1, (len(cores) or os.cpu_count() or 1) // workers)
    gpus = torch.cuda.device_count() if gpu else 0
    context = get_context("spawn")
    numbers = context.Queue()  # each worker takes a number: its cores and its GPU
    for number in range(workers):
        numbers.put(number)
    pinned = cores if workers * threads <= len(cores) else []  # more threads than cores: let the system place them
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_pin,
                             initargs=(threads, gpus, numbers, pinned)) as pool:
        pending = {pool.submit(run_one, job): job for job in jobs}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(pending.pop(future), future.result())  # a run that failed raises here
        except BaseException:  # a failure or Ctrl-C: start nothing more; the runs under way end with the pool
            for future in pending:
                future.cancel()
            raise


def _pin(threads: int, gpus: int, numbers, cores: list[int]) -> None:
    """A worker's start: its share of the cores (its `threads` torch threads and, where the machine has cores enough
    and lets us, those very cores: worker k runs on cores[k * threads:(k + 1) * threads] alone), and its own GPU
    (before CUDA is first used in it)."""
    number = numbers.get()
    if cores:
        os.sched_setaffinity(0, cores[number * threads:(number + 1) * threads])
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(number % gpus)
    import torch

    torch.set_num_threads(threads)


def _pinned(run_one: Callable, job, threads: int):
    """A Ray task: one run with the threads Ray reserved CPUs for (Ray sets CUDA_VISIBLE_DEVICES itself)."""
    import torch

    torch.set_num_threads(threads)
    return run_one(job)


def _ray_grid(jobs, run_one, done, threads: int, gpu: bool, address: str) -> None:
    require_ray()
    import ray

    # "local": a single-node instance for this grid, stopped at its end; otherwise join the running cluster
    ray.init(address=None if address == "local" else address, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(num_cpus=threads, num_gpus=1 if gpu else 0, max_retries=0)(_pinned)
        pending = {task.remote(run_one, job, threads): job for job in jobs}
        try:
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(finished[0])
                done(job, ray.get(finished[0]))  # a run that failed raises here
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
    finally:
        ray.shutdown()
