{#- The latest values of every entity of a totesys table: the current-state rows, and for
    a key deleted at the source the last version its delete record holds, so the facts'
    earlier versions still find it (their relationships hold). `deleted_at`: NULL while
    the key is at the source, else the pass that found it gone. A subquery; columns are
    the current-state table's plus deleted_at. -#}
{% macro totesys_latest(table) -%}
{%- set key = table ~ '_id' -%}
{%- set current = source('totesys', table) -%}
{%- set history = source('totesys_history', table) -%}
{%- set columns = adapter.get_columns_in_relation(current) | map(attribute='name') | list -%}
(
    select {{ columns | join(', ') }}, null::timestamptz as deleted_at
    from {{ current }}
    union all
    (
        select distinct on (h.{{ key }}) {{ columns | join(', ') }},
            h.dp__deleted_at as deleted_at
        from {{ history }} as h
        where h.dp__deleted_at is not null
            and not exists (select from {{ current }} as c where c.{{ key }} = h.{{ key }})
        order by h.{{ key }}, h.dp__deleted_at desc
    )
)
{%- endmacro %}
