-- API and import sources can both observe an account on the same day; the latest
-- observation wins. Rows without status ok carry no counts, so they are dropped here and
-- such a day is treated as missing (gap-filled downstream) rather than as zero followers.
with

metrics as (
    select * from {{ ref('stg_platforms__metrics') }}
),

counted as (
    select * from metrics
    where account_status = 'ok'
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
        loaded_at
    from counted
    qualify row_number() over (
        partition by platform, account_handle, snapshot_date
        order by observed_at desc, loaded_at desc, metric_source asc
    ) = 1
)

select * from deduplicated
