select
    payment_type_id,
    payment_type_name,
    deleted_at
from {{ totesys_latest('payment_type') }} as p
