-- The currency's name from its ISO 4217 code; an unknown code gets a NULL name (and the
-- tests on currency_code and currency_name fail on it).
select
    currency_id,
    currency_code,
    case currency_code
        when 'GBP' then 'British pound sterling'
        when 'USD' then 'United States dollar'
        when 'EUR' then 'Euro'
    end as currency_name,
    deleted_at
from {{ totesys_latest('currency') }} as c
