-- Days before an executive's first known version are attributed to that first version:
-- the roster lists who leads a company now, and the best guess for earlier days is the
-- earliest version known. The facts join with macro executive_version_valid_on().
with

versions as (
    select * from {{ ref('int_executive_versions_merged') }}
),

roster as (
    select * from {{ ref('stg_roster__executives') }}
),

rostered_executives as (
    select distinct executive_id from roster
),

final as (
    select
        -- Any edit of a version gives it a new id, which is how the incremental facts
        -- notice that attribution changed.
        md5(concat_ws(
            '|',
            versions.executive_id,
            cast(versions.valid_from as varchar),
            versions.title,
            versions.company_name,
            versions.country_code,
            versions.sector
        )) as executive_version_id,
        versions.executive_id,
        cast(row_number() over (
            partition by versions.executive_id order by versions.valid_from
        ) as integer) as version_number,
        versions.full_name,
        versions.title,
        md5(versions.company_name) as company_id,
        versions.company_name,
        versions.country_code,
        versions.sector,
        versions.is_synthetic,
        versions.valid_from,
        lead(versions.valid_from) over (
            partition by versions.executive_id order by versions.valid_from
        ) as valid_to,
        lead(versions.valid_from) over (
            partition by versions.executive_id order by versions.valid_from
        ) is null as is_current,
        versions.version_source
    from versions
    inner join rostered_executives
        on versions.executive_id = rostered_executives.executive_id
)

select * from final
