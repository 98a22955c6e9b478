{#- Post-hook of a daily model that a full build writes in build order (its window
    functions group by series): rewrite the table in day order, so the filters of later
    daily builds on their recent days skip the older row groups instead of reading (and
    caching) the whole history. Sorting the whole result in the model ran a 3-year build
    out of DuckDB's memory limit, so the rows are copied var('day_order_chunk_days') days
    at a time, each chunk sorted on its own. Only after a build that wrote the model whole: an
    incremental build appends its few rebuilt days after the others. -#}
{% macro rewrite_in_day_order(date_column='metric_date') %}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set windows = recorded_windows(this.identifier) -%}
    {%- if windows is none or windows[0] is not none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set bounds = run_query(
        "select cast(min(" ~ date_column ~ ") as varchar), cast(max(" ~ date_column
        ~ ") as varchar) from " ~ this
    ).rows[0] -%}
    {%- if bounds[0] is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set chunk_days = var('day_order_chunk_days') | int -%}
    {%- set ordered = this.incorporate(path={'identifier': this.identifier ~ '__day_ordered'}) -%}
    {%- set statements = [
        'drop table if exists ' ~ ordered,
        'create table ' ~ ordered ~ ' as select * from ' ~ this ~ ' limit 0',
    ] -%}
    {%- set first_day = modules.datetime.date.fromisoformat(bounds[0]) -%}
    {%- set days = (modules.datetime.date.fromisoformat(bounds[1]) - first_day).days -%}
    {%- for chunk in range(days // chunk_days + 1) -%}
        {%- do statements.append(
            'insert into ' ~ ordered ~ ' select * from ' ~ this ~ ' where ' ~ date_column
            ~ " >= date '" ~ shift_day(bounds[0], chunk * chunk_days) ~ "' and "
            ~ date_column ~ " < date '" ~ shift_day(bounds[0], (chunk + 1) * chunk_days)
            ~ "' order by " ~ date_column
        ) -%}
    {%- endfor -%}
    {#- Rows without a day (none in this project's daily models) would be lost. -#}
    {%- do statements.append(
        'insert into ' ~ ordered ~ ' select * from ' ~ this ~ ' where ' ~ date_column
        ~ ' is null'
    ) -%}
    {%- do statements.append('drop table ' ~ this) -%}
    {%- do statements.append(
        'alter table ' ~ ordered ~ ' rename to ' ~ adapter.quote(this.identifier)
    ) -%}
    {{ return(statements | join(';\n') ~ ';') }}
{% endmacro %}
