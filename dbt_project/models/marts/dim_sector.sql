with

sectors as (
    select * from {{ ref('gics_sectors') }}
),

final as (
    select
        sector_code,
        sector_name
    from sectors
)

select * from final
