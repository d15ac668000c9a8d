select
    payment_type_id,
    payment_type_name
from {{ source('totesys', 'payment_type') }}
