select date(from_iso8601_timestamp(timestamp)) as day, count(distinct id) as delivered
from klaviyo.email_delivered
group by 1
order by 1
