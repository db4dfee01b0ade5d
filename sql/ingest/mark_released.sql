-- Marks the quarantine rows whose row reached `batch` (and so the current or audit
-- table) as released by this run. A released row's lineage is its quarantine row's
-- delivery: file name, the time that delivery was read, and line.
update quarantine
set released_by_run = $run_id, released_at = $now
from (
    select c.run_id, c.file_sha256, c.line
    from release_candidates as c
    semi join batch as b
        on b._file = c.file_name and b._arrived_at = c.quarantined_at and b._line = c.line
) as released
where
    quarantine.extract_kind = $kind
    and quarantine.run_id = released.run_id
    and quarantine.file_sha256 = released.file_sha256
    and quarantine.line = released.line
