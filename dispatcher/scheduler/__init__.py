"""Recurring sends: birthday, wake-up, holiday, member-day and first-purchase anniversary runs,
each day at the definition's send time, exactly once per member and period (see
``docs/scheduler.md``)."""
