"""Issue 12: the same flow on a Dask cluster publishes the same tables as the local run.

The bucket steps run on a real `distributed.LocalCluster` of two worker
processes through Prefect's DaskTaskRunner; the workers read and write the
bucket files only (the warehouse stays with the flow). Once with the bucket
files on the local disk, once in an S3 bucket served by a real S3-compatible
server (moto in server mode, started here) — not a mock of the client.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.flows.nightly import nightly
from customer_equity.schemas.outputs import OUTPUT_SCHEMAS
from tests.conftest import PUBLISHED_WITH_HOLDINGS, generated_project, read_table, write_config

pytestmark = pytest.mark.slow

AS_OF = date(2025, 12, 31)
BUCKET = "customer-equity-buckets"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_project(tmp_path_factory.mktemp("source"), customers=500, seed=31)


def _run(source: Path, root: Path, engine: str) -> Path:
    shutil.copytree(source / "inbox", root / "inbox")
    nightly(as_of=AS_OF, config=str(write_config(root, f"[engine]\n{engine}")))
    return root / "lake"


@pytest.fixture(scope="module")
def s3_endpoint(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on a free loopback port, with one empty bucket."""
    from moto.server import ThreadedMotoServer

    # Workers inherit the environment: credentials never travel as flow parameters.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch_module.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import s3fs

    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir(BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def local_lake(
    source: Path, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Path:
    return _run(source, tmp_path_factory.mktemp("local"), "buckets = 1\n")


@pytest.fixture(scope="module")
def dask_lake(
    source: Path, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Path:
    return _run(
        source,
        tmp_path_factory.mktemp("dask"),
        'buckets = 5\nexecutor = "dask"\ndask_workers = 2\n',
    )


@pytest.fixture(scope="module")
def dask_s3_lake(
    source: Path,
    tmp_path_factory: pytest.TempPathFactory,
    prefect_harness: None,
    s3_endpoint: str,
) -> Path:
    engine = (
        'buckets = 4\nexecutor = "dask"\ndask_workers = 2\n'
        f'bucket_storage = "s3://{BUCKET}/runs"\n'
        f'storage_options = {{ endpoint_url = "{s3_endpoint}" }}\n'
    )
    return _run(source, tmp_path_factory.mktemp("dask-s3"), engine)


def _sorted(lake: Path, table: str) -> pl.DataFrame:
    key = list(OUTPUT_SCHEMAS[table].metadata["key"])
    return read_table(lake, table).drop("as_of_date").sort(key, nulls_last=True)


# Generated projects have holdings: the wealth tables too.
TABLES = [t for t in PUBLISHED_WITH_HOLDINGS if t != "data_quality"]


@pytest.mark.parametrize("table", TABLES)
def test_a_dask_run_publishes_the_tables_of_the_local_run(
    local_lake: Path, dask_lake: Path, table: str
) -> None:
    assert _sorted(dask_lake, table).equals(_sorted(local_lake, table), null_equal=True)


@pytest.mark.parametrize("table", TABLES)
def test_bucket_files_in_s3_give_the_same_tables(
    local_lake: Path, dask_s3_lake: Path, table: str
) -> None:
    assert _sorted(dask_s3_lake, table).equals(_sorted(local_lake, table), null_equal=True)


def test_the_run_leaves_nothing_in_the_bucket_storage(dask_s3_lake: Path, s3_endpoint: str) -> None:
    import s3fs

    assert s3fs.S3FileSystem(endpoint_url=s3_endpoint).find(BUCKET) == []


def test_the_bucket_steps_ran_in_two_worker_processes(dask_lake: Path) -> None:
    """Each bucket step logs the process that ran it: two Dask workers, never this process."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterName

    quality = read_table(dask_lake, "data_quality")
    run = quality["run_id"][0]
    task_logs = LogFilter(name=LogFilterName(any_=["prefect.task_runs"]))
    messages: list[str] = []
    with get_client(sync_client=True) as client:
        while page := client.read_logs(log_filter=task_logs, limit=200, offset=len(messages)):
            messages.extend(log.message for log in page)
    steps = [message for message in messages if f"(run {run}," in message]
    workers = {message.split("worker ", 1)[1].split(",")[0] for message in steps}
    per_step = Counter(message.split(" bucket ", 1)[0] for message in steps)
    # measured, valued, tiered: every bucket once; wealth: each bucket that has holdings
    assert {s: per_step[s] for s in ("measured", "valued", "tiered")} == dict.fromkeys(
        ("measured", "valued", "tiered"), 5
    )
    assert set(per_step) == {"measured", "valued", "tiered", "wealth"}
    holders = sum(
        int(message.split(": ", 1)[1].split(" customers", 1)[0].replace(",", ""))
        for message in steps
        if message.startswith("wealth ")
    )
    assert holders == read_table(dask_lake, "customer_holdings").height
    assert len(workers) == 2, workers
    assert not any(worker.endswith(f":{os.getpid()}") for worker in workers)
