#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun after changing the seeds).

Seeds are valid events, boundary cases and garbage, so that fuzzing starts from every path the
code has. Protobuf is encoded by hand to avoid needing generated Python code. Crash inputs kept
verbatim as regression seeds (e.g. fuzz_json_event/regression_scrub_chain_17_passes) are not
generated here; this script leaves them alone.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint((number << 3) | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def s(number, text):
    return field(number, 2, text if isinstance(text, bytes) else text.encode())


def timestamp(seconds, nanos=0):
    body = field(1, 0, seconds) + (field(2, 0, nanos) if nanos else b"")
    return field(5, 2, body)


def attribute(key, value):
    return field(10, 2, s(1, key) + s(2, value))


def event(event_id="e-1", product="mobile-app", text="The app crashes when I upload a photo",
          source=3, ts=1790856000, extra=b""):
    out = b""
    if event_id is not None:
        out += s(1, event_id)
    if source:
        out += field(2, 0, source)
    if product is not None:
        out += s(3, product)
    if text is not None:
        out += s(4, text)
    if ts is not None:
        out += timestamp(ts)
    return out + extra


WIRE = {
    "valid_minimal": event(source=0, ts=None),
    "valid_full": event(extra=s(6, "acct-9") + field(7, 0, 120000) + s(8, "email")
                        + s(9, "https://support.example.com/t/1")
                        + attribute("plan", "pro") + attribute("region", "eu")),
    "pii_text": event(text="Call me at +1 (555) 123-4567 or mail jo.doe@example.com, card "
                           "4111 1111 1111 1111, version 1.2.3 on 2026-10-01"),
    "unicode_text": event(text="L'appli plante\u00a0\u2014 \u65e5\u672c\u8a9e\u3000"
                               "\U0001F600 \u200b\ufeff zero-width"),
    "whitespace_only": event(text=" \t\r\n\u3000 "),
    "invalid_utf8_text": event(text=b"bad \xc3\x28 bytes \xed\xa0\x80"),
    "missing_event_id": event(event_id=None),
    "bad_product_id": event(product="mobile app/../x"),
    "future_timestamp": event(ts=4102444800),
    "negative_arr": event(extra=field(7, 0, -5)),
    "unknown_source": event(source=42),
    "unknown_field": event(extra=s(99, "future field") + field(100, 0, 7)),
    "truncated": event()[:-7],
    "garbage": bytes(range(256))[::7],
    # Regression: the future check converted seconds to nanoseconds and overflowed (year 2350).
    "regression_timestamp_after_2262": event(ts=11991416768),
}

JSON = {
    "valid": '{"eventId":"e-1","source":"SOURCE_SUPPORT","productId":"mobile-app","text":'
             '"The app crashes when I upload a photo","occurredAt":"2026-10-01T12:00:00Z",'
             '"accountId":"acct-9"}',
    "valid_full": '{"eventId":"e-2","source":"SOURCE_SALES","productId":"web:checkout",'
                  '"text":"Prospect wants SSO","occurredAt":"2026-09-30T08:15:00.250Z",'
                  '"accountId":"acct-1","accountArrCents":"9900000","channel":"crm_note",'
                  '"externalUrl":"https://crm.example.com/d/7","attributes":{"stage":"demo"}}',
    "snake_case_and_enum_number": '{"event_id":"e-3","source":3,"product_id":"p",'
                                  '"text":"snake case names are accepted too"}',
    "pii": '{"eventId":"e-4","productId":"p","text":"reach me at jo@example.com or '
           '+44 20 7946 0958; card 4111-1111-1111-1111"}',
    "escapes": '{"eventId":"e-5","productId":"p","text":"tab\\there \\u00e9\\ud83d\\ude00 '
               '\\u0000 nul \\u2028 sep"}',
    "lone_surrogate_escape": '{"eventId":"e-6","productId":"p","text":"\\ud800 alone"}',
    "unknown_field": '{"eventId":"e-7","productId":"p","text":"x","severity":3}',
    "bad_timestamp": '{"eventId":"e-8","productId":"p","text":"x","occurredAt":"yesterday"}',
    "future_timestamp": '{"eventId":"e-9","productId":"p","text":"x",'
                        '"occurredAt":"2099-01-01T00:00:00Z"}',
    "too_early": '{"eventId":"e-10","productId":"p","text":"x","occurredAt":"1970-01-01T00:00:00Z"}',
    "wrong_types": '{"eventId":7,"productId":["p"],"text":null,"accountArrCents":"-1"}',
    "not_json": "eventId=e-1&text=hello",
    "truncated": '{"eventId":"e-11","productId":"p","text":"cut',
    # Regression: control characters inside an address hid it from the PII scrubber.
    "regression_control_char_in_email": '{"eventId":"e-12","productId":"p","text":"mail '
                                        'jo@exam\\u0000ple.com or jo@example.\\u200bcom"}',
    # Regression: a number whose last group ran into an address was left for a second pass.
    "regression_number_before_email": '{"eventId":"e-13","productId":"p","text":"call '
                                      '+44 20 7946 0958jo@example.com or 4111 1111 1111 1x@y.co"}',
    # Regression: a phone number glued to a domain hid the address until the number was scrubbed.
    "regression_phone_glued_to_domain": '{"eventId":"e-14","productId":"p","text":"me at '
                                        'jo@example.vvvv-5551234567("}',
    # Regression: placeholders are longer than short addresses; the result exceeded the limit
    # (64 bytes in the fuzz targets' small configuration) and failed re-validation.
    "regression_text_grows_past_limit": '{"eventId":"e-15","productId":"p","text":"'
                                        + " ".join(["a@b.cc"] * 9) + '"}',
}

def post(target, body):
    return (f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}")


HTTP = {
    "healthz": "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "metrics_http10": "GET /metrics HTTP/1.0\r\n\r\n",
    "products": "GET /v1/products HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n",
    "pain_points_paged": "GET /v1/products/mobile-app/pain-points?sort=events&limit=1&cursor=1"
                         " HTTP/1.1\r\nHost: x\r\n\r\n",
    "pain_point_merged": "GET /v1/pain-points/pp-3 HTTP/1.1\r\nHost: x\r\n\r\n",
    "pain_point_cycle": "GET /v1/pain-points/pp-4 HTTP/1.1\r\nHost: x\r\n\r\n",
    "encoded_slash": "GET /v1/pain-points/pp%2F6 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_percent": "GET /v1/pain-points/pp%zz?limit=%4 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_limit": "GET /v1/products/mobile-app/pain-points?limit=99999999999&sort=nope"
                 " HTTP/1.1\r\nHost: x\r\n\r\n",
    "method_not_allowed": "DELETE /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "handler_throws": "POST /fuzz/throw HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "chunked_body": "POST /fuzz/throw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "4\r\nabcd\r\n0\r\n\r\n",
    "body_too_large": "POST /fuzz/throw HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                      + "x" * 80,
    "headers_too_large": "GET /healthz HTTP/1.1\r\nX-Big: " + "y" * 300 + "\r\n\r\n",
    "absolute_form_target": "GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage": "\x00\x01\xff GARBAGE \r\n\r\n",
    "incomplete": "GET /healthz HTTP/1.1\r\nHost: x\r\n",
    "member_events": "GET /v1/pain-points/pp-3/events?limit=2&cursor= HTTP/1.1\r\nHost: x\r\n\r\n",
    "feedback_one": post("/v1/feedback", '{"eventId":"e-1","source":"SOURCE_SUPPORT","productId":"mobile-app","text":"crash on upload"}'),
    "feedback_array": post("/v1/feedback?source=sales", '[{"eventId":"e-1","source":"SOURCE_SUPPORT","productId":"mobile-app","text":"crash on upload"}, {"eventId":"e-2","productId":"p","text":"bracket ] and brace } in \\"quotes\\" [x]"}]'),
    "feedback_invalid": post("/v1/feedback?source=nope", '[{"eventId":"","text":1},]'),
}


def write(target, seeds):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "connectors"
GENERIC = {
    "mapped": '{"id":"r-1","text":"search ignores filters","product":"web","a":"acct-1","arr":5,'
              '"t":"2026-12-01T09:30:00Z","links":["https://x"]}',
    "numeric_id_and_time": '{"id":17,"text":"slow","t":1796117400,"arr":"12"}',
    "bad_arr": '{"id":"1","text":"t","arr":-3}',
}
BROKEN = {
    "not_json": "{\"type\": ",
    "array": "[1, 2, 3]",
    "deep": "[" * 200 + "]" * 200,
    "escaped_pointer": '{"a~b":{"c/d":1}}',
}


def connector_seeds(system):
    seeds = dict(BROKEN)
    for path in sorted(FIXTURES.glob(system + "_*.json")):
        seeds[path.stem] = path.read_bytes()
    if system == "generic":
        seeds.update(GENERIC)
    return seeds


if __name__ == "__main__":
    for system in ("zendesk", "intercom", "jira", "generic"):
        write("fuzz_connector_" + system, connector_seeds(system))
    write("fuzz_wire_event", WIRE)
    write("fuzz_json_event", JSON)
    write("fuzz_http_request", HTTP)
