-- A SALE transaction names a sales order and no purchase order; a PURCHASE the reverse.
select transaction_id, transaction_type, sales_order_id, purchase_order_id
from {{ ref('dim_transaction') }}
where (transaction_type = 'SALE'
       and (sales_order_id is null or purchase_order_id is not null))
   or (transaction_type = 'PURCHASE'
       and (purchase_order_id is null or sales_order_id is not null))
