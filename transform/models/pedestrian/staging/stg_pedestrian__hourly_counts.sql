-- Every hourly count, with its sensor's place name. Counts of sensors that have no
-- location row keep their rows (left join) and are named 'sensor <location_id>'.
-- pedestrian_count is NULL where the portal left the count empty (kept, so the warning
-- test can report it; the marts leave it out of totals).
select
    c.location_id,
    coalesce(l.sensor_description, 'sensor ' || c.location_id) as location_name,
    l.location_id is not null as has_location,
    c.sensing_date,
    c.hourday,
    c.direction_1 as direction_1_count,
    c.direction_2 as direction_2_count,
    c.pedestriancount as pedestrian_count,
    c.portal_records,
    c.sensor_name
from {{ source('pedestrian', 'hourly_counts') }} as c
left join {{ ref('stg_pedestrian__sensor_locations') }} as l
    on l.location_id = c.location_id
