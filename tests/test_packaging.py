"""Issue 15 item 4: the installed package works from any folder.

The wheel installs one import name, `customer_equity`; the repository's `flows/`,
`transforms/`, `schemas/` and `sql/` become its subpackages. A work-pool worker runs
flows with its working directory on `sys.path`, where a folder's own `flows/` or
`schemas.py` used to shadow the pipeline's when they were top-level names too.

The slow test builds the wheel from this checkout, installs it without dependencies
into a fresh venv that borrows this venv's site-packages for them (a `.pth` line, after
its own site-packages, so the wheel's files win), and runs `customer-equity demo` in a
scratch folder full of decoys with that folder on `sys.path`.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from prefect.settings import get_current_settings

import customer_equity
import customer_equity.flows.nightly
from customer_equity import warehouse
from tests.conftest import PUBLISHED_TABLES
from tests.reliability.support import subprocess_env

REPO = Path(__file__).resolve().parents[1]
MAPPED_FOLDERS = ("flows", "transforms", "schemas", "sql")
DECOY = "raise ImportError('decoy {} imported from the working directory')\n"


def test_in_a_checkout_the_subpackages_are_the_repository_folders() -> None:
    assert Path(customer_equity.flows.nightly.__file__) == REPO / "flows" / "nightly.py"
    on_disk = (REPO / "sql" / "staging" / "stg_customers.sql").read_text(encoding="utf-8")
    assert warehouse.sql_text("staging/stg_customers") == on_disk
    assert warehouse.sql_statements("ingest/merge_batch")  # a file in a subfolder, split


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built with the venv's hatchling (no index, no isolation)."""
    out = tmp_path_factory.mktemp("wheel")
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "--wheel-dir", str(out), str(REPO)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("customer_equity-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv holding only the wheel; its dependencies come from this venv's site-packages."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    offline = ["--no-deps", "--no-index", "--quiet"]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *offline, str(wheel)],
        check=True,
        timeout=300,
    )
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Written after the install, so pip saw no customer-equity already installed. Only plain
    # paths: the editable install's own .pth in this venv is not run from a .pth-added path.
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site_packages) / "_dependencies_from_test_venv.pth").write_text(
        "".join(f"{path}\n" for path in ours), encoding="utf-8"
    )
    yield venv


def test_the_wheel_installs_one_import_name_and_every_sql_file(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {n for n in top_level if not n.endswith(".dist-info")} == {"customer_equity"}
    for folder in MAPPED_FOLDERS:
        in_repo = {
            p.relative_to(REPO).as_posix()
            for p in (REPO / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        in_wheel = {n.removeprefix("customer_equity/") for n in names}
        assert in_repo <= in_wheel, sorted(in_repo - in_wheel)
        assert not any(n.startswith(f"{folder}/") for n in names)  # no top-level copy
    assert not any("__pycache__" in n for n in names)


@pytest.fixture
def decoy_folder(tmp_path: Path) -> Path:
    """A working directory whose own `flows/`, `transforms/`, `schemas.py` and `sql/` would
    shadow the pipeline's under the old packaging."""
    for package in ("flows", "transforms"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(DECOY.format(package), encoding="utf-8")
    (tmp_path / "schemas.py").write_text(DECOY.format("schemas"), encoding="utf-8")
    (tmp_path / "sql" / "staging").mkdir(parents=True)
    (tmp_path / "sql" / "staging" / "stg_customers.sql").write_text(
        "select 'decoy sql' as customer_id\n", encoding="utf-8"
    )
    return tmp_path


def _python(venv: Path, code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv / "bin" / "python", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_the_installed_demo_runs_in_a_folder_full_of_decoys(
    fresh_venv: Path, decoy_folder: Path, prefect_harness: None
) -> None:
    api_url = get_current_settings().api.url
    assert api_url, "the Prefect test harness did not set an API URL"
    # The working directory first on sys.path, as a work-pool worker has it.
    env = {**subprocess_env(api_url), "PYTHONPATH": str(decoy_folder)}
    env.pop("VIRTUAL_ENV", None)

    # The decoys are live: under the old top-level names they win.
    for name in ("flows", "transforms", "schemas"):
        shadowed = _python(fresh_venv, f"import {name}", decoy_folder, env)
        assert shadowed.returncode != 0 and f"decoy {name} imported" in shadowed.stderr

    where = _python(
        fresh_venv,
        "import customer_equity as ce, customer_equity.flows.nightly as n\n"
        "from customer_equity import warehouse as w\n"
        "print(n.__file__); print(ce.__path__); print(w.sql_text('staging/stg_customers'))",
        decoy_folder,
        env,
    )
    assert where.returncode == 0, where.stderr
    nightly_file, package_path, sql = where.stdout.split("\n", 2)
    site_packages = next(p for p in Path(nightly_file).parents if p.name == "site-packages")
    assert site_packages.is_relative_to(fresh_venv)  # the wheel's copy, not this checkout's
    assert package_path == repr([str(site_packages / "customer_equity")])
    assert "decoy" not in sql and sql.strip()

    done = subprocess.run(
        [fresh_venv / "bin" / "customer-equity", "demo"],
        cwd=decoy_folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "decoy" not in output and "Traceback" not in output
    lake = decoy_folder / "data" / "lake"
    for table in PUBLISHED_TABLES:
        parts = list((lake / table / "as_of_date=2025-12-31").glob("*.parquet"))
        assert parts, f"{table} was not published"
    # Every customer of the generated extract got a metrics row (one per customer).
    metrics = pl.read_parquet(lake / "customer_metrics" / "as_of_date=2025-12-31" / "*.parquet")
    customers = pl.read_csv(decoy_folder / "data" / "inbox" / "customers" / "*.csv")
    assert metrics.height == customers.height > 0
    assert set(metrics["customer_id"]) == set(customers["customer_id"].cast(pl.String))
