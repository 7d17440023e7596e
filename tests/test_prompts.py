import pytest

from core.errors import BadInput
from core.prompted.prompts import LABEL_PROMPTS, mask_filename, parse_prompts, prompt_slug, unique_slugs


@pytest.mark.parametrize("prompt,slug", [
    ("segment crack", "segment_crack"),
    ("segment joint/tape", "segment_joint_tape"),
    ("Segment Taping Area", "segment_taping_area"),
    ("../../etc/passwd", "__etc_passwd"),
    ("crack: wide?!", "crack_wide"),
    ("fissure dans le mur é", "fissure_dans_le_mur_"),
])
def test_slug_examples(prompt, slug):
    assert prompt_slug(prompt) == slug


def test_slug_never_makes_a_path():
    for prompt in ["../x", "/abs/path", "a\\b", "..", "x/../../y", "\x00nul"]:
        slug = prompt_slug(prompt)
        assert "/" not in slug and "\\" not in slug and ".." not in slug and "\x00" not in slug


def test_slug_unicode_only_prompt_gets_a_stable_distinct_name():
    a, b = prompt_slug("分割裂缝"), prompt_slug("分割接缝")
    assert a.startswith("prompt-") and b.startswith("prompt-") and a != b
    assert prompt_slug("分割裂缝") == a


def test_slug_is_capped_at_80_characters():
    assert len(prompt_slug("a" * 1000)) == 80


def test_colliding_slugs_are_numbered():
    assert unique_slugs(["segment joint/tape", "segment joint tape", "x"]) == [
        "segment_joint_tape", "segment_joint_tape-2", "x"]


def test_mask_filename_sanitises_image_id():
    assert mask_filename("../evil", "segment_crack") == "_evil__segment_crack.png"


def test_parse_prompts_labels_and_lines():
    assert parse_prompts("segment drywall seam\n\n  segment   crack \n", ["crack"]) == [
        "segment crack", "segment drywall seam"]
    assert LABEL_PROMPTS["taping_area"][0] == "segment taping area"


@pytest.mark.parametrize("bad,msg", [
    ("", "No prompt"), ("   \n \n", "No prompt"),
    ("\n".join(f"segment thing {i}" for i in range(200)), "200 prompts"),
    ("x" * 1000, "1000 characters"),
])
def test_parse_prompts_refuses(bad, msg):
    with pytest.raises(BadInput, match=msg):
        parse_prompts(bad)


def test_unknown_label():
    with pytest.raises(BadInput, match="Unknown label"):
        parse_prompts("", ["mould"])
