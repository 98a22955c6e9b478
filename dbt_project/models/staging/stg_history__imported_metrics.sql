with

source as (
    select * from {{ source('history', 'imported_metrics') }}
),

renamed as (
    select
        cast(import_id as bigint) as import_id,
        cast(platform as varchar) as platform,
        cast(snapshot_date as date) as snapshot_date,
        cast(account_handle as varchar) as account_handle,
        cast(followers as bigint) as followers,
        cast(following as bigint) as following,
        cast(posts as bigint) as posts
    from source
)

select * from renamed
