-- Parsing rules shared by every staging model; created as temporary macros on
-- each warehouse connection so that the rule for a date or number is written once.
create or replace temp macro clean_text(value) as nullif(trim(value), '');

-- A configured format first, then compact YYYYMMDD, then ISO 8601 date or timestamp.
create or replace temp macro parse_date(value, date_format) as coalesce(
    try_strptime(trim(value), date_format)::date,
    try_strptime(trim(value), '%Y%m%d')::date,
    try_cast(trim(value) as timestamp)::date
);

create or replace temp macro parse_number(value) as try_cast(trim(value) as double);
