-- Tables that record what each run saw; created once per warehouse file.
-- Columns added after the first release are also in `migrations.sql`, so
-- that warehouses created before them open.
create table if not exists manifest (
    run_id varchar not null,
    extract_kind varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    status varchar not null,  -- loaded | skipped | failed | waiting | released
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_replaced bigint not null,
    rows_duplicate bigint not null,
    rows_quarantined bigint not null,
    error varchar,
    processed_at timestamptz not null,
    -- quarantined rows of this file (held since an earlier run) loaded by this run
    rows_released bigint default 0,
    -- the as-of date of the run (null: an ingest outside a nightly run)
    as_of_date date
);

create table if not exists quarantine (
    run_id varchar not null,
    extract_kind varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    line bigint not null,
    reason varchar not null,
    record varchar not null,  -- the source row as JSON text, as delivered
    quarantined_at timestamptz not null,
    -- extra columns kept from the row (extracts.<kind>.extra_columns = "keep"), as JSON
    extra_attributes varchar,
    -- the run that loaded the row once its reason had cleared (null: still held)
    released_by_run varchar,
    released_at timestamptz
);
