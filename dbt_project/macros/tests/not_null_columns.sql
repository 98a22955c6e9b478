{#- Every column of a model that must not be null, checked in one test and one scan. A
    not_null test per column made one dbt node each, and a node costs dbt about 28 ms of
    its own work besides the query: the 139 column tests were over a quarter of a daily
    build's CPU. Returns one row per column holding nulls, with how many; the failures
    counted (fail_calc) are the null values, as the per-column tests counted them, so a
    warn_if or error_if threshold applies to the sum over the columns. On a daily model a
    build rebuilt in windows it reads only those days (get_where_subquery in
    macros/incremental_rebuild_from.sql), as every test of the model does. -#}
{% test not_null_columns(model, column_names) %}
{%- do config(fail_calc='coalesce(sum(null_rows), 0)')
    if column_names and column_names is not string
    else exceptions.raise_compiler_error(
        'not_null_columns: column_names must be a non-empty list of the columns to check'
    ) %}
with null_counts as (
    select
        {% for column_name in column_names -%}
            count(*) filter (where {{ adapter.quote(column_name) }} is null)
            as {{ adapter.quote(column_name) }}{{ "," if not loop.last }}
        {% endfor %}
    from {{ model }}
)

select
    column_name,
    null_rows
from (unpivot null_counts on columns(*) into name column_name value null_rows)
where null_rows > 0
{% endtest %}
