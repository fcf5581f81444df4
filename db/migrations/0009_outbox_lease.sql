-- The outbox relay claims a queued copy with a lease and commits before any channel sees it:
-- a copy whose lease runs out with no word from its channel (a crashed hub or channel) is
-- claimed again. NULL: not claimed. A channel that queues the copy extends the lease to the
-- copy's deadline.
ALTER TABLE dispatch_outbox ADD COLUMN lease_until timestamptz;
