with

source as (
    select * from {{ source('platforms', 'platform_metrics') }}
),

renamed as (
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
        source as metric_source,
        landing_path,
        loaded_at,
        is_synthetic
    from source
)

select * from renamed
