-- Over the hours with a count: an empty count (NULL) is left out, not taken as 0; a
-- sensor-day with no count at all has no row. The repeated hour when clocks go back is
-- one row counting two hours (portal_records), so a day counts up to 25 hours.
select
    location_id,
    max(location_name) as location_name,
    sensing_date,
    sum(pedestrian_count)::bigint as pedestrian_count,
    sum(portal_records)::integer as hours_counted
from {{ ref('stg_pedestrian__hourly_counts') }}
where pedestrian_count is not null
group by location_id, sensing_date
