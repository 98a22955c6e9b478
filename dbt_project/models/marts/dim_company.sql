-- A company's country and sector are those of its latest executive version: the roster
-- describes companies only through the executives who lead them.
with

executives as (
    select * from {{ ref('dim_executive') }}
),

final as (
    select
        company_id,
        company_name,
        country_code,
        sector
    from executives
    qualify row_number() over (
        partition by company_id
        order by valid_from desc, executive_id asc
    ) = 1
)

select * from final
