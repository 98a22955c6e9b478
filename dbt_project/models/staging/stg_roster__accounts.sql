with

source as (
    select * from {{ source('roster', 'roster_accounts') }}
),

renamed as (
    select
        cast(executive_id as varchar) as executive_id,
        cast(platform as varchar) as platform,
        cast(account_handle as varchar) as account_handle,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
