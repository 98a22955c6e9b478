{#- dbt_utils is not installable offline. Returns the rows violating the expression, so an
    empty result passes; a null result counts as a violation because an unknown value cannot
    be shown to satisfy the rule. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
