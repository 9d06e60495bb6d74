"""Unit tests of SOAP fault and transport error mapping (no network)."""

import pytest
import zeep.exceptions

from connectors.erp_soap import error_for_fault, error_for_transport
from connectors.errors import InvalidRequest, MalformedResponse, NotFound, Timeout, Unauthorized, Unavailable


@pytest.mark.parametrize(("code", "error"), [
    ("soap11env:Client.NotFound", NotFound),
    ("Client.ResourceNotFound", NotFound),
    ("soap11env:Client.InvalidAmount", InvalidRequest),
    ("soap11env:Client.SchemaValidationError", InvalidRequest),
    ("soap11env:Client", InvalidRequest),
    ("soap12env:Sender.NotFound", NotFound),
    ("soap11env:Client.AuthenticationError", Unauthorized),
    ("soap11env:Server", Unavailable),
    ("soap11env:Server.Unavailable", Unavailable),
    ("soap12env:Receiver", Unavailable),
    (None, Unavailable),
])
def test_fault_codes(code, error):
    mapped = error_for_fault(zeep.exceptions.Fault("it failed", code=code))
    assert type(mapped) is error
    assert mapped.retryable is (error is Unavailable)
    assert mapped.message == "it failed"


@pytest.mark.parametrize(("status", "error"), [
    (200, MalformedResponse),
    (401, Unauthorized),
    (404, InvalidRequest),  # no endpoint there: wrong URL in settings, not a missing order
    (408, Timeout),
    (413, InvalidRequest),
    (502, Unavailable),
    (503, Unavailable),
])
def test_transport_errors(status, error):
    mapped = error_for_transport(zeep.exceptions.TransportError("<html>proxy</html>", status_code=status))
    assert type(mapped) is error and mapped.status_code == status
