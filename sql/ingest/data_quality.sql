-- `data_quality` of as-of date $as_of (SPEC §9): everything the latest run ($run_id) saw,
-- and every file that an earlier run of the same date loaded or released rows of, with
-- the counts of the run that did. A re-run of D (after a crash, a deleted partition, a
-- backfill) finds those files already loaded ("skipped"), so without the earlier rows
-- the load and quarantine counts of D would vanish from the lake.
select
    run_id,
    extract_kind,
    file_name,
    file_sha256,
    status,
    rows_read,
    rows_loaded,
    rows_replaced,
    rows_duplicate,
    rows_quarantined,
    coalesce(rows_released, 0) as rows_released,
    error,
    $run_id as latest_run_id
from manifest
where
    run_id = $run_id
    or (as_of_date = $as_of and status in ('loaded', 'released'))
order by processed_at, extract_kind, file_name, status
