-- Products by net units (sold minus refunded) over every day, with how many days lacked a catalog entry.
SELECT product_id,
       sum(units_sold) - sum(units_refunded) AS net_units,
       sum(orders) AS paid_orders,
       count_if(name IS NULL) AS days_not_in_catalog
FROM gold.product_sales_daily
GROUP BY product_id
ORDER BY net_units DESC, product_id
LIMIT 5
