"""Request shapes (avenue/shapes.py): a model's faults come out as the contract's errors, the
codes its fields declare, and its schema is fit for the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field

from avenue.errors import BadRequest
from avenue.shapes import (
    QUERY,
    WHOLE,
    Absent,
    Answer,
    Flag,
    Omittable,
    Refuse,
    Shape,
    cleaned,
    parameters_of,
    schema_of,
)


def _even(value: int) -> int:
    if value % 2:
        raise BadRequest("n is even.", code="odd_number", got=value)
    return value


class Inner(Shape):
    refusal = Refuse("bad_inner", "inner is an object of n.")

    n: Annotated[int, cleaned(_even), Refuse("bad_n", "n is a number.")] = 0


class Outer(Shape):
    refusal = Refuse("bad_outer", "Unknown fields.")

    name: Annotated[str, Field(max_length=3), Refuse("too_long_name", "At most 3.", when=("string_too_long",),
                                                      details={"limit": 3}),
                    Refuse("bad_name", "name is a string.")]
    inner: Omittable[Inner] = None
    count: Annotated[int, Refuse("bad_count", "count is a whole number.")] = 0
    items: Annotated[list[Inner], Refuse("bad_items", "items is a list.")] = []


def refused(body: object) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        Outer.parse(body)
    return caught.value


def test_a_valid_body_is_parsed_and_frozen():
    parsed = Outer.parse({"name": "abc", "inner": {"n": 4}})
    assert parsed.inner == Inner(n=4) and parsed.count == 0
    with pytest.raises(ValueError):
        parsed.count = 2  # type: ignore[misc]


def test_a_field_answers_the_refusal_it_declares_for_that_error():
    too_long = refused({"name": "abcd"})
    assert (too_long.code, too_long.details["limit"]) == ("too_long_name", 3)
    assert refused({"name": 5}).code == "bad_name"
    assert refused({}).code == "bad_name"  # missing


def test_types_are_strict_json():
    assert refused({"name": "a", "count": "1"}).code == "bad_count"
    assert refused({"name": "a", "count": True}).code == "bad_count"


def test_a_domain_check_s_refusal_comes_out_as_it_was_raised():
    error = refused({"name": "a", "inner": {"n": 3}})
    assert (error.code, error.message, error.details) == ("odd_number", "n is even.", {"got": 3})


def test_a_nested_field_answers_its_own_refusal_and_a_nested_unknown_field_the_object_s():
    assert refused({"name": "a", "inner": {"n": "x"}}).code == "bad_n"
    error = refused({"name": "a", "inner": {"m": 1}})
    assert (error.code, error.details["unknown_fields"], error.details["field"]) == ("bad_inner", ["m"],
                                                                                      "inner.m")


def test_unknown_fields_are_reported_first_then_fields_in_declaration_order():
    error = refused({"count": "x", "name": 5, "zz": 1, "aa": 2})
    assert (error.code, error.details["unknown_fields"]) == ("bad_outer", ["aa", "zz"])
    assert refused({"count": "x", "name": 5}).code == "bad_name"


def test_an_omittable_field_may_be_left_out_but_not_sent_null():
    assert Outer.parse({"name": "a"}).inner is None
    assert refused({"name": "a", "inner": None}).code == "bad_inner"


def test_the_schema_names_nested_shapes_as_components_and_carries_no_titles():
    definitions: dict = {}
    schema = schema_of(Outer, definitions)
    assert schema["properties"]["inner"] == {"$ref": "#/components/schemas/Inner"}
    assert schema["properties"]["name"] == {"type": "string", "maxLength": 3}
    assert schema["additionalProperties"] is False and schema["required"] == ["name"]
    assert set(definitions) == {"Inner"} and "title" not in str(definitions)


def test_a_fault_inside_a_list_s_object_answers_the_object_s_refusal_with_its_index():
    error = refused({"name": "a", "items": [{"n": 2}, 5]})
    assert (error.code, error.details["index"], error.details["field"]) == ("bad_inner", 1, "items.1")
    assert refused({"name": "a", "items": [{}, {"n": "x"}]}).details["index"] == 1
    assert refused({"name": "a", "items": [{}, {"n": 3}]}).details == {"got": 3, "index": 1}
    assert refused({"name": "a", "items": "x"}).code == "bad_items"


class Refused(Answer):
    id: str
    pages: Absent[list[str]] = None


class Done(Answer):
    done: int
    refused: list[Refused]
    next: str | None


def test_an_answer_leaves_out_an_absent_field_and_its_schema_requires_the_others():
    done = Done(done=1, refused=[Refused(id="a"), Refused(id="b", pages=["home"])], next=None)
    refused = [{"id": "a"}, {"id": "b", "pages": ["home"]}]
    assert done.answer() == {"done": 1, "refused": refused, "next": None}
    definitions: dict = {}
    schema = schema_of(Done, definitions)
    assert schema["required"] == ["done", "refused", "next"]
    assert definitions["Refused"]["required"] == ["id"]
    assert definitions["Refused"]["properties"]["pages"] == {"type": "array", "items": {"type": "string"}}


def test_filled_is_model_construct_without_its_walk():
    """``Answer.filled`` sets the attributes ``model_construct`` sets, by hand (pydantic's
    internals): this fails when a pydantic upgrade makes the two differ."""
    values = {"done": 2, "refused": [Refused(id="c")], "next": "n"}
    filled, constructed = Done.filled(dict(values)), Done.model_construct(**values)
    assert filled.answer() == constructed.answer() == {"done": 2, "refused": [{"id": "c"}], "next": "n"}
    assert filled.__pydantic_fields_set__ == constructed.__pydantic_fields_set__
    assert vars(filled) == vars(constructed)
    assert filled.__pydantic_extra__ == constructed.__pydantic_extra__
    assert filled.__pydantic_private__ == constructed.__pydantic_private__
    assert filled == constructed


class Asked(Shape):
    """A query model as the views declare them: a flag, a bounded whole number, a keyword's alias."""

    model_config = QUERY

    force: Flag = False
    limit: Annotated[int, Field(ge=1, le=100, description="How many."), WHOLE,
                     Refuse("invalid_limit", "limit is a whole number from 1 to 100.")] = 20
    from_: Annotated[str | None, Field(alias="from", description="First day.")] = None


