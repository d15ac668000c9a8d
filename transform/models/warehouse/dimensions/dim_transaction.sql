select
    transaction_id,
    transaction_type,
    sales_order_id,
    purchase_order_id,
    deleted_at
from {{ totesys_latest('transaction') }} as t
