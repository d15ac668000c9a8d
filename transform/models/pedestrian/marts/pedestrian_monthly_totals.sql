-- Over all hours of the calendar month (not the sum of a daily top 10) that have a
-- count: an empty count (NULL) is left out.
select
    location_id,
    max(location_name) as location_name,
    date_trunc('month', sensing_date)::date as month_start,
    sum(pedestrian_count)::bigint as pedestrian_count,
    count(distinct sensing_date)::integer as days_counted
from {{ ref('stg_pedestrian__hourly_counts') }}
where pedestrian_count is not null
group by location_id, date_trunc('month', sensing_date)