@pytest.mark.parametrize("sent, meant", [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True),
    ("0", False), ("no", False), ("", False), ("on", False), ("2", False), (" 1", False),
])
def test_a_flag_is_yes_for_1_true_or_yes_in_any_case_and_no_for_anything_else(sent, meant):
    assert Asked.parse({"force": sent}).force is meant
    assert Asked.parse({}).force is False


@pytest.mark.parametrize("sent, read", [("7", 7), (" 7 ", 7), ("+7", 7), ("1_0", 10), ("100", 100)])
def test_a_whole_number_in_a_query_is_read_as_int_reads_text(sent, read):
    assert Asked.parse({"limit": sent}).limit == read


@pytest.mark.parametrize("sent", ["5.0", "x", "", "0", "101", "1e1", "0x5"])
def test_a_whole_number_that_is_not_one_or_out_of_bounds_is_its_declared_refusal(sent):
    with pytest.raises(BadRequest) as caught:
        Asked.parse({"limit": sent})
    refusal = caught.value
    assert (refusal.code, refusal.message) == ("invalid_limit", "limit is a whole number from 1 to 100.")


def test_a_query_models_parameters_are_named_as_sent_with_their_bounds_and_descriptions():
    assert parameters_of(Asked) == [
        {"name": "force", "in": "query", "required": False,
         "schema": {"enum": ["1", "true", "yes", "0", "false", "no"]}},
        {"name": "limit", "in": "query", "required": False, "description": "How many.",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "from", "in": "query", "required": False, "description": "First day.",
         "schema": {"type": "string"}},
    ]
    assert Asked.parse({"from": "2026-01-01"}).from_ == "2026-01-01"
