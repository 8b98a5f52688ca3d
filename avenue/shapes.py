"""Request shapes declared once: a JSON body's model is its check and its OpenAPI schema.

A view decorated ``@takes(Model)`` (``avenue/http.py``) receives its body validated as ``Model``
(the strict JSON of ``parse_json`` first, then the model); ``avenue/apidoc/`` writes the operation's
request schema from the same model (:func:`schema_of`), so the check and the document cannot
say two things. A refusal is the contract's JSON error, raised as the domain's
:class:`~avenue.errors.BadRequest` and answered by the one handler in ``avenue/errors.py``:

- a check the domain already has (``clean_folder``, ``clean_tags``...) runs as a validator
  (:func:`cleaned`) and its refusal comes out as it was raised: code, message and details;
- a built-in check (a type, a bound, an unknown field) takes the code and message the field
  declares with :class:`Refuse` (the first whose ``when`` matches the error), else the
  model's :attr:`Shape.refusal`; unknown fields are named in ``unknown_fields``;
- of several faults, unknown fields are reported first, then the fields in declaration
  order; cross-field rules (``model_validator``) run only once every field passed; a fault
  in a list's item names its ``index``.

A query string is declared the same way (``@takes_query``, a model configured with
:data:`QUERY`: lax, since its values are text); the document's parameters are its fields
(:func:`parameters_of`). A yes/no parameter is a :data:`Flag`, a bounded whole number an
``int`` read by :data:`WHOLE`; the model sits beside the domain function it feeds. Only
paging (``http.page_args``, one window every list shares) and the image route's ``sig``
and ``expires`` (the serving hot path) read the query by hand. An answer may be declared
too (:class:`Answer`): the code fills the model, its dump is the body, and the document's
response schema is the model's.

Why pydantic v2: its compiled core checks a body as fast as the hand-written parsers it
replaces (bench/results/shapes-2026-11-26.md; docs/performance.md); it writes JSON Schema
2020-12 itself, the dialect OpenAPI 3.1 uses, so the document needs no
plug-in; and it was installed already (schemathesis depends on it). marshmallow was not
measured: it is not installed, and its OpenAPI schemas come from a further package (apispec).
Bodies are decoded by ``parse_json`` (Avenue's strict JSON: no NaN, no 1e400, 64 levels),
not by ``model_validate_json``: the rules and their refusals stay where they are, and the
JSON parser was no faster on the bulk body. An answer's model costs about 6 µs a product
with five images (a hundred on a page: about 0.6 ms). Models are ``BaseModel``s rather than
``TypeAdapter``s of ``TypedDict``s: the adapter was 0.5 µs cheaper a product body, and the
model gives named attributes, the fields a body set (a PATCH needs them) and validators.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin

from bson import ObjectId
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

from avenue.errors import AvenueError, BadRequest
from avenue.ids import parse_object_id

T = TypeVar("T")
S = TypeVar("S", bound="Shape")
A = TypeVar("A", bound="Answer")

#: A MongoDB id as the API spells it (the document's pattern; the checks use ObjectId's own).
OBJECT_ID: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{24}$",
                             "examples": ["6b0401f8b105a9af5236cc98"]}
ObjectIdText = Annotated[str, WithJsonSchema(OBJECT_ID)]


def _object_id(value: object) -> ObjectId:
    oid = parse_object_id(value) if isinstance(value, str) else None
    if oid is None:
        raise PydanticCustomError("object_id", "not an id (24 hex digits)")
    return oid


#: An id in a body, parsed: the model holds the ObjectId, the document shows its text.
ObjectIdField = Annotated[ObjectId, PlainValidator(_object_id), WithJsonSchema(OBJECT_ID)]

#: pydantic's error type for a refusal a domain check raised (see :func:`cleaned`).
DOMAIN = "avenue_refusal"


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes the metadata of a union's members
class Refuse:
    """The refusal a field answers when a built-in check of it fails (in ``Annotated``):
    ``when`` names the pydantic error types it is for (empty: any); ``details`` go into the
    error body."""

    code: str
    message: str
    when: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def matches(self, error_type: str) -> bool:
        return not self.when or error_type in self.when


class Shape(BaseModel):
    """A request body's declared shape: strict JSON types (no ``"1"`` for 1, no ``true`` for
    1), nothing the model does not name, immutable once parsed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    #: The refusal of what no field declares one for (an unknown field, the body as a whole).
    refusal: ClassVar[Refuse] = Refuse("bad_request", "The body does not have the expected shape.")
    #: The detail naming the unknown fields of a body refused for them.
    unknown_key: ClassVar[str] = "unknown_fields"

    @classmethod
    def parse(cls: type[S], body: Any, context: Any = None) -> S:
        """``body`` (decoded JSON) as this shape, or the refusal its first fault names;
        ``context``: what its validators read beyond the body (the configuration's bounds)."""
        try:
            return cls.model_validate(body, context=context)
        except ValidationError as error:
            raise refusal(cls, error) from None


