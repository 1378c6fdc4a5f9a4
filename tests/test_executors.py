import math
import os

import pytest

from openmm_physembed import executors
from openmm_physembed.executors import SerialExecutor, make_executor


def _square_root(x):
    return math.sqrt(x)


def _fail(x):
    raise ValueError(f"bad {x}")


def test_local_process_pool_runs_jobs():
    with make_executor(max_workers=2) as executor:
        assert list(executor.map(_square_root, [1.0, 4.0, 9.0])) == [1.0, 2.0, 3.0]


def test_serial_executor_propagates_errors():
    future = SerialExecutor().submit(_fail, 3)
    with pytest.raises(ValueError, match="bad 3"):
        future.result()


def test_dask_cluster_through_scheduler_address():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with make_executor(dask_scheduler=cluster.scheduler_address) as executor:
            futures = [executor.submit(_square_root, float(x * x)) for x in range(5)]
            assert [f.result() for f in futures] == [0.0, 1.0, 2.0, 3.0, 4.0]


def _thread_settings(_):
    import os

    import openmm

    return int(openmm.Platform.getPlatformByName("CPU").getPropertyDefaultValue("Threads")), os.environ["OMP_NUM_THREADS"]


def test_pool_workers_share_the_cores_unless_the_user_chose(monkeypatch):
    import os

    monkeypatch.delenv("OPENMM_CPU_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    workers = 2
    share = max(1, os.cpu_count() // workers)
    with make_executor(max_workers=workers) as executor:
        settings = list(executor.map(_thread_settings, range(workers)))
    # OpenMM gets at least two threads (its one-thread CPU path is pathologically slow for the CSO).
    assert settings == [(max(2, share), str(share))] * workers
    monkeypatch.setenv("OPENMM_CPU_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    with make_executor(max_workers=workers) as executor:
        assert list(executor.map(_thread_settings, range(workers))) == [(3, "5")] * workers


def test_cpu_platform_never_runs_on_one_thread():
    import openmm

    from openmm_physembed.simulation.platforms import choose_platform, platform_properties

    cpu = openmm.Platform.getPlatformByName("CPU")
    before = cpu.getPropertyDefaultValue("Threads")
    try:
        cpu.setPropertyDefaultValue("Threads", "1")  # as OPENMM_CPU_THREADS=1 would
        assert platform_properties(choose_platform("CPU")) == {"Threads": "2"}
        assert cpu.getPropertyDefaultValue("Threads") == "1"  # a Context property, not a new default
        cpu.setPropertyDefaultValue("Threads", "5")
        assert platform_properties(choose_platform("CPU")) == {"Threads": "5"}
    finally:
        cpu.setPropertyDefaultValue("Threads", before)


def _pid(_):
    import os
    import time

    time.sleep(0.2)  # long enough that a second worker, if there were one, would take a job
    return os.getpid()


def test_default_pool_gives_every_worker_two_cores(monkeypatch):
    from openmm_physembed.executors import default_workers

    monkeypatch.setattr(executors, "gpu_count", lambda: 0)  # GPU machines: one per GPU (next test)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert default_workers() == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert default_workers() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with make_executor() as executor:
        assert len(set(executor.map(_pid, range(4)))) == 1


# ---------------------------------------------------------------- process pools on GPU machines
def test_default_workers_one_per_gpu(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(executors, "gpu_count", lambda: 2)
    assert executors.default_workers() == 2
    assert executors.default_workers(gpu=False) == 8  # CPU-only jobs: two cores per worker
    monkeypatch.setattr(executors, "gpu_count", lambda: 0)
    assert executors.default_workers() == 8
    assert [executors.gpu_for_worker(k, ["0", "1"]) for k in range(5)] == ["0", "1", "0", "1", "0"]
    assert executors.gpu_for_worker(3, []) is None


def test_gpu_count_respects_hidden_devices(monkeypatch):
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert executors.gpu_count() == 0


def _worker_gpu(_):
    import time

    time.sleep(0.3)  # long enough that the second worker takes jobs too
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_pool_workers_each_see_their_own_gpu(monkeypatch):
    """Two fake GPUs (the parent restricted to physical GPUs 3 and 5): each worker sees one of them,
    different workers different ones; a CPU-only pool leaves the parent's setting alone."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setattr(executors, "gpu_count", lambda: 2)
    with executors.make_executor() as pool:  # default size: one worker per GPU
        seen = set(pool.map(_worker_gpu, range(6)))
    pids, gpus = {pid for pid, _ in seen}, {gpu for _, gpu in seen}
    assert gpus <= {"3", "5"}
    assert len(seen) == len(pids) == len(gpus)  # each worker keeps one GPU, never shared
    with executors.make_executor(max_workers=1, gpu=False) as pool:
        assert set(dict(pool.map(_worker_gpu, range(1))).values()) == {"3,5"}
