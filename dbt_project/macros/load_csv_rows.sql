-- dbt-duckdb's seed load (its duckdb__load_csv_rows, which this one overrides: the root
-- project's macro comes first), with the seed file's path and the delimiter written as
-- SQL literals. dbt-duckdb puts them between quotes as they are: a project under a folder
-- whose name holds a quote (/home/o'brien/...) failed every seed with a syntax error.
{% macro duckdb__load_csv_rows(model, agate_table) %}
    {%- if not config.get('fast', true) -%}
        {{ return(dbt.default__load_csv_rows(model, agate_table)) }}
    {%- endif -%}
    {%- set seed_file_path = adapter.get_seed_file_path(model) -%}
    {%- set delimiter = config.get('delimiter', ',') -%}
    {%- set sql -%}
        copy {{ this.render() }} from '{{ seed_file_path | replace("'", "''") }}'
        (format csv, header true, delimiter '{{ delimiter | replace("'", "''") }}')
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {{ return(sql) }}
{% endmacro %}
