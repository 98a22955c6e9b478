-- A calendar wide enough for declared roster history and imported platform history: from
-- 2000 to the end of 2040, or of the tenth year after today's once that is later (a fixed
-- end failed every build's relationship tests from its next day on). The bounds change at
-- most once a year, so the table stays identical between builds.
with

days as (
    select cast(calendar.day_start as date) as date_day
    from
        unnest(
            generate_series(
                timestamp '2000-01-01',
                greatest(
                    timestamp '2040-12-31',
                    make_timestamp(year({{ utc_today() }}) + 10, 12, 31, 0, 0, 0)
                ),
                interval 1 day
            )
        ) as calendar (day_start)
),

final as (
    select
        date_day,
        cast(year(date_day) as integer) as calendar_year,
        cast(quarter(date_day) as integer) as calendar_quarter,
        cast(month(date_day) as integer) as calendar_month,
        monthname(date_day) as month_name,
        cast(isoyear(date_day) as integer) as iso_year,
        cast(weekofyear(date_day) as integer) as iso_week,
        cast(isodow(date_day) as integer) as iso_day_of_week,
        dayname(date_day) as day_name,
        isodow(date_day) >= 6 as is_weekend,
        date_day = last_day(date_day) as is_month_end
    from days
)

select * from final
