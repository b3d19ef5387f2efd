"""The personalization core's exception tree.

Every failure the core can report to a user derives from :class:`PersonalizationError`; callers
(the CLI, the services) map these to one clear sentence. Programming errors stay ordinary
exceptions.
"""


class PersonalizationError(Exception):
    """Base of every error the personalization core raises on purpose."""


class ModelLoadError(PersonalizationError):
    """The base model could not be found or loaded."""


class ImageError(PersonalizationError):
    """An input image could not be read or is not an image."""


class ArtifactError(PersonalizationError):
    """A subject file is unreadable, for another base model, or of a newer format."""


class SubjectError(PersonalizationError):
    """A subject is malformed, unknown in a question, or too many are used at once."""


class TrainingCancelled(PersonalizationError):
    """Training stopped because its caller asked it to."""


class NotEnoughPhotos(PersonalizationError):
    """Too few distinct photos were given to teach a subject."""
