-- Redshift: query the lake in place through Redshift Spectrum, over the stack's Glue database.
-- Replace <glue-database> (stack output GlueDatabaseName, default klaviyo) and the IAM role
-- (one Redshift can assume, with Glue read and S3 read on the lake bucket).

create external schema if not exists klaviyo
from data catalog
database '<glue-database>'
iam_role 'arn:aws:iam::<account-id>:role/<redshift-spectrum-role>';

-- Spectrum does not use Athena's partition projection: register each day's partition
-- (for example from a daily scheduled query) before querying it.
alter table klaviyo.email_delivered add if not exists
partition (dt = '2024-01-04')
location 's3://<lake-bucket>/klaviyo/collection=email_delivered/dt=2024-01-04/';

select event, count(distinct id) as delivered
from klaviyo.email_delivered
where dt = '2024-01-04'
group by event;
