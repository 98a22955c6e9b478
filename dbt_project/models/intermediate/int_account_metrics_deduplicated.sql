-- API observations (raw.platform_metrics) and imported history (raw.imported_metrics)
-- can both cover an account on the same day; the latest observation wins. Rows without
-- status ok carry no counts, so they are dropped here and such a day is treated as
-- missing (gap-filled downstream) rather than as zero followers. An X account landed as
-- protected with its counts (before X's protected accounts were read as ok: their counts
-- are public) is counted too.
--
-- Incremental like the reach facts: a daily build redoes the last gap_fill_days +
-- late_data_days days of snapshots, and the days of raw rows loaded since the last build.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='snapshot_date',
        pre_hook="{{ clear_rebuilt_days('snapshot_date') }}",
        on_schema_change='fail',
    )
}}
{%- set windows = rebuild_windows(date_column='snapshot_date') %}
{%- do record_rebuild_windows(windows) %}
with

api_metrics as (
    select * from {{ ref('stg_platforms__metrics') }}
),

imported_metrics as (
    select * from {{ ref('stg_history__imported_metrics') }}
),

imports as (
    select * from {{ ref('stg_history__imports') }}
),

-- An imported count describes its whole day: it is dated midnight UTC, so an API
-- observation later that day wins over it.
imported as (
    select
        imported_metrics.platform,
        imported_metrics.snapshot_date,
        imported_metrics.account_handle,
        cast(null as varchar) as account_id,
        'ok' as account_status,
        imported_metrics.followers,
        imported_metrics.following,
        imported_metrics.posts,
        cast(imported_metrics.snapshot_date as timestamp) at time zone 'UTC' as observed_at,
        'import' as metric_source,
        imports.loaded_at,
        imports.is_synthetic
    from imported_metrics
    inner join imports on imported_metrics.import_id = imports.import_id
),

metrics as (
    select
        platform,
        snapshot_date,
        account_handle,
        account_id,
        account_status,
        followers,
        following,
        posts,
        observed_at,
        metric_source,
        loaded_at,
        is_synthetic
    from api_metrics
    union all
    select * from imported
),

counted as (
    select * from metrics
    where
        (account_status = 'ok' or (account_status = 'protected' and followers is not null))
        and {{ in_windows('snapshot_date', windows) }}
),

deduplicated as (
    select
        platform,
        account_handle,
        snapshot_date,
        account_id,
        followers,
        following,
        posts,
        observed_at,
        metric_source,
        loaded_at,
        is_synthetic
    from counted
    -- One account whatever the case of its handle (the roster's spelling changed between
    -- two observations of the day). Ties (one import giving an account's day twice) go to
    -- the larger counts, so that every build keeps the same row.
    qualify row_number() over (
        partition by platform, lower(account_handle), snapshot_date
        order by
            observed_at desc, loaded_at desc, metric_source asc,
            followers desc, following desc nulls last, posts desc nulls last, account_handle asc
    ) = 1
)

-- In day order, like the facts: the daily build's filters on the days it rebuilds then
-- skip the other row groups instead of reading (and caching) the whole history.
select * from deduplicated
order by snapshot_date
