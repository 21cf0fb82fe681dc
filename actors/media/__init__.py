"""Media downloads as actors: one per job, bounded concurrency, retries, dead letters.

* :func:`media_supervisor` builds ``/services/media`` (a :class:`MediaDispatcher` and the
  :class:`MediaJobActor` children) from :class:`MediaDeps`.
* :func:`detect_extension` (magic bytes) and :func:`write_atomically` (temp file + rename).
"""

from ._errors import MediaError, PermanentMediaError
from ._files import detect_extension, relative_path, write_atomically
from ._job import MediaDeps, MediaJobActor, parse_source
from ._service import MediaDispatcher, media_supervisor

__all__ = [
    "MediaDeps",
    "MediaDispatcher",
    "MediaError",
    "MediaJobActor",
    "PermanentMediaError",
    "detect_extension",
    "media_supervisor",
    "parse_source",
    "relative_path",
    "write_atomically",
]
