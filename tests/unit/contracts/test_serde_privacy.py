"""A decode failure's diagnosis reaches logs and dead-letter headers: it names fields, never their values."""

from __future__ import annotations

import pydantic
import pytest

from accord.events import UsageRecorded
from accord.serde import _validation_summary

pytestmark = pytest.mark.unit


def test_validation_summary_names_fields_without_values() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        UsageRecorded.model_validate({"account_id": 12345, "unit": "jane.doe@example.com", "meter_code": ["x"]})
    summary = _validation_summary(caught.value)
    assert "meter_code" in summary and "meta: Field required" in summary
    assert "jane.doe@example.com" not in summary and "12345" not in summary
