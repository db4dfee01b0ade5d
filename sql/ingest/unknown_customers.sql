-- Lines of the staged batch whose customer is not in the customers table (SPEC §2
-- unknown_customers = "quarantine"); a missing customer_id is its own reason.
select _line
from staged_batch
where customer_id is not null
    and customer_id not in (select customer_id from customers)
