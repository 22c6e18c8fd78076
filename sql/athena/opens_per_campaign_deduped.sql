select campaign_name, count(*) as opens, count(distinct anonymous_id) as recipients
from (
  select *, row_number() over (partition by dt, id
    order by coalesce(context_klaviyo_identity_resolved, true) desc, received_at) as row_rank
  from klaviyo.email_opened
  where dt >= '2024-01-01'
)
where row_rank = 1
group by campaign_name
order by opens desc
