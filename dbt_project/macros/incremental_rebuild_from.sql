{#- The days an incremental build of a daily model recomputes: a list of windows
    [first day, last day or none for "to the end"] as 'yyyy-mm-dd' strings, sorted and
    disjoint, or none for a full build. Always the last gap_fill_days + late_data_days days
    (a late observation reaches every gap-filled day it feeds); earlier_start_sql can add
    an open window from an earlier day (e.g. when attribution changed); passed_windows()
    (the days of raw rows loaded since the last build, such as an imported month) adds
    closed windows, each lengthened by reach_days,
    the days after a changed raw day that this model derives from it (gap fill, changes
    over 28 days). Computed before the model's SQL runs so the filters are constants that
    DuckDB pushes down to the scans. -#}
{% macro rebuild_windows(date_column='metric_date', earlier_start_sql=none, reach_days=0) %}
    {#- Unit tests have no target relation to read; they test the full-build SQL. -#}
    {%- if not execute or model.resource_type == 'unit_test' or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback_days = (var('gap_fill_days') | int) + (var('late_data_days') | int) -%}
    {%- set earlier = '(' ~ earlier_start_sql ~ ')' if earlier_start_sql else 'null' -%}
    {%- set query -%}
        select
            cast(max({{ date_column }}) - {{ lookback_days }} as varchar),
            cast({{ earlier }} as varchar)
        from {{ this }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set windows = [[row[0], none]] -%}
    {%- if row[1] is not none -%}
        {%- do windows.append([row[1], none]) -%}
    {%- endif -%}
    {%- for window in passed_windows() -%}
        {%- do windows.append([
            window[0], shift_day(window[1], reach_days) if window[1] else none
        ]) -%}
    {%- endfor -%}
    {{ return(merge_windows(windows)) }}
{% endmacro %}


{#- The windows of raw rows to rebuild, [[first, last], ...]: the var rebuild_windows when
    given (`dbt build --vars`, by hand), else what warehouse_build passes in the environment
    variable SLW_DBT_REBUILD_WINDOWS (dbt_runner.py). Read when the models run, not when
    dbt parses them: a var that changes every day would make dbt parse the whole project
    again for each build. -#}
{% macro passed_windows() %}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set given = var('rebuild_windows', none) -%}
    {%- if given is none -%}
        {%- set passed = env_var('SLW_DBT_REBUILD_WINDOWS', '') -%}
        {%- set given = fromjson(passed) if passed else none -%}
        {%- if passed and given is none -%}
            {%- do exceptions.raise_compiler_error(
                'SLW_DBT_REBUILD_WINDOWS is not JSON: ' ~ passed
                ~ ' (expected [["yyyy-mm-dd", "yyyy-mm-dd"], ...])'
            ) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(given or []) }}
{% endmacro %}


{#- `day` ('yyyy-mm-dd') moved by `days` days. -#}
{% macro shift_day(day, days) %}
    {{ return((
        modules.datetime.date.fromisoformat(day) + modules.datetime.timedelta(days=days)
    ).isoformat()) }}
{% endmacro %}


{#- Windows sorted and merged: windows less than gap_fill_days + 28 days apart become one
    (the input a model reads before each window, up to 28 days of changes, then never
    overlaps the previous window, and one scan beats two close ones). -#}
{% macro merge_windows(windows) %}
    {%- set gap = (var('gap_fill_days') | int) + 28 -%}
    {%- set merged = [] -%}
    {%- for window in windows | sort(attribute='0') -%}
        {%- set last = merged[-1] if merged else none -%}
        {%- if last and (last[1] is none or window[0] <= shift_day(last[1], gap + 1)) -%}
            {%- do merged.pop() -%}
            {%- do merged.append([
                last[0], none if last[1] is none or window[1] is none
                else [last[1], window[1]] | max
            ]) -%}
        {%- else -%}
            {%- do merged.append([window[0], window[1]]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(merged) }}
{% endmacro %}


{#- SQL: `column` lies in one of `windows` (each started `before` days earlier, for a
    model that reads input before the days it writes); true for a full build. -#}
{% macro in_windows(column, windows, before=0) %}
    {%- if windows is none -%}
        {{ return('true') }}
    {%- endif -%}
    {%- set conditions = [] -%}
    {%- for window in windows -%}
        {%- set condition = column ~ " >= date '" ~ shift_day(window[0], -before) ~ "'" -%}
        {%- if window[1] -%}
            {%- set condition = condition ~ " and " ~ column ~ " <= date '" ~ window[1] ~ "'" -%}
        {%- endif -%}
        {%- do conditions.append('(' ~ condition ~ ')') -%}
    {%- endfor -%}
    {{ return('(' ~ conditions | join(' or ') ~ ')') }}
{% endmacro %}


{#- SQL rows (window_start, window_end) of `windows`, each started `before` days earlier
    (window_end null: to the end); one open row from the first day for a full build. -#}
{% macro windows_values(windows, before=0) %}
    {%- set rows = [] -%}
    {%- for window in windows or [['0001-01-01', none]] -%}
        {%- set start = window[0] if windows is none else shift_day(window[0], -before) -%}
        {%- do rows.append(
            "(date '" ~ start ~ "', "
            ~ ("date '" ~ window[1] ~ "'" if window[1] else "cast(null as date)") ~ ")"
        ) -%}
    {%- endfor -%}
    {{ return('values ' ~ rows | join(', ')) }}
{% endmacro %}


{#- Record the windows this model recomputes in this invocation (one row per window; one
    row with a null first day: all of it), for the models built from it (upstream_windows),
    its tests (get_where_subquery) and the publish and the quality gate. -#}
{% macro record_rebuild_windows(windows) %}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for window in windows or [] -%}
        {%- do rows.append(
            "('" ~ invocation_id ~ "', '" ~ this.identifier ~ "', date '" ~ window[0] ~ "', "
            ~ ("date '" ~ window[1] ~ "'" if window[1] else "null") ~ ", now())"
        ) -%}
    {%- else -%}
        {%- do rows.append(
            "('" ~ invocation_id ~ "', '" ~ this.identifier ~ "', null, null, now())"
        ) -%}
    {%- endfor -%}
    {%- do ensure_incremental_windows() -%}
    {%- do run_query(
        "delete from audit.incremental_windows where invocation_id = '" ~ invocation_id
        ~ "' and model_name = '" ~ this.identifier ~ "'; "
        ~ "insert into audit.incremental_windows "
        ~ "(invocation_id, model_name, rebuild_from, rebuild_to, recorded_at) values "
        ~ rows | join(', ')
    ) -%}
{% endmacro %}


{#- The windows `model_name` recorded in this invocation: none when it was not built in
    it, [none] when it was built whole, else its windows. -#}
{% macro recorded_windows(model_name) %}
    {%- do ensure_incremental_windows() -%}
    {%- set rows = run_query(
        "select cast(rebuild_from as varchar), cast(rebuild_to as varchar) "
        ~ "from audit.incremental_windows where invocation_id = '" ~ invocation_id
        ~ "' and model_name = '" ~ model_name ~ "'"
    ).rows -%}
    {%- if rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set windows = [] -%}
    {%- for row in rows -%}
        {%- if row[0] is none -%}
            {{ return([none]) }}
        {%- endif -%}
        {%- do windows.append([row[0], row[1]]) -%}
    {%- endfor -%}
    {{ return(windows) }}
{% endmacro %}


{#- `windows` joined with the windows `upstream` recomputed in this invocation, each
    lengthened by reach_days (the days after an input day that this model derives from
    it): a model must redo every day its input changed. None (a full build) when the
    upstream model was built whole; `windows` unchanged when it was not built. -#}
{% macro upstream_windows(windows, upstream, reach_days=0) %}
    {%- if not execute or model.resource_type == 'unit_test' or windows is none -%}
        {{ return(windows) }}
    {%- endif -%}
    {%- set recorded = recorded_windows(upstream) -%}
    {%- if recorded is none -%}
        {{ return(windows) }}
    {%- elif recorded[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set joined = [] -%}
    {%- for window in windows -%}
        {%- do joined.append(window) -%}
    {%- endfor -%}
    {%- for window in recorded -%}
        {%- do joined.append([
            window[0], shift_day(window[1], reach_days) if window[1] else none
        ]) -%}
    {%- endfor -%}
    {{ return(merge_windows(joined)) }}
{% endmacro %}


{#- dbt's own bookkeeping, written and read only by the macros above: this is the one
    statement of the table (the raw contract, include/social_leadership/raw_contract.py,
    holds what the Python loaders write). rebuild_to came later: older warehouses get it
    added (null: to the end, what their rows meant). -#}
{% macro ensure_incremental_windows() %}
    {%- do run_query(
        "create schema if not exists audit; create table if not exists "
        ~ "audit.incremental_windows (invocation_id varchar not null, model_name varchar "
        ~ "not null, rebuild_from date, recorded_at timestamptz not null, rebuild_to date); "
        ~ "alter table audit.incremental_windows add column if not exists rebuild_to date"
    ) -%}
{% endmacro %}


{#- Tests of a daily model that this invocation rebuilt in windows read only those days
    (delete+insert by day leaves the other days as their earlier tests passed them; every
    test key holds the day). A full build, a model not built in this invocation (dbt test)
    and every other model are tested whole. dbt calls this for the tested model of every
    generic test (its own `where` config still applies). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set conditions = [where] if where else [] -%}
    {%- set date_column = daily_model_date_column(relation) -%}
    {%- if date_column and execute and not flags.FULL_REFRESH -%}
        {%- set windows = recorded_windows(relation.identifier) -%}
        {%- if windows and windows[0] is not none -%}
            {%- do conditions.append(in_windows(date_column, windows)) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}


{#- The day column of an incremental daily model of this project (its unique_key, the day
    delete+insert replaces), or none for any other relation. -#}
{% macro daily_model_date_column(relation) %}
    {%- if not execute or relation is string or relation.identifier is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.package_name == project_name
        and node.alias == relation.identifier
        and node.config.materialized == 'incremental' -%}
        {{ return(node.config.unique_key) }}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}


{#- The pre-hook of each daily incremental model: the days it recomputes are deleted before
    its new rows go in, as a full refresh would have them. delete+insert by day deletes only
    the days its new rows hold: a day the rebuild leaves empty (the only account of it
    renamed, left the roster, or now not found) kept its old rows, wrong or pointing at an
    executive version no longer there. Whole when the model recomputes every day (an
    upstream model built whole); nothing for a build that replaces the table. -#}
{% macro clear_rebuilt_days(date_column) %}
    {%- if not execute or not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set windows = recorded_windows(this.identifier) -%}
    {%- if windows is none -%}
        {{ return('') }}
    {%- elif windows[0] is none -%}
        {{ return('delete from ' ~ this) }}
    {%- endif -%}
    {{ return('delete from ' ~ this ~ ' where ' ~ in_windows(date_column, windows)) }}
{% endmacro %}
