"""SMS length in segments: GSM-7 with its escapes, UCS-2 for everything else."""

from hypothesis import given
from hypothesis import strategies as st

from clientbase.marketing.sms import SmsLength, sms_length


@given(st.text(max_size=2000))
def test_sms_segments_hold_the_whole_text(text):
    length = sms_length(text)
    assert length.segments * length.per_segment >= length.units
    assert (length.segments - 1) * length.per_segment < max(length.units, 1)
    assert length.per_segment in ({160, 70} if length.segments <= 1 else {153, 67})


def test_sms_length_counts_gsm_escapes_and_unicode():
    assert sms_length("€[]") == SmsLength(6, "GSM-7", 1, 160)
    assert sms_length("x" * 160) == SmsLength(160, "GSM-7", 1, 160)
    assert sms_length("x" * 161) == SmsLength(161, "GSM-7", 2, 153)
    assert sms_length("Привет") == SmsLength(6, "UCS-2", 1, 70)
    assert sms_length("д" * 71) == SmsLength(71, "UCS-2", 2, 67)
    assert sms_length("") == SmsLength(0, "GSM-7", 0, 160)
