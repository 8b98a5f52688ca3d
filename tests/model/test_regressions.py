"""The store model's shortest failing sequences, each kept as a plain test (issue 61).

Each is the sequence hypothesis printed when the model (tests/support/model/machine.py) broke
an invariant, replayed step by step on two workers in process, then every invariant checked.
Each failed on the commit named in its docstring and passes since the fix it names.
"""

from __future__ import annotations

from tests.support.model.harness import in_process
from tests.support.model.machine import machine


def replay(backend, db_name, *steps) -> None:
    """Each of ``steps`` (a rule called on the state) on a fresh machine over two workers,
    every invariant checked before the first and after each, as hypothesis runs them."""
    with in_process(backend, db_name) as harness:
        state = machine(harness)()
        state.every_image_serves()
        for step in steps:
            step(state)
            state.every_image_serves()
        state.teardown()


def test_a_product_photo_s_edit_serves_at_once_on_the_other_worker(backend, db_name):
    """read_your_writes, on f505b75: the edit's new URL was 404 on the worker that had served
    the photo before (its cached document did not know the version). Fixed by the route's
    read-through (0f1cba2)."""
    replay(backend, db_name,
           lambda state: state.create_product(n=0, pick=0),
           lambda state: state.edit(pick=0, rotate=90))


def test_a_product_photo_s_named_crop_serves_at_once_on_the_other_worker(backend, db_name):
    """read_your_writes, on f505b75: ``c_hero,w_320.webp`` of the new version was 404 on the
    other worker. Fixed by the route's read-through (0f1cba2)."""
    replay(backend, db_name,
           lambda state: state.create_product(n=0, pick=0),
           lambda state: state.named_crop(pick=0, width=0.5))


def test_uploading_a_replaced_version_s_bytes_again_keeps_the_version(backend, db_name):
    """versions_kept, on 0f1cba2: the upload revived the replace's trash copy as an image of
    its own and the first image stopped listing that version. Fixed by cc40548 (a copy a
    history lists is its image's)."""
    replay(backend, db_name,
           lambda state: state.upload_to_library(n=0, pick=0),
           lambda state: state.replace(n=1, pick=0),
           lambda state: state.upload_to_library(n=0, pick=0))


def test_a_trashed_image_whose_bytes_a_link_stored_again_restores_as_that_image(backend, db_name):
    """Found by ``make model`` on two gunicorn servers (the model's mistake, not the store's):
    an upload link stores a trashed image's bytes as a new image (it never revives one), and
    the trashed image's restore then answers that image (``reused``) and drops the copy, as
    docs/api.md says; the model had taken the restore to bring the trashed id back, and read
    its URL (404). The model now follows ``reused``: the trashed URLs are gone, the link's
    image serves."""
    replay(backend, db_name,
           lambda state: state.upload_to_library(n=0, pick=0),
           lambda state: state.delete(pick=0),
           lambda state: state.upload_by_link(n=0, pick=0),
           lambda state: state.restore_from_trash(pick=0))


def test_a_restored_version_s_bytes_are_its_image_s_again_for_a_replace_elsewhere(backend, db_name):
    """Found by ``make model`` (the model's mistake, not the store's), 2026-11-28 on a684894:
    a version restore makes the image's bytes that version's picture again, and a replace of
    another image with that picture is then refused (409 duplicate_image, docs/api.md); the
    model still took the image to hold the picture it was replaced with, and expected 200. The
    model now keeps each earlier version's picture beside its SHA-256 and restores it too."""
    replay(backend, db_name,
           lambda state: state.create_product(n=0, pick=0),
           lambda state: state.create_product(n=2, pick=0),
           lambda state: state.replace(n=1, pick=0),
           lambda state: state.restore_version(pick=0, which=0),
           lambda state: state.replace(n=0, pick=1))


#: Issue 75's sequence: upload X, replace it, upload X's first bytes as Y, restore X's first
#: version; X and Y then share one file (the start of the two replays below).
SHARED_BY_A_RESTORE = (
    lambda state: state.upload_to_library(n=0, pick=0),
    lambda state: state.replace(n=1, pick=0),
    lambda state: state.upload_to_library(n=0, pick=0),
    lambda state: state.restore_version(pick=0, which=0),
)


def test_a_version_whose_bytes_another_image_holds_restores_and_shares_the_file(backend, db_name):
    """Issue 75's sequence: upload X, replace it, upload X's first bytes as Y, restore X's first
    version. On b0e6ee7 the restore was refused (409 duplicate_image); it restores now, X and Y
    point at one file, and the file outlives each of them in turn (the ``held`` invariant, after
    gc and at the end)."""
    replay(backend, db_name,
           *SHARED_BY_A_RESTORE,
           lambda state: state.gc_then_fsck(),
           lambda state: state.delete(pick=1),
           lambda state: state.gc_then_fsck(),
           lambda state: state.restore_from_trash(pick=0),
           lambda state: state.replace(n=2, pick=0),
           lambda state: state.gc_then_fsck())


def test_two_images_sharing_a_file_merged_and_unmerged_keep_it(backend, db_name):
    """Issue 75: a merge moves the image it merges into the trash, and its restore undoes it;
    with the two sharing one file (a restore of bytes the other held), the file stays for the
    one kept, is copied for the trashed one, and is held by both again after the undo; merged
    again and purged from the trash, the trashed one's copy goes and the kept one's file stays."""
    replay(backend, db_name,
           *SHARED_BY_A_RESTORE,
           lambda state: state.merge(pick=0, other=0),
           lambda state: state.gc_then_fsck(),
           lambda state: state.restore_from_trash(pick=0),
           lambda state: state.gc_then_fsck(),
           lambda state: state.merge(pick=0, other=0),
           lambda state: state.purge(pick=0),
           lambda state: state.gc_then_fsck())


def test_one_picture_uploaded_public_and_private_is_two_images_on_one_file(backend, db_name):
    """Issue 75: dedupe is per owner and visibility, the bytes are the bucket's; the private
    upload of a picture already uploaded public holds that upload's file, and each delete
    lets go of it (the held invariant after each gc and at the end)."""
    replay(backend, db_name,
           lambda state: state.upload_public(n=0, pick=0),
           lambda state: state.upload_private(n=0, pick=0),
           lambda state: state.gc_then_fsck(),
           lambda state: state.delete(pick=0),
           lambda state: state.gc_then_fsck(),
           lambda state: state.replace(n=1, pick=0),
           lambda state: state.gc_then_fsck())
