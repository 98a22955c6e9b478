-- The roster's current version of each executive, the input of the snapshot
-- snp_roster__executives: the row with the latest declared start, an undated row counting
-- as the earliest. A view, because the snapshot reads it once per build.
{{ config(materialized='view') }}

with

roster as (
    select * from {{ ref('stg_roster__executives') }}
),

current_versions as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        valid_from as declared_valid_from,
        loaded_at
    from roster
    qualify row_number() over (
        partition by executive_id
        order by valid_from desc nulls last
    ) = 1
)

select * from current_versions
