-- Parsing rules shared by every staging model; created as temporary macros on
-- each warehouse connection so that the rule for a date or number is written once.
-- Only ASCII blanks (space, tab, CR, LF) are padding; a no-break space or an
-- ideographic space is data and stays, byte for byte (ids must survive).
create or replace temp macro ascii_trim(value) as trim(value, ' ' || chr(9) || chr(10) || chr(13));

create or replace temp macro clean_text(value) as nullif(ascii_trim(value), '');

-- A configured format first, then compact YYYYMMDD, then ISO 8601 date or timestamp.
-- A timestamp with a UTC offset is converted to the session time zone (the ingest
-- sets it to [quality] time_zone) before its date is taken; one without an offset
-- is read as written. CASE evaluates each branch only for its own rows: the
-- strptime and time-zone branches cost several times the plain date cast.
create or replace temp macro parse_date(value, date_format) as case
    when date_format is not null and try_strptime(ascii_trim(value), date_format) is not null
        then try_strptime(ascii_trim(value), date_format)::date
    when regexp_full_match(ascii_trim(value), '[0-9]{8}')
        then try_strptime(ascii_trim(value), '%Y%m%d')::date
    when length(ascii_trim(value)) <= 10 then try_cast(ascii_trim(value) as date)
    else try_cast(ascii_trim(value) as timestamptz)::date
end;

create or replace temp macro parse_number(value) as try_cast(ascii_trim(value) as double);
