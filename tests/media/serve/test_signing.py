"""Media URLs' signatures (avenue/media/serve/signing.py): what a rendition's and an image's
cover, every key of the rotation verifies, and the ones handed out before signatures named a
version still do."""

from __future__ import annotations

from bson import ObjectId

from avenue.media.serve import signing
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


def test_a_signature_covers_its_version_and_an_unreplaced_images_is_the_one_signed_before():
    key, expires = "k" * 32, 1_800_000_000
    # Pinned: what URLs were signed with before signatures named a version; the links of
    # images never replaced, handed out before, stay valid.
    assert signing.sign(key, "uploads", "0" * 24, "thumb", expires) == "fojgSIRV8NPvgt02p925WS7l1Cg"
    sig = signing.sign(key, "uploads", "0" * 24, "thumb", expires, version="0123abcd")
    assert signing.verify([key], "uploads", "0" * 24, "thumb", str(expires), sig, now=expires - 1,
                          version="0123abcd") == "ok"
    for other in ("", "4151072e"):
        assert signing.verify([key], "uploads", "0" * 24, "thumb", str(expires), sig, now=expires - 1,
                              version=other) == "invalid"
