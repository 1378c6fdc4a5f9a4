import math

import pytest

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
