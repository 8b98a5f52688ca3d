"""CDN-complete image objects: explicit-format variant URLs and srcset values (issue 14)."""

from __future__ import annotations

from tests.support.client import uploaded


def test_each_variant_has_a_url_per_stored_format_that_serves_that_format(client, auth):
    headers = auth.token("editor")
    photo = uploaded(client, headers, "good/grayscale.jpg", visibility="public", expect=(201,))
    assert set(photo["variant_urls"]) == set(photo["variants"])
    for name, urls in photo["variant_urls"].items():
        assert set(urls) == {"webp", "jpg"}, name
        for ext, url in urls.items():
            served = client.get(url[url.index("/media/"):])
            assert served.status_code == 200
            assert served.headers["Content-Type"] == {"webp": "image/webp", "jpg": "image/jpeg"}[ext]
            assert "Accept" not in served.headers.get("Vary", "")  # one format per URL
    transparent = uploaded(client, headers, "good/alpha.png", visibility="public", expect=(201,))
    assert set(transparent["variant_urls"]["card"]) == {"webp", "png"}


def test_srcset_lists_the_fitted_variants_by_width_per_format(client, auth):
    photo = uploaded(client, auth.token("editor"), "good/panorama.jpg", visibility="public", expect=(201,))
    sizes = photo["variant_sizes"]
    for ext in ("webp", "jpg"):
        entries = photo["srcset"][ext].split(", ")
        assert entries == [f"{photo['variant_urls'][name][ext]} {sizes[name]['width']}w"
                           for name in ("thumb", "card", "gallery")]


def test_private_variant_urls_are_signed_too(client, auth):
    headers = auth.token("editor")
    private = uploaded(client, headers, "good/grayscale.jpg", visibility="private", expect=(201,))
    url = private["variant_urls"]["card"]["webp"]
    assert "sig=" in url and client.get(url[url.index("/media/"):]).status_code == 200
    unsigned = url[url.index("/media/"):url.index("?")]
    assert client.get(unsigned).status_code in (401, 403, 404)
