-- Changes are looked up by calendar date, not by row offset, so a day missing from the
-- series yields a null change instead of silently comparing against an older day.
--
-- Incremental: a daily build redoes the days of rebuild_windows() (the late-data lookback,
-- and the days of raw rows loaded since the last build), reading the gap-filled series
-- from 28 days before each window as input for the changes. When dim_executive changed (a
-- version added, edited or removed), the rebuild starts early enough to re-attribute every
-- day the change touches; and it redoes every day the gap-filled series redid in the same
-- build, and the 28 days after each, whose changes compare with them (upstream_windows).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        pre_hook="{{ clear_rebuilt_days('metric_date') }}",
        on_schema_change='fail',
    )
}}
{%- set attribution_changed_from -%}
    select least(
        (
            select
                min(
                    case
                        when new_versions.version_number = 1 then attributed.first_date
                        else new_versions.valid_from
                    end
                )
            from {{ ref('dim_executive') }} as new_versions
            left join (
                select
                    executive_id,
                    min(metric_date) as first_date
                from {{ this }}
                group by executive_id
            ) as attributed
                on new_versions.executive_id = attributed.executive_id
            where
                new_versions.executive_version_id not in (
                    select distinct executive_version_id from {{ this }}
                )
                -- A version that ends before the executive's first day in the fact
                -- attributes none of its days (Siemens 2013-2021 against history from
                -- 2024): it is never in the fact, and must not rebuild it every day.
                and coalesce(new_versions.valid_to, date '9999-12-31')
                > coalesce(attributed.first_date, date '0001-01-01')
        ),
        (
            select min(metric_date) from {{ this }}
            where executive_version_id not in (
                select executive_version_id from {{ ref('dim_executive') }}
            )
        )
    )
{%- endset %}
{%- set windows = upstream_windows(
    rebuild_windows(
        earlier_start_sql=attribution_changed_from,
        reach_days=(var('gap_fill_days') | int) + 28,
    ),
    'int_executive_reach_gap_filled',
    reach_days=28,
) %}
{%- do record_rebuild_windows(windows) %}

with

reach_days as (
    select * from {{ ref('int_executive_reach_gap_filled') }}
    where {{ in_windows('metric_date', windows, before=28) }}
),

executives as (
    select * from {{ ref('dim_executive') }}
),

-- Each change reads the same account's count exactly 1, 7 or 28 calendar days earlier:
-- a range frame of that one day, empty (a null change) when the day is missing. One sort
-- per account serves all three, where self-joins built three hash tables of the series
-- (a 3-year full build: 18-20 s against 32-33 s, the same rows). The days before the
-- windows are only read for these changes.
reach_with_changes as (
    select
        executive_id,
        platform,
        metric_date,
        account_handle,
        followers,
        following,
        posts,
        followers - max(followers) over (
            by_account range between interval 1 day preceding and interval 1 day preceding
        ) as followers_change_1d,
        followers - max(followers) over (
            by_account range between interval 7 day preceding and interval 7 day preceding
        ) as followers_change_7d,
        followers - max(followers) over (
            by_account range between interval 28 day preceding and interval 28 day preceding
        ) as followers_change_28d,
        is_observed,
        observed_at,
        metric_source,
        is_synthetic
    from reach_days
    window by_account as (partition by executive_id, platform order by metric_date)
),

with_changes as (
    select * from reach_with_changes
    where {{ in_windows('reach_with_changes.metric_date', windows) }}
),

final as (
    select
        with_changes.executive_id,
        with_changes.platform,
        with_changes.metric_date,
        with_changes.account_handle,
        executives.company_id,
        executives.company_name,
        executives.country_code,
        executives.sector,
        with_changes.followers,
        with_changes.following,
        with_changes.posts,
        with_changes.followers_change_1d,
        with_changes.followers_change_7d,
        with_changes.followers_change_28d,
        with_changes.is_observed,
        with_changes.observed_at,
        with_changes.metric_source as source,
        -- Synthetic when the executive is (demo roster) or the counts are (sandbox reply,
        -- demo history), so a real executive's invented counts are labelled too.
        coalesce(executives.is_synthetic or with_changes.is_synthetic, false) as is_synthetic,
        executives.executive_version_id
    from with_changes
    inner join executives
        on
            with_changes.executive_id = executives.executive_id
            and {{ executive_version_valid_on('executives', 'with_changes.metric_date') }}
)

-- In day order: a full build lays the days out in sequence, so the filters on recent
-- days of later daily builds and publishes skip the older row groups.
select * from final
order by metric_date
