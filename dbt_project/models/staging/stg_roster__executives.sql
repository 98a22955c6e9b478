with

source as (
    select * from {{ source('roster', 'roster_executives') }}
),

renamed as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        valid_from,
        roster_file,
        loaded_at
    from source
)

select * from renamed
