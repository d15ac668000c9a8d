{#- Fails once for every group (the columns of `group_by`) whose boolean `column_name` is
    true in any number of rows but one: none (no current version) or several (two
    current versions); the failing row carries the group and that count. -#}
{% test exactly_one_true_per_group(model, column_name, group_by) %}
select {{ group_by | join(', ') }}, count(*) filter (where {{ column_name }}) as true_rows
from {{ model }}
group by {{ group_by | join(', ') }}
having count(*) filter (where {{ column_name }}) <> 1
{% endtest %}
