-- One customers extract cast to its typed form (PII columns never reach staging).
select
    _line,
    clean_text(customer_id) as customer_id,
    parse_date(created_date, $date_format) as created_date,
    clean_text(acquisition_channel) as acquisition_channel,
    clean_text(segment) as segment,
    clean_text(region) as region,
    clean_text(referred_by) as referred_by,
    lower(clean_text(status)) as status,
    parse_date(closed_date, $date_format) as closed_date,
    clean_text(risk_profile) as risk_profile,
    parse_number(aum) as aum,
    clean_text(created_date) as _raw_created_date,
    clean_text(closed_date) as _raw_closed_date,
    clean_text(aum) as _raw_aum
from extract
