-- The cross-platform rollup of fct_reach_by_country_sector_daily, in its own table so
-- neither table's sums count anything twice. An executive is active on a day with
-- followers on any platform; the median is over executives, each executive's platforms
-- summed first (a median over platform rows would count multi-platform executives twice).
-- Every group with a tracked executive appears on every day with reach data.
--
-- Incremental like fct_reach_by_country_sector_daily: from the day
-- fct_executive_reach_daily was rebuilt from in the same build at the latest, and from the
-- first day whose stored tracked counts no longer match dim_executive.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        pre_hook="{{ clear_rebuilt_days('metric_date') }}",
        on_schema_change='fail',
    )
}}
{%- set windows = upstream_windows(
    rebuild_windows(
        earlier_start_sql=tracked_counts_changed_from(),
        reach_days=(var('gap_fill_days') | int) + 28,
    ),
    'fct_executive_reach_daily',
) %}
{%- do record_rebuild_windows(windows) %}

with

executives as (
    select * from {{ ref('dim_executive') }}
),

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
    where {{ in_windows('metric_date', windows) }}
),

reach_dates as (
    select distinct metric_date from reach
),

tracked_executives as (
    select
        executives.executive_id,
        executives.country_code,
        executives.sector,
        executives.is_synthetic,
        reach_dates.metric_date
    from reach_dates
    inner join executives
        on {{ executive_version_valid_on('executives', 'reach_dates.metric_date') }}
),

-- Per executive and day across platforms: followers summed, synthetic when any of the
-- day's counts is.
executive_days as (
    select
        executive_id,
        metric_date,
        sum(followers) as followers,
        sum(followers_change_28d) as followers_change_28d,
        count(followers) > 0 as is_active,
        bool_or(is_synthetic) as has_synthetic_counts
    from reach
    group by executive_id, metric_date
),

tracked_days as (
    select
        tracked_executives.country_code,
        tracked_executives.sector,
        tracked_executives.metric_date,
        tracked_executives.executive_id,
        coalesce(executive_days.is_active, false) as is_active,
        executive_days.followers,
        executive_days.followers_change_28d,
        tracked_executives.is_synthetic
        or coalesce(executive_days.has_synthetic_counts, false) as is_synthetic
    from tracked_executives
    left join executive_days
        on
            tracked_executives.executive_id = executive_days.executive_id
            and tracked_executives.metric_date = executive_days.metric_date
),

final as (
    select
        country_code,
        sector,
        metric_date,
        count(*) as executives_tracked,
        count(*) filter (where is_active) as executives_active,
        100.0 * count(*) filter (where is_active) / count(*) as active_share_pct,
        -- DuckDB widens sums of bigint to hugeint, which pandas and most BI drivers reject.
        cast(coalesce(sum(followers) filter (where is_active), 0) as bigint)
            as total_followers,
        cast(median(followers) filter (where is_active) as double) as median_followers,
        cast(sum(followers_change_28d) filter (where is_active) as bigint)
            as followers_change_28d,
        100.0 * count(*) filter (where is_synthetic) / count(*) as synthetic_executives_pct
    from tracked_days
    group by country_code, sector, metric_date
)

-- In day order: a full build lays the days out in sequence, so the filters on recent
-- days of later daily builds and publishes skip the older row groups.
select * from final
order by metric_date
