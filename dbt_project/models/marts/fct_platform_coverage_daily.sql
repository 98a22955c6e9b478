-- How much of the roster each platform's API answered for, per day: the accounts asked
-- about and why those without counts have none (the weekly report's coverage section).
-- An account asked about several times in a day counts once, with its last answer.
-- Only API observations: imported history files carry no account status.
--
-- Incremental: the lookback days of the other daily facts are redone, so a late
-- observation still replaces the answer it supersedes.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        pre_hook="{{ clear_rebuilt_days('metric_date') }}",
        on_schema_change='fail',
    )
}}
{%- set windows = rebuild_windows() %}
{%- do record_rebuild_windows(windows) %}

with

observations as (
    select * from {{ ref('stg_platforms__metrics') }}
    where {{ in_windows('snapshot_date', windows) }}
),

last_answers as (
    select
        platform,
        snapshot_date,
        account_handle,
        -- An X account landed as protected with its counts (before X's protected accounts
        -- were read as ok: their counts are public) has counts, as the reach facts count it.
        case
            when account_status = 'protected' and followers is not null then 'ok'
            else account_status
        end as account_status,
        is_synthetic
    from observations
    qualify row_number() over (
        partition by platform, snapshot_date, lower(account_handle)
        order by observed_at desc, loaded_at desc
    ) = 1
),

final as (
    select
        platform,
        snapshot_date as metric_date,
        count(*) as accounts_asked,
        count(*) filter (where account_status = 'ok') as accounts_ok,
        count(*) filter (where account_status = 'not_found') as accounts_not_found,
        count(*) filter (where account_status = 'suspended') as accounts_suspended,
        count(*) filter (
            where account_status in ('protected', 'hidden_counts')
        ) as accounts_private,
        count(*) filter (where account_status = 'deferred') as accounts_deferred,
        count(*) filter (where account_status = 'error') as accounts_error,
        coalesce(bool_or(is_synthetic), false) as is_synthetic
    from last_answers
    group by platform, snapshot_date
)

select * from final
order by metric_date, platform
