-- `data_quality` of as-of date $as_of (SPEC §9): everything the run ($run_id) saw.
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
    error
from manifest
where run_id = $run_id
order by processed_at, extract_kind, file_name, status
