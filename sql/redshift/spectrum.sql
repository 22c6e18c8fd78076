-- Redshift: query the compacted tables in place through Redshift Spectrum, over the stack's
-- Glue database. Replace <glue-database> (stack output GlueDatabaseName, default klaviyo) and
-- the IAM role (one Redshift can assume, with Glue read and S3 read on the lake bucket).

create external schema if not exists klaviyo
from data catalog
database '<glue-database>'
iam_role 'arn:aws:iam::<account-id>:role/<redshift-spectrum-role>';

-- No partition to register: the compaction function points each day's Glue partition at
-- its current version, and Spectrum reads the Glue catalog's partitions as they are.
select event, count(*) as delivered
from klaviyo.email_delivered
where dt = '2024-01-04'
group by event;

-- Every collection's common columns in one table, each event once.
select event, count(*) as events
from klaviyo.tracks
where dt >= '2024-01-01'
group by event
order by event;
