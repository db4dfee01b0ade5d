-- Tables that record what each run saw; created once per warehouse file.
create table if not exists manifest (
    run_id varchar not null,
    extract_kind varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    status varchar not null,  -- loaded | skipped | failed
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_replaced bigint not null,
    rows_duplicate bigint not null,
    rows_quarantined bigint not null,
    error varchar,
    processed_at timestamptz not null
);

create table if not exists quarantine (
    run_id varchar not null,
    extract_kind varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    line bigint not null,
    reason varchar not null,
    record varchar not null,  -- the source row as JSON text, as delivered
    quarantined_at timestamptz not null
);