#: A query string's models: its values are text, so numbers are read from it (lax, not
#: strict); parameters a model does not name are left aside (paging's, a cache buster). A
#: parameter spelled as a Python keyword (``from``) is a field ``from_`` with ``alias="from"``.
QUERY = ConfigDict(strict=False, extra="ignore")

#: What a query's flag takes for yes (any case); any other value, or none, is no.
YES = frozenset({"1", "true", "yes"})


def _flag(value: object) -> bool:
    return isinstance(value, str) and value.lower() in YES


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # false is not one of the words the parameter is sent as


#: A query's yes/no parameter (``?force=1``): "1", "true" or "yes" in any case is yes, anything
#: else no (never a refusal); the document lists the words. Its field defaults to False.
Flag = Annotated[bool, PlainValidator(_flag),
                 WithJsonSchema({"enum": ["1", "true", "yes", "0", "false", "no"]}),
                 Field(json_schema_extra=_no_default)]


def _whole(value: object) -> object:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise PydanticCustomError("int_parsing", "not a whole number") from None
    return value


#: A query's whole number read as Python's ``int`` reads text (" 5", "+5", "1_0"; not "5.0",
#: which pydantic's lax int would take): ``Annotated[int, Field(ge=1, le=100), WHOLE]``, after
#: the bounds (so the document shows them as minimum and maximum), the refusal named by :class:`Refuse`.
WHOLE = BeforeValidator(_whole)


def _holds_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_holds_list(arg) for arg in get_args(annotation))


def query_names(model: type[Shape]) -> dict[str, str]:
    """The query parameters ``model`` reads, by the name they are sent as (a field's alias, else
    its name): the field each fills."""
    return {info.alias or name: name for name, info in model.model_fields.items()}


def repeated(model: type[Shape]) -> set[str]:
    """The query parameters of ``model`` that may repeat (``?tag=a&tag=b``): those that take a list."""
    return {sent for sent, name in query_names(model).items()
            if _holds_list(model.model_fields[name].annotation)}


class Answer(BaseModel):
    """An answer's declared shape: the code that answers fills it, :meth:`answer` is the JSON
    body, and the document's response schema is the model's (:func:`schema_of`). A field that
    may be absent is :data:`Absent` (left out when None) or :data:`IfSet` (there when the code
    set it); the others are always there."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def filled(cls: type[A], values: dict[str, Any]) -> A:
        """``cls`` holding ``values`` as they are (no validation, no defaults): an answer the code
        builds from stored data it wrote, such as the image objects of a library page. What
        ``model_construct`` does for fields named as they are, without its walk over every
        field (aliases, defaults), which cost a hundred image objects about 0.6 ms: the fields
        given are the fields set, one not given is left out of :meth:`answer`."""
        made = cls.__new__(cls)
        object.__setattr__(made, "__dict__", values)
        object.__setattr__(made, "__pydantic_fields_set__", set(values))
        object.__setattr__(made, "__pydantic_extra__", None)
        object.__setattr__(made, "__pydantic_private__", None)
        return made

    def answer(self) -> dict[str, Any]:
        """The JSON body: the fields as they are (an answer holds JSON's own types), nested
        answers as theirs, an :data:`Absent` one left out when None; a field whose key is a
        Python keyword (``from``) is named ``from_`` with ``serialization_alias="from"``. (Not
        ``model_dump``: its walk through every nested value tripled a product's cost,
        bench/shapes.py.)"""
        absent, keys, if_set = _layout(type(self))
        given = self.__pydantic_fields_set__
        fields = self.__dict__.items()  # what iterating the model yields, without its generator
        extra = self.__pydantic_extra__
        # Only a None can be left out (an IfSet field not set holds its default, None).
        body = {name: value if type(value) in _SCALARS else _plain(value)
                for name, value in (fields if not extra else [*fields, *extra.items()])
                if value is not None or not (name in absent or (name in if_set and name not in given))}
        return {keys.get(name, name): value for name, value in body.items()} if keys else body


@functools.cache
def _layout(model: type[Answer]) -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
    """``model``'s :data:`Absent` fields, the keys of its aliased ones, its :data:`IfSet` ones."""
    fields = model.model_fields.items()
    return (frozenset(name for name, info in fields if info.exclude_if is not None),
            {name: info.serialization_alias for name, info in fields if info.serialization_alias},
            frozenset(name for name, info in fields
                      if isinstance(info.json_schema_extra, dict) and IF_SET in info.json_schema_extra))


_SCALARS = frozenset({str, int, float, bool, type(None)})  # answered as they are, at once


def _answers(value: Any) -> bool:
    # A model's isinstance goes through ABCMeta: JSON's own values are told apart first.
    return type(value) not in _CONTAINERS and isinstance(value, Answer)


_CONTAINERS = frozenset({dict, list, *_SCALARS})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is dict or (kind is not list and isinstance(value, dict)):
        if value and _answers(next(iter(value.values()))):
            return {key: item.answer() for key, item in value.items()}
        return value
    if kind is list or isinstance(value, list):
        return [item.answer() for item in value] if value and _answers(value[0]) else value
    return value.answer() if isinstance(value, Answer) else value


#: A field of an answer that is left out when None: ``Absent[list[str]] = None`` (the document
#: shows only the type, not required).
Absent = Annotated[T | SkipJsonSchema[None], Field(exclude_if=lambda value: value is None)]


IF_SET = "x-if-set"  # marks an IfSet field; removed, with the field's default, when the schema is tidied

#: A field of an answer that is there when the code sets it, as it is set (None is null), and
#: left out otherwise: ``IfSet[str | None] = None``, for an answer built with
#: ``model_construct`` from stored data (the fields it is given are the fields set). The
#: document shows the type, not required, without the default.
IfSet = Annotated[T | SkipJsonSchema[None], Field(json_schema_extra={IF_SET: True})]


@dataclass(frozen=True)
class OneOf:
    """Text that is one of ``values``, the constants the code names them by (``Annotated[str,
    OneOf(OUTCOMES)]``): checked as a ``Literal`` of them is, and an enum in the document."""

    values: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))


