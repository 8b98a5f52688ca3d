"""The website builder's operations: the media library and the pages."""

from __future__ import annotations

from avenue.apidoc.common import (
    ANYONE,
    FOLDER,
    LOGGED_IN_READ,
    LOGGED_IN_WRITE,
    NO_CONTENT,
    ONE_FILE,
    URL_REFUSALS,
    Schema,
    answer,
    answer_of,
    errors,
    in_path,
    list_of,
    multipart,
    op,
    page_params,
    ref,
    shaped,
)
from avenue.apidoc.images import (
    ALT_RESULTS,
    MEDIA_EDITS,
    MEDIA_FOCAL,
    MEDIA_REPLACE,
    MEDIA_WITH_VERSION,
    edit_paths,
    groups_page,
    missing_alt_list,
    version_paths,
    zip_import,
)
from avenue.builder.service import (
    MAX_BULK_IDS,
    Bulk,
    BulkResult,
    DeleteQuery,
    Folders,
    LibraryQuery,
    MediaChange,
    Merge,
    Merged,
    PageWrite,
    Tags,
)
from avenue.bulk.urls import URL_CODES, LibraryUrlImport
from avenue.media import Alt, Deliveries, Library
from avenue.shapes import OBJECT_ID, parameters_of

PATHS: dict[str, Schema] = {  # path items: operations by method, and shared parameters
    "/api/builder/import-zip": {"post": zip_import(
        "Import every image of a zip into the library, each in its folder from the archive.",
        "builder", "editor, admin")},
    "/api/builder/media": {
        "post": op("Add an image to the library (200 when the same image is already there). An SVG is "
                   "taken here only: sanitised (docs/media.md, \"SVG logos\"), served under its own CSP, "
                   "its variants and renditions drawn as rasters; 415 svg_doctype for one whose DOCTYPE "
                   "declares entities, "
                   "422 invalid_svg for one that is not well-formed, 413 svg_too_complex for one too "
                   "costly to draw (too many elements, <use>, style rules or characters of text, "
                   "a <use> bomb, nested markers, filters, masks or "
                   "patterns past the limits its message names) "
                   "or one whose draw runs past AVENUE_SVG_DRAW_SECONDS of CPU time or its memory allowance.",
                   {"201": answer(ref("Image"), "Stored."), "200": answer(ref("Image"), "Already there."),
                    **errors(409)},
                   security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                   body=multipart({"file": ONE_FILE,
                                   "alt": {"type": "string", "maxLength": Alt.MAX_LENGTH},
                                   "folder": FOLDER, "tags": {"type": "string", "description":
                                                              "Comma-separated (or repeat the field)."}},
                                  ["file"])),
        "get": op("The library, newest first.", {"200": answer(list_of("Image"), "A page of media."),
                                                 **errors(403)},
                  security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                  parameters=page_params(*parameters_of(LibraryQuery))),
    },
    "/api/builder/media/import-url": {"post": op(
        "Add the image at a URL to the library: the server fetches it through the SSRF guard and stores it "
        "as an upload with the same alt, folder and tags would be (200 when the same image is already "
        "there). Refusals: " + URL_CODES + ".",
        {"201": answer(ref("Image"), "Stored."), "200": answer(ref("Image"), "Already there."),
         **errors(409, *URL_REFUSALS)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
        body=shaped(LibraryUrlImport))},
    "/api/builder/media/bulk": {"post": op(
        f"Move, tag, untag, delete or restore many library images in one call: up to {MAX_BULK_IDS} ids, "
        f"or every image a filter of the list selects, {MAX_BULK_IDS} a call (go on with after=next). "
        "Each image is done like the single operation (delete refuses one a page uses, unless force); "
        "a refusal of one is listed and the others go on.",
        {"200": answer_of(BulkResult, "What was done and what was refused, image by image."), **errors(403)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin", body=shaped(Bulk))},
    "/api/builder/media/near-duplicates": {"get": op(
        "Groups of library images that look alike, by group; page on with after=<next>.",
        {"200": groups_page(), **errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
        parameters=[{"$ref": "#/components/parameters/per_page"},
                    {"$ref": "#/components/parameters/after"}])},
    "/api/builder/media/duplicates": {"get": op(
        "Groups of exact duplicates: the same file (kind bytes) or files that decode to the same pixels "
        "(kind pixels, e.g. re-saved with other metadata), by group; page on with after=<next>. "
        "Look-alikes are listed by near-duplicates, which leaves out a group that is exact.",
        {"200": groups_page(kind={"enum": ["bytes", "pixels"]}), **errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
        parameters=[{"$ref": "#/components/parameters/per_page"},
                    {"$ref": "#/components/parameters/after"}])},
    "/api/builder/media/merge": {"post": op(
        "Merge duplicates into one image: every page block showing one of `others` shows `keep` "
        "instead, then the others go to the trash, each naming `keep` (restoring one from the trash "
        "moves its blocks back). Every image is checked first (400 for a malformed body, the keeper "
        "among the others, an id twice or too many; 404 naming an id not in the library; 409 "
        "media_busy when one is being deleted, replaced or merged): a refusal changes nothing. A page that "
        "kept changing while re-pointed stops the merge at that image (409 page_busy, its pages put back; "
        "`merged` in the error names the images merged before it).",
        {"200": answer_of(Merged, "Merged, image by image."), **errors(403, 404, 409)},
        security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
        body=shaped(Merge))},
    "/api/builder/media/{media_id}": {
        "parameters": [in_path("media_id", OBJECT_ID)],
        "get": op("One library image, with the pages using it.",
                  {"200": answer({"allOf": [ref("Image"), {"required": ["used_in"]}]}, "The media."),
                   **errors(403, 404)},
                  security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin"),
        "patch": op("Change its alt text, folder and/or tags.",
                    {"200": answer({"allOf": [ref("Image"), {"required": ["used_in", "folder", "tags"]}]},
                                   "The media."), **errors(404, 409)},
                    security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                    body=shaped(MediaChange)),
        "delete": op("Delete it (409 while a page uses it, unless force).",
                     {"204": NO_CONTENT, **errors(404, 409)},
                     security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                     parameters=parameters_of(DeleteQuery)),
        "put": MEDIA_REPLACE,
    },
    "/api/builder/media/{media_id}/deliveries": {
        "parameters": [in_path("media_id", OBJECT_ID)],
        "get": op("One library image's answers and bytes per day over a range (the last 30 days by default, "
                  "at most 92), by file, and when it was last served: the library details panel's chart.",
                  {"200": answer_of(Deliveries.Series, "The series."),
                   **errors(400, 403, 404)},
                  security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                  parameters=parameters_of(Deliveries.DayRange))},
    "/api/builder/media/{media_id}/name": {
        "parameters": [in_path("media_id", OBJECT_ID)],
        "put": op("Give it a readable name in its public URL (null: none); the URL of any other name 301s "
                  "to it. 400 invalid_name for a name that cannot be one.",
                  {"200": answer(MEDIA_WITH_VERSION, "The media."), **errors(404, 409)},
                  security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                  body=shaped(Library.NameBody)),
    },
    "/api/builder/media/{media_id}/focal-point": {
        "parameters": [in_path("media_id", OBJECT_ID)],
        "put": MEDIA_FOCAL,
    },
    **edit_paths("/api/builder/media/{media_id}", [in_path("media_id", OBJECT_ID)], MEDIA_EDITS),
    **version_paths("/api/builder/media/{media_id}", [in_path("media_id", OBJECT_ID)], MEDIA_WITH_VERSION,
                    tag="builder", roles="editor, admin"),
    "/api/builder/folders": {"get": op(
        "Every folder of the library with its media count.",
        {"200": answer_of(Folders, "The folders."),
         **errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin")},
    "/api/builder/tags": {"get": op(
        "Every tag of the library with its media count.",
        {"200": answer_of(Tags, "The tags."),
         **errors(403)},
        security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin")},
    "/api/builder/pages/{slug}/alt-text": {
        "parameters": [in_path("slug", {"type": "string"})],
        "get": op("The library images a page (drafts too) shows without alt text (neither their own nor on "
                  "every block showing them), in block order, each with alt texts suggested from the pages "
                  "using it and their block types, its file name, folder, tags and colour.",
                  {"200": answer(missing_alt_list(ref("MissingAlt")), "A page of images."),
                   **errors(403, 404)},
                  security=LOGGED_IN_READ, tags=["builder"], roles="editor, admin",
                  parameters=page_params()),
        "post": op("Set the alt text of many of the library images the page shows, each the text given or "
                   "a suggestion accepted: on the image, as PATCH /api/builder/media/{id} does (every page "
                   "showing it). What happened to each.",
                   {"200": answer(ALT_RESULTS, "Image by image."), **errors(404)},
                   security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                   body=shaped(Alt.Changes)),
    },
    "/api/builder/pages/{slug}": {
        "parameters": [in_path("slug", {"type": "string"})],
        "get": op("A page: anyone when published, editors also drafts.",
                  {"200": answer(ref("Page"), "The page, media blocks resolved."), **errors(404)},
                  security=ANYONE, tags=["builder"]),
        "put": op("Write a page; 422 if a block names media that does not exist.",
                  {"200": answer(ref("Page"), "Written."), **errors(409, 422)},
                  security=LOGGED_IN_WRITE, tags=["builder"], roles="editor, admin",
                  body=shaped(PageWrite)),
    },
}
