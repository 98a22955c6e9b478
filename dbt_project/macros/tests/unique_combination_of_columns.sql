{#- dbt_utils is not installable offline; this is the compound-key uniqueness test we need.
    On a daily model a build rebuilt in windows it reads only those days (get_where_subquery
    in macros/incremental_rebuild_from.sql): every key holds the day, and delete+insert by
    day left the other days as they were tested. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{%- set column_list = combination_of_columns | join(', ') %}
select
    {{ column_list }},
    count(*) as duplicate_rows
from {{ model }}
group by {{ column_list }}
having count(*) > 1
{% endtest %}
