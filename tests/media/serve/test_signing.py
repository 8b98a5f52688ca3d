"""A rendition URL's signature (avenue/media/serve/signing.py): what it covers, and every key
of the rotation verifies; pure, no database."""

from __future__ import annotations

from bson import ObjectId

from avenue.media.serve.signing import sign_rendition, verify_rendition

ID = ObjectId("6b0000000000000000000001")


def test_a_rendition_signature_covers_bucket_id_version_and_options_and_every_key_verifies():
    sig = sign_rendition("old-key", "b", str(ID), "v1", "w_333")
    assert verify_rendition(["new-key", "old-key"], "b", str(ID), "v1", "w_333", sig)
    assert not verify_rendition(["new-key"], "b", str(ID), "v1", "w_333", sig)
    for other in (("c", str(ID), "v1", "w_333"), ("b", str(ObjectId()), "v1", "w_333"),
                  ("b", str(ID), "v2", "w_333"), ("b", str(ID), "v1", "w_334")):
        assert not verify_rendition(["old-key"], *other, sig)
    assert not verify_rendition(["old-key"], "b", str(ID), "v1", "w_333", None)
