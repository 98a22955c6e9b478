with

source as (
    select * from {{ source('history', 'imported_metrics') }}
),

renamed as (
    select
        import_id,
        platform,
        snapshot_date,
        account_handle,
        followers,
        following,
        posts
    from source
)

select * from renamed
