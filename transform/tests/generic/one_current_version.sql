{#- Fails once for every key whose versions in the model have more than one current
    (`column_name` true), or none while `current` (the current-state table) holds the key;
    a key deleted at the source has no current version. The failing row carries the key
    and its count of current versions. -#}
{% test one_current_version(model, column_name, key, current) %}
select coalesce(f.{{ key }}, c.{{ key }}) as {{ key }},
       count(*) filter (where f.{{ column_name }}) as true_rows
from {{ model }} as f
full join (select {{ key }} from {{ current }}) as c on c.{{ key }} = f.{{ key }}
group by coalesce(f.{{ key }}, c.{{ key }}), c.{{ key }}
having count(*) filter (where f.{{ column_name }}) > 1
    or (c.{{ key }} is not null and count(*) filter (where f.{{ column_name }}) = 0)
{% endtest %}
