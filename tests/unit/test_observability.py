import json
import logging

from shared.observability import JsonFormatter, request_id_var


def test_json_log_lines_carry_the_request_id():
    formatter = JsonFormatter("registry")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    token = request_id_var.set("req-42")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "hello world"
    assert line["request_id"] == "req-42"
    assert line["service"] == "registry" and line["level"] == "warning"
    assert line["ts"].endswith("Z")
    assert "request_id" not in json.loads(formatter.format(record))
