"""The versioned rubric and prompt files: they validate, count 16 points, and the prompt renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from scoring_factory import compliant_call, good_answer

from callcov.kit.resources import resource_dir
from callcov.scoring import RubricInvalid, RubricNotFound, load_prompt, load_rubric
from callcov.scoring.llm_checks import DISCLOSURE_KEY, JUDGEMENT_KEYS, build_messages, build_schema
from callcov.scoring.view import build_view


class TestDefaultRubric:
    def test_validates_with_sixteen_points(self) -> None:
        rubric = load_rubric("default", "1")
        assert rubric.ref == {"id": "default", "version": "1"}
        assert [p.n for p in rubric.points] == list(range(1, 17))
        sections = [p.section for p in rubric.points]
        assert (sections.count("compliance"), sections.count("quality")) == (5, 8)
        assert (sections.count("coaching"), sections.count("summary")) == (2, 1)
        assert rubric.identity.window_s == 15 and rubric.purpose.max_agent_turns == 4
        assert {d.id for d in rubric.disclosures} >= {"call_recording_notice", "mini_miranda"}
        assert set(rubric.sensitive_data.types) == {"credit_card", "ssn", "account_number"}

    def test_latest_version_and_cache(self) -> None:
        assert load_rubric() is load_rubric("default", "v3") is load_rubric(None) is load_rubric("default", 3)
        assert load_rubric("default", 1).version == "1"  # earlier versions stay loadable, unchanged

    def test_schema_is_valid_and_accepts_a_good_answer(self) -> None:
        rubric = load_rubric()
        Draft202012Validator.check_schema(rubric.llm.json_schema)
        answer = {**good_answer(), DISCLOSURE_KEY: []}
        Draft202012Validator(rubric.llm.json_schema).validate(answer)

    def test_schema_bounds_the_answer(self) -> None:
        props = load_rubric().llm.json_schema["properties"]
        assert props["summary"]["maxLength"] <= 1000
        assert props["coaching"]["properties"]["customer_effort_score"] == {
            "type": "integer",
            "minimum": 0,
            "maximum": 5,
        }
        assert props["coaching"]["properties"]["recommendations"]["maxItems"] <= 5
        assert props["sentiment_analysis"]["properties"]["agent_sentiment"]["enum"] == [
            "positive",
            "neutral",
            "negative",
        ]

    def test_reduced_schema(self) -> None:
        schema = build_schema(load_rubric(), [DISCLOSURE_KEY], ["call_recording_notice"])
        assert schema["required"] == [DISCLOSURE_KEY] and list(schema["properties"]) == [DISCLOSURE_KEY]
        assert schema["properties"][DISCLOSURE_KEY]["items"]["properties"]["id"]["enum"] == [
            "call_recording_notice"
        ]
        Draft202012Validator.check_schema(schema)


class TestLoading:
    @pytest.mark.parametrize("rubric_id", ["../default", "nope", "Default", "a/b", ""])
    def test_unknown_or_unsafe_ids(self, rubric_id: str) -> None:
        with pytest.raises(RubricNotFound):
            load_rubric(rubric_id)

    @pytest.mark.parametrize("version", ["99", "x", "1.0", "../1"])
    def test_unknown_versions(self, version: str) -> None:
        with pytest.raises(RubricNotFound):
            load_rubric("default", version)

    def test_override_directory_and_invalid_file(self, tmp_path: Path) -> None:
        shutil.copytree(resource_dir("rubrics") / "default", tmp_path / "custom")
        for extra in ("v2.yaml", "v3.yaml"):
            (tmp_path / "custom" / extra).unlink()
        text = (tmp_path / "custom" / "v1.yaml").read_text()
        (tmp_path / "custom" / "v1.yaml").write_text(text.replace("id: default", "id: custom", 1))
        assert load_rubric("custom", directory=tmp_path).id == "custom"
        (tmp_path / "custom" / "v2.yaml").write_text(
            text.replace("id: default", "id: custom", 1)
            .replace('version: "1"', 'version: "2"', 1)
            .replace("calm down", "(unclosed")
        )
        with pytest.raises(RubricInvalid, match="unclosed"):
            load_rubric("custom", directory=tmp_path)
        with pytest.raises(RubricInvalid, match="do not match"):
            (tmp_path / "custom" / "v3.yaml").write_text(text.replace("id: default", "id: custom", 1))
            load_rubric("custom", "3", directory=tmp_path)


class TestPrompt:
    def test_renders_with_sample_data(self) -> None:
        prompt = load_prompt("scoring", "1")
        messages = prompt.render(
            direction="outbound",
            duration="30",
            tasks="- t",
            disclosures="(none)",
            schema="{}",
            transcript="[0.0-1.0] Agent: Hi",
        )
        assert [m.role for m in messages] == ["system", "user"]
        assert "$" not in messages[1].content and "[0.0-1.0] Agent: Hi" in messages[1].content
        with pytest.raises(KeyError):
            prompt.render(direction="outbound")

    def test_scorer_messages(self) -> None:
        rubric = load_rubric()
        view = build_view(compliant_call(), rubric, "outbound")
        keys = [*JUDGEMENT_KEYS, DISCLOSURE_KEY]
        messages, version = build_messages(
            view, keys, ["mini_miranda"], build_schema(rubric, keys, ["mini_miranda"])
        )
        assert version == "scoring/v1"
        user = messages[1].content
        assert "Call direction: outbound" in user and "mini_miranda: Debt-collection notice" in user
        assert "[0.5-4.3] Agent: Hello, good morning. My name is John Smith from Acme Bank." in user
        assert all(rubric.llm.tasks[k] in user for k in keys)
