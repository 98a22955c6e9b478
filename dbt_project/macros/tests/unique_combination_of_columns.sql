{#- dbt_utils is not installable offline; this is the compound-key uniqueness test we need.
    recent_days_of names the date column of an incremental model: a daily build then checks
    the last var('key_test_recent_days') days, the ones it rewrote (delete+insert by date
    leaves older days as they were tested), and a --full-refresh checks every row. -#}
{% test unique_combination_of_columns(model, combination_of_columns, recent_days_of=none) %}
{%- set column_list = combination_of_columns | join(', ') %}
select
    {{ column_list }},
    count(*) as duplicate_rows
from {{ model }}
{{ recent_days_filter(model, recent_days_of) }}
group by {{ column_list }}
having count(*) > 1
{% endtest %}

{% macro recent_days_filter(model, date_column) -%}
    {%- if date_column and not flags.FULL_REFRESH -%}
        where {{ date_column }} >= (select max({{ date_column }}) from {{ model }})
        - {{ var('key_test_recent_days') }}
    {%- endif -%}
{%- endmacro %}
