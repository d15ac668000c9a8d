select
    location_id,
    max(location_name) as location_name,
    sensing_date,
    sum(pedestrian_count)::bigint as pedestrian_count,
    count(*)::integer as hours_counted
from {{ ref('stg_pedestrian__hourly_counts') }}
group by location_id, sensing_date
