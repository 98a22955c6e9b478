{#- The executives a yearly mart counts: for each year of `reach` (the daily fact's rows,
    read on the year-end days only, year_end_days), its last day with data as `as_of_date`,
    and every executive whose version is valid that day, with that version's country.
    fct_country_comparison_yearly counts them; fct_country_expectations_yearly has a row for
    each of their countries and years, so its join to the comparison always finds one. -#}
{% macro executives_at_year_ends(reach, executives) %}
    select
        executives.executive_id,
        executives.country_code,
        executives.is_synthetic,
        year_ends.calendar_year,
        year_ends.as_of_date
    from (
        select
            cast(year(metric_date) as integer) as calendar_year,
            max(metric_date) as as_of_date
        from {{ reach }}
        group by year(metric_date)
    ) as year_ends
    inner join {{ executives }} as executives
        on {{ executive_version_valid_on('executives', 'year_ends.as_of_date') }}
{% endmacro %}
