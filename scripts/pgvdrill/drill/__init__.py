"""The drills: one module per runbook step drilled (logical, physical, pitr, dr), the source
they start from, and the one result protocol, failure and case loop they share (record)."""
