package store

// MigrationLockKey is the advisory lock key Prepare takes, for tests that hold it.
const MigrationLockKey = advisoryLockKey
