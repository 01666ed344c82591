-- Orders per hour and status: the rollup the Superset chart reads.
select
    date_trunc('hour', ordered_at) as order_hour,
    status,
    count(*) as orders,
    sum(amount) as revenue
from {{ source('lake', 'orders_enriched') }}
group by 1, 2
