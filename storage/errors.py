"""The storage layer's exceptions: one small tree, caught and worded for users in bot.services.

StorageError
├── SchemaVersionError   the database was migrated by newer code than this
├── NotFound             no such row, or it belongs to another owner (never say which)
├── DuplicateName        the owner already has a subject with that name
├── JobLost              a worker touched a job it no longer holds (re-queued, cancelled, gone)
└── UnsafePath           a file path that would leave the file store's root
"""


class StorageError(Exception):
    """Base class of every error the storage package raises on purpose."""


class SchemaVersionError(StorageError):
    """The database schema is newer than this code knows; upgrading the code is the fix."""


class NotFound(StorageError):
    """The row does not exist or is not the caller's. The two are deliberately indistinguishable."""


class DuplicateName(StorageError):
    """A subject with the same case-folded name already exists for this owner."""


class JobLost(StorageError):
    """The job is no longer running under this worker: stop working on it, write nothing more."""


class UnsafePath(StorageError, ValueError):
    """A relative path that is absolute, malformed or escapes the file store's root."""