def counts_of(keys: tuple[str, ...]) -> Any:
    """The ``Field`` of a count per key, every key always there (``Annotated[dict[str, int],
    counts_of(OUTCOMES)]``): in the document each key is a required whole number."""
    return Field(json_schema_extra={"required": list(keys),
                                    "properties": {key: {"type": "integer", "minimum": 0} for key in keys}})


def described_by(*names: str) -> WithJsonSchema:
    """A value the document describes by components written elsewhere (``names``: one of them),
    such as the image object, in an answer declared as a model."""
    return WithJsonSchema({COMPONENTS: list(names)})


COMPONENTS = "x-components"  # replaced by references when the schema is tidied (pydantic would
#                               resolve a reference to a component it does not know, and fail)


def _given(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null_given", "leave it out rather than send null")
    return value


#: A field that may be left out but is never null: ``Omittable[list[str]] = None``. The
#: document shows only the type (SkipJsonSchema hides the None that stands for "not sent").
Omittable = Annotated[T | SkipJsonSchema[None], BeforeValidator(_given)]


def cleaned(check: Callable[[Any], Any]) -> AfterValidator:
    """A validator running a domain check (which returns the cleaned value or raises an
    :class:`AvenueError`): its refusal is collected with the other faults, ordered with them,
    and answered as raised."""
    def run(value: Any) -> Any:
        try:
            return check(value)
        except AvenueError as error:
            raise refused(error) from None
    return AfterValidator(run)


def _models_in(annotation: Any) -> Iterator[type[Shape]]:
    """The shapes an annotation holds (a nested object, possibly optional or in a list)."""
    if isinstance(annotation, type) and issubclass(annotation, Shape):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def _refusals_in(annotation: Any) -> Iterator[Refuse]:
    """The refusals a field's type declares within (a named type such as an optional one)."""
    for item in getattr(annotation, "__metadata__", ()):
        if isinstance(item, Refuse):
            yield item
    for arg in get_args(annotation):
        yield from _refusals_in(arg)


def _declared(model: type[Shape], loc: tuple[int | str, ...], error_type: str) -> tuple[Refuse, str]:
    """The refusal declared nearest to ``loc`` and the path to it: the deepest declaration on
    the way, a field's (:class:`Refuse` matching ``error_type``) or, for a fault inside a
    nested object (or a list's item of one), that object's :attr:`Shape.refusal`."""
    found, current, path = model.refusal, model, list[str]()
    for at, step in enumerate(loc):
        if isinstance(step, int) or step == current.__name__:  # a list's index; a union's member
            if isinstance(step, int):
                path.append(str(step))
            continue
        info = current.model_fields.get(step) or next(
            (info for info in current.model_fields.values() if info.alias == step), None)
        path.append(step)
        if info is None:  # an unknown field
            break
        declared = [item for item in (*info.metadata, *_refusals_in(info.annotation))
                    if isinstance(item, Refuse) and item.matches(error_type)]
        nested = next(_models_in(info.annotation), None)
        found = declared[0] if declared else nested.refusal if nested else found
        if nested is None:
            break
        current = nested
        if at + 1 < len(loc):
            found = nested.refusal
    return found, ".".join(path)


def _order(model: type[Shape], error: ErrorDetails) -> tuple[int, int]:
    names = list(model.model_fields)
    first = error["loc"][0] if error["loc"] else ""
    where = names.index(first) if first in names else len(names)
    return (0 if error["type"] == "extra_forbidden" else 1, where)


def refused(error: AvenueError) -> PydanticCustomError:
    """``error`` raised inside a validator (a model's own rule between its fields): collected
    like a field's fault, with its place (a list item's index), and answered as it is."""
    return PydanticCustomError(DOMAIN, "{message}", {"message": error.message, "refusal": error})


def refusal(model: type[Shape], error: ValidationError) -> AvenueError:
    """The contract's error for ``error``, the validation of ``model`` (see the module)."""
    errors = sorted(error.errors(include_url=False), key=lambda item: _order(model, item))
    first = errors[0]
    index = next((step for step in first["loc"] if isinstance(step, int)), None)
    if first["type"] == DOMAIN:
        raised = (first.get("ctx") or {}).get("refusal")
        if isinstance(raised, AvenueError):
            if index is not None:
                raised.details.setdefault("index", index)
            return raised
    declared, where = _declared(model, first["loc"], first["type"])
    details = dict(declared.details)
    unknown = sorted(str(item["loc"][-1]) for item in errors
                     if item["type"] == "extra_forbidden" and item["loc"][:-1] == first["loc"][:-1])
    message = declared.message
    if first["type"] == "extra_forbidden":
        details.setdefault(model.unknown_key if len(first["loc"]) == 1 else "unknown_fields", unknown[:10])
        message += f" Unknown: {', '.join(unknown[:10])}."
    if where:
        details.setdefault("field", where)
    if index is not None:
        details.setdefault("index", index)  # the list's item at fault (a page's block...)
    return BadRequest(message, code=declared.code, **details)


def schema_of(model: type[BaseModel], definitions: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON Schema for an OpenAPI 3.1 document (an :class:`Answer`'s as it is
    answered): nested shapes become ``#/components/schemas/<Name>`` (added to
    ``definitions``), titles are left out."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                     mode="serialization" if issubclass(model, Answer) else "validation")
    for name, nested in schema.pop("$defs", {}).items():
        definitions[name] = _tidy(nested)
    tidy: dict[str, Any] = _tidy(schema)
    return tidy


def parameters_of(model: type[Shape]) -> list[dict[str, Any]]:
    """``model``'s fields as OpenAPI query parameters: a parameter is left out rather than null,
    and one that repeats is an array in form style, exploded (``?tag=a&tag=b``)."""
    schema = _tidy(model.model_json_schema())
    required, many = set(schema.get("required", ())), repeated(model)
    found = []
    for name, field_schema in schema["properties"].items():
        described = {key: value for key, value in field_schema.items()
                     if key != "description" and not (key == "default" and value is None)}
        members = [member for member in described.pop("anyOf", ())
                   if member.get("type") != "null" and (name not in many or member.get("type") == "array")]
        if members:
            described = {**members[0], **described} if len(members) == 1 else {"anyOf": members, **described}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": described}
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        if name in many:
            parameter |= {"style": "form", "explode": True}
        found.append(parameter)
    return found


def _tidy(schema: Any) -> Any:
    """``schema`` without pydantic's ``title`` keywords (the document names fields by their
    keys; a generated "Ids" beside ``ids`` says nothing), nor the ``default: null`` of a field
    that may be left out but not sent null (:data:`Omittable`); a value :func:`described_by`
    components is their reference (with its field's description), an :data:`IfSet` field
    without its marker and default."""
    if isinstance(schema, dict) and schema.get(IF_SET):
        schema = {key: value for key, value in schema.items() if key not in (IF_SET, "default")}
    if isinstance(schema, dict) and COMPONENTS in schema:
        refs = [{"$ref": f"#/components/schemas/{name}"} for name in schema[COMPONENTS]]
        said = {key: value for key, value in schema.items() if key == "description"}
        return {**(refs[0] if len(refs) == 1 else {"anyOf": refs}), **said}
    if isinstance(schema, dict):
        nullable = "null" in schema.get("type", ()) or any(
            isinstance(member, dict) and member.get("type") == "null" for member in schema.get("anyOf", ()))
        return {key: _tidy(value) for key, value in schema.items()
                if not (key == "title" and isinstance(value, str))
                and not (key == "default" and value is None and not nullable)}
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema
