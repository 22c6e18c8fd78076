select event, count(*) as events, count(distinct id) as distinct_ids
from tracks
group by event
order by event
