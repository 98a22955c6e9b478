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

-- Who the executive is, as the roster says now: a corrected name or a flag turned from
-- demo to real (or back) reaches every version, declared or detected (the snapshot
-- watches title, company, country and sector only, so these kept their first value).
rostered_executives as (
    select
        executive_id,
        arg_max(full_name, coalesce(valid_from, date '0001-01-01')) as full_name,
        bool_or(is_synthetic) as is_synthetic
    from roster
    group by executive_id
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
            versions.sector,
            -- The facts carry the flag: turned, it must rebuild them like any edit.
            cast(rostered_executives.is_synthetic as varchar)
        )) as executive_version_id,
        versions.executive_id,
        cast(row_number() over (
            partition by versions.executive_id order by versions.valid_from
        ) as integer) as version_number,
        rostered_executives.full_name,
        versions.title,
        md5(versions.company_name) as company_id,
        versions.company_name,
        versions.country_code,
        versions.sector,
        rostered_executives.is_synthetic,
        versions.valid_from,
        lead(versions.valid_from) over (
            partition by versions.executive_id order by versions.valid_from
        ) as valid_to,
        -- In force today (UTC, as every day of the warehouse): a version declared to
        -- start later is not current yet (the first version also covers the days before
        -- its start, as the facts have it).
        coalesce({{ utc_today() }} < lead(versions.valid_from) over (
            partition by versions.executive_id order by versions.valid_from
        ), true)
        and (
            versions.valid_from <= {{ utc_today() }}
            or row_number() over (
                partition by versions.executive_id order by versions.valid_from
            ) = 1
        ) as is_current,
        versions.version_source
    from versions
    inner join rostered_executives
        on versions.executive_id = rostered_executives.executive_id
)

select * from final
