select *
from email_delivered
