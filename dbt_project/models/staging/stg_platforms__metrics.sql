with

source as (
    select * from {{ source('platforms', 'platform_metrics') }}
),

renamed as (
    select
        cast(platform as varchar) as platform,
        cast(snapshot_date as date) as snapshot_date,
        cast(account_handle as varchar) as account_handle,
        cast(account_id as varchar) as account_id,
        cast(account_status as varchar) as account_status,
        cast(followers as bigint) as followers,
        cast(following as bigint) as following,
        cast(posts as bigint) as posts,
        cast(observed_at as timestamptz) as observed_at,
        cast(source as varchar) as metric_source,
        cast(landing_path as varchar) as landing_path,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
