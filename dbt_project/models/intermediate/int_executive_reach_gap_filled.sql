-- Platforms only report current counts, so a missed run leaves a hole that would make
-- country totals jump. A missing day repeats the last observation for at most
-- gap_fill_days days (is_observed = false); after that the series stops until the
-- account is observed again.
--
-- Incremental: a daily build redoes the days of rebuild_windows() (the late-data lookback,
-- and the days of raw rows loaded since the last build and the gap_fill_days after each,
-- which they can be carried into), reading observations from gap_fill_days before each
-- window, the oldest that can be carried into it. When
-- the roster's accounts changed (an account removed or renamed, an executive leaving or
-- coming back), the rebuild starts at the first day of any series that has to go or to
-- come back, as a full refresh would have it. The series and their first days come from
-- audit.reach_series_starts, which the post-hook keeps up to date from the rebuilt days.
--
-- A full build is rewritten in day order by its other post-hook (macros/day_ordered.sql),
-- so the daily builds of fct_executive_reach_daily, which read the recent days, skip the
-- row groups of older days.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        pre_hook="{{ clear_rebuilt_days('metric_date') }}",
        on_schema_change='fail',
        post_hook=["{{ rewrite_in_day_order() }}", "{{ record_series_starts() }}"],
    )
}}
{%- set gap_fill_days = var('gap_fill_days') | int %}
{%- set accounts_changed_from -%}
    with

    -- One row per stored series (macros/series_starts.sql), not the whole model.
    stored_accounts as (
        {{ stored_series_starts_sql() }}
    ),

    roster_accounts as (
        select * from {{ ref('stg_roster__accounts') }}
    ),

    -- Series of accounts the roster no longer gives their executive.
    gone as (
        select stored_accounts.first_date
        from stored_accounts
        anti join roster_accounts
            on
                stored_accounts.executive_id = roster_accounts.executive_id
                and stored_accounts.platform = roster_accounts.platform
                and stored_accounts.account_handle = roster_accounts.account_handle
    ),

    -- Roster accounts with observations but no series yet (added, renamed, back).
    unseen as (
        select roster_accounts.*
        from roster_accounts
        anti join stored_accounts
            on
                roster_accounts.executive_id = stored_accounts.executive_id
                and roster_accounts.platform = stored_accounts.platform
                and roster_accounts.account_handle = stored_accounts.account_handle
    ),

    arriving as (
        select observations.snapshot_date as first_date
        from {{ ref('int_account_metrics_deduplicated') }} as observations
        semi join unseen
            on
                observations.platform = unseen.platform
                and lower(observations.account_handle) = lower(unseen.account_handle)
    )

    select min(first_date) from (
        select first_date from gone
        union all
        select first_date from arriving
    )
{%- endset %}
{%- set windows = upstream_windows(
    rebuild_windows(earlier_start_sql=accounts_changed_from, reach_days=gap_fill_days),
    'int_account_metrics_deduplicated',
    reach_days=gap_fill_days,
) %}
{%- do record_rebuild_windows(windows) %}

with

observations as (
    select * from {{ ref('int_account_metrics_deduplicated') }}
    where {{ in_windows('snapshot_date', windows, before=gap_fill_days) }}
),

accounts as (
    select * from {{ ref('stg_roster__accounts') }}
),

metrics as (
    select * from {{ ref('stg_platforms__metrics') }}
),

imported_metrics as (
    select * from {{ ref('stg_history__imported_metrics') }}
),

-- The series end on the latest day anything arrived, by API or by import (a warehouse
-- fed only by imports, such as LinkedIn members, still gets its facts).
latest_snapshot as (
    select
        greatest(
            (select max(metrics.snapshot_date) from metrics),
            (select max(imported_metrics.snapshot_date) from imported_metrics)
        ) as last_snapshot_date
),

-- A handle is matched whatever its case, as the roster's duplicate check and history
-- imports match it (a roster re-exported with a profile link lowercased names the same
-- account), and the series carries the roster's spelling: the exact comparisons above
-- read a changed spelling as a renamed account, so its series is rebuilt under it.
executive_observations as (
    select
        accounts.executive_id,
        observations.platform,
        accounts.account_handle,
        observations.snapshot_date,
        observations.followers,
        observations.following,
        observations.posts,
        observations.observed_at,
        observations.metric_source,
        observations.is_synthetic
    from observations
    inner join accounts
        on
            observations.platform = accounts.platform
            and lower(observations.account_handle) = lower(accounts.account_handle)
),

series_bounds as (
    select
        executive_observations.executive_id,
        executive_observations.platform,
        min(executive_observations.snapshot_date) as first_snapshot_date,
        any_value(latest_snapshot.last_snapshot_date) as last_snapshot_date
    from executive_observations
    cross join latest_snapshot
    group by executive_observations.executive_id, executive_observations.platform
),

-- The days rebuilt, each window from gap_fill_days earlier: the days whose observations
-- the running max below carries into the window (merge_windows keeps them disjoint).
rebuilt_windows as (
    select
        window_rows.window_start,
        window_rows.window_end
    from ({{ windows_values(windows, before=gap_fill_days) }})
        as window_rows (window_start, window_end)
),

date_spine as (
    select
        series_bounds.executive_id,
        series_bounds.platform,
        cast(spine.metric_day as date) as metric_date
    from series_bounds
    cross join rebuilt_windows
    cross join
        unnest(
            generate_series(
                cast(
                    greatest(series_bounds.first_snapshot_date, rebuilt_windows.window_start)
                    as timestamp
                ),
                cast(
                    least(
                        series_bounds.last_snapshot_date,
                        coalesce(rebuilt_windows.window_end, series_bounds.last_snapshot_date)
                    ) as timestamp
                ),
                interval 1 day
            )
        ) as spine (metric_day)
),

spine_with_last_observation as (
    select
        date_spine.executive_id,
        date_spine.platform,
        date_spine.metric_date,
        -- Observation dates only grow along the spine, so the running max is the most
        -- recent observed day.
        max(executive_observations.snapshot_date) over (
            partition by date_spine.executive_id, date_spine.platform
            order by date_spine.metric_date
            rows between unbounded preceding and current row
        ) as last_observed_date
    from date_spine
    left join executive_observations
        on
            date_spine.executive_id = executive_observations.executive_id
            and date_spine.platform = executive_observations.platform
            and date_spine.metric_date = executive_observations.snapshot_date
),

gap_filled as (
    select
        spine_with_last_observation.executive_id,
        spine_with_last_observation.platform,
        spine_with_last_observation.metric_date,
        executive_observations.account_handle,
        executive_observations.followers,
        executive_observations.following,
        executive_observations.posts,
        executive_observations.observed_at,
        executive_observations.metric_source,
        executive_observations.is_synthetic,
        spine_with_last_observation.last_observed_date,
        spine_with_last_observation.metric_date
        = spine_with_last_observation.last_observed_date as is_observed
    from spine_with_last_observation
    inner join executive_observations
        on
            spine_with_last_observation.executive_id = executive_observations.executive_id
            and spine_with_last_observation.platform = executive_observations.platform
            and spine_with_last_observation.last_observed_date
            = executive_observations.snapshot_date
    where
        spine_with_last_observation.metric_date
        - spine_with_last_observation.last_observed_date <= {{ gap_fill_days }}
        and {{ in_windows('spine_with_last_observation.metric_date', windows) }}
)

select * from gap_filled
