-- Ranks the monthly totals (all hours of the month). Ties: the higher total first, then
-- the lower location_id; exactly min(10, sensors counted that month) rows per month.
with ranked as (
    select
        month_start,
        row_number() over (
            partition by month_start
            order by pedestrian_count desc, location_id asc
        )::integer as rank,
        location_id,
        location_name,
        pedestrian_count
    from {{ ref('pedestrian_monthly_totals') }}
)

select month_start, rank, location_id, location_name, pedestrian_count
from ranked
where rank <= 10
