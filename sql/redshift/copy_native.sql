-- Free text (subjects, campaign names) is varchar(65535), Redshift's longest: COPY fails the
-- whole load on one value longer than its column.
-- Redshift: load the lake into native tables with COPY (one statement per collection and
-- day; COPY reads the gzip NDJSON as Firehose wrote it). Replace the placeholders.

-- The native tables live in their own schema, klaviyo_native, so they never collide with the
-- external schema `klaviyo` that spectrum.sql creates over the Glue database.
create schema if not exists klaviyo_native;

create table if not exists klaviyo_native.email_delivered (
  id varchar(128) not null,
  anonymous_id varchar(512),
  user_id varchar(512),
  event varchar(64),
  event_text varchar(128),
  "timestamp" timestamptz,
  original_timestamp timestamptz,
  sent_at timestamptz,
  received_at timestamptz,
  uuid_ts timestamptz,
  context_klaviyo_profile_id varchar(64),
  email_id varchar(128),
  email_subject varchar(65535),
  campaign_id varchar(128),
  campaign_name varchar(65535)
);

copy klaviyo_native.email_delivered
from 's3://<lake-bucket>/klaviyo/collection=email_delivered/dt=2024-01-04/'
iam_role 'arn:aws:iam::<account-id>:role/<redshift-copy-role>'
format as json 'auto ignorecase'
gzip
timeformat 'auto';

-- Firehose delivers at least once, and a redelivered event keeps its id: query through a
-- view that keeps one row per id.
create or replace view klaviyo_native.email_delivered_deduped as
select * from (
  select *, row_number() over (partition by id order by received_at) as row_rank
  from klaviyo_native.email_delivered
) as ranked
where row_rank = 1;
