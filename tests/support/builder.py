"""The builder's pages as the tests write them: a page put with its blocks, an image block."""

from __future__ import annotations


def put_page(client, headers, slug, blocks, title="A page", **extra):
    return client.put(f"/api/builder/pages/{slug}", json={"title": title, "blocks": blocks, **extra},
                      headers=headers)


def media_block(media_id, **extra):
    return {"type": "image", "media_id": media_id, **extra}
