"""Retention (保存期間), holds, disposal (廃棄), transfer (移管) and the file register.

Importing this package registers the retention schedule with records (see
:mod:`genpon.records.lifecycle`): closing or reopening a case and approving into a closed case
fix or clear its documents' 起算日・満了日.
"""

from genpon.records.lifecycle import register_case_scheduler
from genpon.retention.schedule import SCHEDULER

register_case_scheduler(SCHEDULER)
