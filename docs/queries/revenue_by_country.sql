-- Paid orders, conversion and net revenue per country; days whose revenue waits for an FX rate are
-- counted apart (SUM skips nulls: a total without them would look complete).
SELECT country,
       sum(paid_orders) AS paid_orders,
       sum(sessions) AS sessions,
       round(sum(revenue_usd), 2) AS revenue_usd,
       count_if(revenue_usd IS NULL) AS days_without_rate
FROM gold.daily_kpis
GROUP BY country
ORDER BY country
