select event, count(*) as events, count(distinct id) as distinct_ids
from klaviyo.tracks
where dt >= '2024-01-01'
group by event
order by event
