-- Ties: the higher total first, then the lower location_id; row_number() makes the
-- order total, so each date has exactly min(10, sensors counted that day) rows.
with ranked as (
    select
        sensing_date,
        row_number() over (
            partition by sensing_date
            order by pedestrian_count desc, location_id asc
        )::integer as rank,
        location_id,
        location_name,
        pedestrian_count
    from {{ ref('pedestrian_daily_totals') }}
)

select sensing_date, rank, location_id, location_name, pedestrian_count
from ranked
where rank <= 10
