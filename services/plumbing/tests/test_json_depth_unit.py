"""Client JSON is parsed through one function on both web surfaces; a depth bomb is bad input."""
import pytest

from wbs_plumbing.web import MAX_JSON_DEPTH, JsonTooDeep, error_response, loads_json


def test_a_report_shaped_document_parses():
    doc = '{"parties": [{"name": "Budi", "nip": "1"}], "reporter": {"identity": {"name": "x"}}}'
    assert loads_json(doc)["parties"][0]["name"] == "Budi"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
def test_nesting_past_the_limit_is_refused_whatever_the_parser_could_take(depth):
    with pytest.raises(JsonTooDeep):
        loads_json("[" * depth + "]" * depth)


def test_nesting_at_the_limit_is_accepted():
    assert loads_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None


def test_too_deep_is_answered_400_with_a_reason():
    answer = error_response(JsonTooDeep("nested too deeply"))
    assert answer.status_code == 400 and b"too_deeply_nested" in answer.get_data()
