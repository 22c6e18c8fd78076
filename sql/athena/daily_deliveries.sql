select date(timestamp) as day, count(*) as delivered
from klaviyo.email_delivered
group by 1
order by 1
