-- Quarantined rows of one kind that may load now (SPEC §2 "Quarantine is not forever"):
-- still held, quarantined by an earlier run (this run's own checks just ran), and held
-- only for reasons that can clear later ($reasons: an unknown customer, a date in the
-- future; `schemas.inputs.releasable_reasons`). A row with any other reason as well
-- (a foreign currency, ...) stays held for good.
-- `_row` numbers them for reading in batches.
create or replace temp table release_candidates as
select
    row_number() over (order by quarantined_at, file_name, line) as _row,
    run_id,
    file_name,
    file_sha256,
    line,
    quarantined_at,
    record,
    extra_attributes
from quarantine
where
    extract_kind = $kind
    and released_by_run is null
    and run_id <> $run_id
    and list_bool_and(
        list_transform(string_split(reason, '; '), lambda r: list_contains($reasons, r))
    )
