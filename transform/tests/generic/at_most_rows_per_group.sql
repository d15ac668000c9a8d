{#- Fails once for every group (the columns of `group_by`) holding more than `max_rows`
    rows; the failing row carries the group and its row count. -#}
{% test at_most_rows_per_group(model, group_by, max_rows) %}
select {{ group_by | join(', ') }}, count(*) as row_count
from {{ model }}
group by {{ group_by | join(', ') }}
having count(*) > {{ max_rows }}
{% endtest %}
