"""proctor: event-driven, live grading of hands-on data-platform exams.

One folder per service (``stack``, ``contract``, ``grader``, ``collectors``,
``publisher``, ``scoreboard``, ``judge``, ``offline``) around a pure grading core
(``services.core``) that the live worker and the offline replay both call.
"""

__version__ = "0.1.0"
