"""The one error hierarchy every connector raises.

Activities turn these into ``ApplicationError(type=err.error_type,
non_retryable=not err.retryable)``, so the names here are the type names a workflow
matches on. Connectors never retry themselves: whether and when to call again is the
Temporal retry policy's decision.

    ConnectorError
    ├── NotFound            non-retryable: the order / shipment / ticket does not exist
    ├── InvalidRequest      non-retryable: the system refused what we asked (SOAP client
    │   │                   fault, HTTP 4xx); asking again gets the same answer
    │   └── Conflict        non-retryable: idempotency key reused with a different request
    ├── Unauthorized        non-retryable: credentials in settings are wrong
    ├── Unavailable         retryable: 5xx, SOAP server fault, connection refused or reset
    ├── Timeout             retryable: no answer within the connector's timeout
    └── MalformedResponse   retryable: 2xx but unparseable or not the promised schema
"""

from __future__ import annotations


class ConnectorError(Exception):
    """A call to an external system failed.

    ``system`` names the system ("erp", "carrier", ...), ``code`` carries the system's own
    error code when it sent one (a SOAP fault code such as ``Client.InvalidAmount``), and
    ``status_code`` the HTTP status when there was a response.
    """

    retryable: bool = True

    def __init__(
        self,
        system: str,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system
        self.message = message
        self.code = code
        self.status_code = status_code

    @property
    def error_type(self) -> str:
        """The ``ApplicationError`` type name for this error."""
        return type(self).__name__

    def __reduce__(self):  # keeps keyword-only fields when the error crosses a process pool
        return (_rebuild, (type(self), self.system, self.message, self.code, self.status_code))


def _rebuild(cls, system, message, code, status_code):
    return cls(system, message, code=code, status_code=status_code)


class NotFound(ConnectorError):
    retryable = False


class InvalidRequest(ConnectorError):
    retryable = False


class Conflict(InvalidRequest):
    pass


class Unauthorized(ConnectorError):
    retryable = False


class Unavailable(ConnectorError):
    retryable = True


class Timeout(ConnectorError):
    retryable = True


class MalformedResponse(ConnectorError):
    retryable = True


NON_RETRYABLE_ERROR_TYPES: tuple[str, ...] = tuple(
    cls.__name__ for cls in (NotFound, InvalidRequest, Conflict, Unauthorized)
)
"""For a ``RetryPolicy(non_retryable_error_types=...)`` when errors are not marked one by one."""


def error_class_for_status(status: int) -> type[ConnectorError]:
    """The error an HTTP answer with ``status`` stands for, when it is not the success the
    API promised (a 2xx whose body cannot be used is ``MalformedResponse``)."""
    if status == 404:
        return NotFound
    if status in (401, 403):
        return Unauthorized
    if status == 409:
        return Conflict
    if status == 408:
        return Timeout
    if status == 429 or status >= 500:
        return Unavailable
    if 400 <= status < 500:
        return InvalidRequest
    return MalformedResponse  # 2xx without a usable body, or 1xx/3xx: not the API we know


def require_text(system: str, **values: str) -> None:
    """Refuse empty identifiers before a call goes out: the answer would be a confusing
    not-found or schema fault from the other side."""
    for name, value in values.items():
        if not value or not value.strip():
            raise InvalidRequest(system, f"{name} must not be empty")
