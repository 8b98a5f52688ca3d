"""How the API answers, beside its document (avenue/apidoc/): the views shape the media core's
records into the contract's objects here (``objects``: the image object, its models and URLs).
The media package never imports it (the ``layers`` contract)."""
