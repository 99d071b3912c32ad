-- The funnel per day, all countries: sessions at each step and the share reaching checkout.
SELECT event_date,
       sum(view_sessions) AS viewed,
       sum(product_view_sessions) AS product_viewed,
       sum(add_to_cart_sessions) AS added_to_cart,
       sum(checkout_sessions) AS checked_out,
       sum(paid_orders) AS paid_orders,
       round(100.0 * sum(checkout_sessions) / nullif(sum(view_sessions), 0), 1) AS checkout_pct
FROM gold.funnel_daily
GROUP BY event_date
ORDER BY event_date
