{#- One row per version of a payment (totesys_history.payment), the conventions of
    fact_sales_order: payment_record_id is the md5 of `<payment_id>|<last_updated>` as a
    uuid, stable across rebuilds; a payment_date text that is no calendar date becomes
    NULL. The bank account numbers are left out of the warehouse. -#}
select
    md5(payment_id || '|' || to_char(last_updated, 'YYYY-MM-DD HH24:MI:SS.MS'))::uuid
        as payment_record_id,
    payment_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    transaction_id,
    counterparty_id,
    payment_type_id,
    payment_amount,
    currency_id,
    paid,
    {{ text_to_date('payment_date') }} as payment_date,
    row_number() over (partition by payment_id order by last_updated desc) = 1 as is_current
from {{ source('totesys_history', 'payment') }}
