-- Every address (latest values), as the places orders are delivered to.
select
    address_id as location_id,
    address_line_1,
    address_line_2,
    district,
    city,
    postal_code,
    country,
    phone,
    deleted_at
from {{ totesys_latest('address') }} as a
