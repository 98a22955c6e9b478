with

source as (
    select * from {{ source('roster', 'roster_accounts') }}
),

renamed as (
    select
        executive_id,
        platform,
        account_handle,
        loaded_at
    from source
)

select * from renamed
