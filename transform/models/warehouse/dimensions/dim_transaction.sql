select
    transaction_id,
    transaction_type,
    sales_order_id,
    purchase_order_id
from {{ source('totesys', 'transaction') }}
