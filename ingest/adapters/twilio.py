"""What Twilio Voice and TaskRouter share: the request signature and the body's framing.

Twilio signs the URL it called plus the sorted form parameters; a JSON body is signed through
`bodySHA256` in the URL; a callback configured with method GET carries its parameters in the query
string, and the signature covers the full URL and nothing else (Twilio's documented rule).
"""

from __future__ import annotations

from ..signatures import Verdict, check_twilio
from .vendor import Decoded, Delivery, form_pairs, json_of

SIGNATURE_HEADER = "X-Twilio-Signature"
SECRET = "twilio_auth_token"


def _is_json(delivery: Delivery) -> bool:
    return "json" in delivery.headers.get("content-type", "")


def verify(token: str, delivery: Delivery) -> Verdict:
    signature = delivery.headers.get("x-twilio-signature")
    if delivery.method == "GET":
        return check_twilio(token, delivery.url, signature)
    pairs = [] if _is_json(delivery) else form_pairs(delivery.body)
    return check_twilio(token, delivery.url, signature, pairs, delivery.body)


def decode(delivery: Delivery) -> Decoded:
    if delivery.method == "GET":
        params = dict(delivery.query)
        return Decoded(params, params)
    query = {k: v for k, v in delivery.query.items() if k != "bodySHA256"}
    if _is_json(delivery):
        return Decoded(json_of(delivery.body), query)
    return Decoded(dict(form_pairs(delivery.body)), query)
