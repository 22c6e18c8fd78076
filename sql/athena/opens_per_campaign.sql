select campaign_name, count(*) as opens, count(distinct anonymous_id) as recipients
from klaviyo.email_opened
where dt >= '2024-01-01'
group by campaign_name
order by opens desc
