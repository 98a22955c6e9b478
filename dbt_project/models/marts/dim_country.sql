with

countries as (
    select * from {{ ref('countries') }}
),

final as (
    select
        country_code,
        country_name,
        region
    from countries
)

select * from final
