-- Columns the bookkeeping tables gained after warehouses existed (see bookkeeping.sql).
alter table manifest add column if not exists rows_released bigint default 0;
alter table manifest add column if not exists as_of_date date;
alter table quarantine add column if not exists extra_attributes varchar;
alter table quarantine add column if not exists released_by_run varchar;
alter table quarantine add column if not exists released_at timestamptz;
