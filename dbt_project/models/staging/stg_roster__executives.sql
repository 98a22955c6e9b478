with

source as (
    select * from {{ source('roster', 'roster_executives') }}
),

renamed as (
    select
        cast(executive_id as varchar) as executive_id,
        cast(full_name as varchar) as full_name,
        cast(title as varchar) as title,
        cast(company_name as varchar) as company_name,
        cast(country_code as varchar) as country_code,
        cast(sector as varchar) as sector,
        cast(is_synthetic as boolean) as is_synthetic,
        cast(valid_from as date) as valid_from,
        cast(roster_file as varchar) as roster_file,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
