-- Changes are looked up by calendar date, not by row offset, so a day missing from the
-- series yields a null change instead of silently comparing against an older day.
with

reach_days as (
    select * from {{ ref('int_executive_reach_gap_filled') }}
),

executives as (
    select * from {{ ref('stg_roster__executives') }}
),

with_changes as (
    select
        reach_days.executive_id,
        reach_days.platform,
        reach_days.metric_date,
        reach_days.account_handle,
        reach_days.followers,
        reach_days.following,
        reach_days.posts,
        reach_days.followers - day_before.followers as followers_change_1d,
        reach_days.followers - week_before.followers as followers_change_7d,
        reach_days.followers - four_weeks_before.followers as followers_change_28d,
        reach_days.is_observed,
        reach_days.observed_at,
        reach_days.metric_source
    from reach_days
    left join reach_days as day_before
        on
            reach_days.executive_id = day_before.executive_id
            and reach_days.platform = day_before.platform
            and reach_days.metric_date - 1 = day_before.metric_date
    left join reach_days as week_before
        on
            reach_days.executive_id = week_before.executive_id
            and reach_days.platform = week_before.platform
            and reach_days.metric_date - 7 = week_before.metric_date
    left join reach_days as four_weeks_before
        on
            reach_days.executive_id = four_weeks_before.executive_id
            and reach_days.platform = four_weeks_before.platform
            and reach_days.metric_date - 28 = four_weeks_before.metric_date
),

final as (
    select
        with_changes.executive_id,
        with_changes.platform,
        with_changes.metric_date,
        with_changes.account_handle,
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
        with_changes.metric_source as source
    from with_changes
    inner join executives
        on with_changes.executive_id = executives.executive_id
)

select * from final
