"""Secrets are masked as whole values: a short or plain-word secret is masked where it stands
as a value, never cut out of a word or picked out of running text, where the mask would point
at it; a distinctive secret is masked wherever it appears."""

import pytest

from moonflower.core.redact import MASK, Redactor


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize("secret", ["the", "ab", "x", "postgres", "correcthorsebatterystaple"])
def test_a_plain_secret_is_not_picked_out_of_running_text(redactor: Redactor, secret: str) -> None:
    redactor.add(secret)
    text = f"older than {secret} server; other{secret}wise; {secret}s and {secret} again"

    assert redactor.mask(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password=ab", f"password={MASK}"),
        ("*:*:*:*:ab", f"*:*:*:*:{MASK}"),
        ('{"password": "ab"}', f'{{"password": "{MASK}"}}'),
        ("postgresql://user:ab@host/db", f"postgresql://user:{MASK}@host/db"),
        ("https://hook/ping?token=ab&v=2", f"https://hook/ping?token={MASK}&v=2"),
        ("ab", MASK),
        ("first line\nab\nlast line", f"first line\n{MASK}\nlast line"),
        ("key='ab'", f"key='{MASK}'"),
    ],
)
def test_a_short_secret_is_masked_where_it_stands_as_a_value(
    redactor: Redactor, text: str, masked: str
) -> None:
    redactor.add("ab")

    assert redactor.mask(text) == masked


def test_a_value_that_only_starts_with_the_secret_is_left_alone(redactor: Redactor) -> None:
    redactor.add("ab")

    assert redactor.mask("user=abc, host=xab") == "user=abc, host=xab"


@pytest.mark.parametrize("secret", ["s3cr3t-Value", "p@ss word", "hunter2hunter2"])
def test_a_distinctive_secret_is_masked_wherever_it_appears(
    redactor: Redactor, secret: str
) -> None:
    redactor.add(secret)

    masked = redactor.mask(f"prefix{secret}suffix and {secret}")

    assert secret not in masked
    assert masked == f"prefix{MASK}suffix and {MASK}"


def test_url_encoded_forms_are_masked_too(redactor: Redactor) -> None:
    redactor.add("p@ss word")
    redactor.add("a b")

    masked = redactor.mask("p%40ss%20word / p%40ss+word / q=a+b / q=a%20b")

    assert masked == f"{MASK} / {MASK} / q={MASK} / q={MASK}"
