{#- The last day of each year in `relation`'s `date_column`, as 'yyyy-mm-dd' strings in
    day order, looked up before the model's SQL runs so the model can filter on them as
    constants; an empty list when not executing (parse, sqlfluff) or in a unit test. -#}
{% macro year_end_days(relation, date_column='metric_date') %}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select cast(max(" ~ date_column ~ ") as varchar) as year_end from " ~ relation
        ~ " group by year(" ~ date_column ~ ") order by year_end"
    ).rows -%}
    {{ return(rows | map(attribute=0) | list) }}
{% endmacro %}

{#- The filter that reads only the days `last_days` (year_end_days) of a daily fact, as
    constants DuckDB checks against each row group's days; no filter for an empty list. -#}
{% macro where_year_end_days(last_days, date_column='metric_date') -%}
    {%- if not last_days -%}
        {{ return('') }}
    {%- endif -%}
    {%- set days = [] -%}
    {%- for year_end in last_days -%}
        {%- do days.append("date '" ~ year_end ~ "'") -%}
    {%- endfor -%}
    {{ return('where ' ~ date_column ~ ' in (' ~ days | join(', ') ~ ')') }}
{%- endmacro %}
