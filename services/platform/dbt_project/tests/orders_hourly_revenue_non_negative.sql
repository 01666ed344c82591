-- An hour whose revenue is negative holds a broken order: one row per such hour fails.
select order_hour, status, revenue
from {{ ref('orders_hourly') }}
where revenue < 0
