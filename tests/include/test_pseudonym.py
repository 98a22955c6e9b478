"""Respondent pseudonyms against an independent SipHash-2-4 written from the paper."""

from __future__ import annotations

import hashlib
import hmac
import struct

import duckdb
import pytest
from survey_microdata import KEY, microdata_frame, pseudonym, sidecar, write_microdata

from social_leadership.surveys import load_file
from social_leadership.warehouse import ensure_schema

MASK = (1 << 64) - 1


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & MASK


def siphash24(key: bytes, message: bytes) -> int:
    """SipHash-2-4 as specified by Aumasson and Bernstein (2012), one byte string at a time."""
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D]
    v += [k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def sip_round() -> None:
        v[0] = (v[0] + v[1]) & MASK
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & MASK
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & MASK
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & MASK
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    end = len(message) - len(message) % 8
    words = [struct.unpack("<Q", message[i : i + 8])[0] for i in range(0, end, 8)]
    words.append(((len(message) & 0xFF) << 56) | int.from_bytes(message[end:], "little"))
    for word in words:
        v[3] ^= word
        sip_round()
        sip_round()
        v[0] ^= word
    v[2] ^= 0xFF
    for _ in range(4):
        sip_round()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def pandas_mix(value: int) -> int:
    """The fixed bijection pandas.util.hash_array applies after SipHash (splitmix64's)."""
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & MASK
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


def reference_pseudonym(key: bytes, source_id: str, respondent_id: str) -> int:
    survey_key = hmac.new(
        key, b"slw respondent pseudonym\x1f" + source_id.encode(), hashlib.sha256
    ).digest()[:16]
    return pandas_mix(siphash24(survey_key, respondent_id.strip().encode("utf-8")))


def test_reference_siphash_gives_the_papers_test_vectors():
    key = bytes(range(16))
    assert siphash24(key, b"") == 0x726FDB47DD0E0E31
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5


@pytest.mark.parametrize(
    "respondent_id", ["r0-1", "x" * 8, "Ünïcødé-λ-42", " padded ", "\tr1\n", "\u00a0r1\u3000"]
)
def test_pseudonym_is_siphash_under_the_survey_key(respondent_id):
    assert pseudonym(respondent_id) == reference_pseudonym(KEY, "acme_panel", respondent_id)


@pytest.mark.parametrize("respondent_id", ["", "  ", "\u00a0\t"])
def test_an_empty_id_has_no_pseudonym(respondent_id):
    assert pseudonym(respondent_id) is None


def test_pseudonyms_depend_on_key_and_survey():
    one = pseudonym("r0-1")
    assert one != pseudonym("r0-1", source_id="other_panel")
    assert one != pseudonym("r0-1", key=KEY + b"!")
    assert one == pseudonym("r0-1")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_stored_keys_are_the_reference_pseudonyms(tmp_path, suffix):
    # .csv takes the one-pass path, .parquet the staged one: both must store the same keys.
    frame = microdata_frame(seed=5, per_country=20)
    frame.loc[3, "resp"] = "  Ünïcødé-λ "
    path = write_microdata(frame, tmp_path / f"panel{suffix}", sidecar(), german=False)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(con)
    load_file(con, path, pseudonym_key=KEY)
    stored = sorted(
        row[0]
        for row in con.execute(
            "select respondent_key from raw.survey_respondent_answers"
        ).fetchall()
    )
    con.close()
    assert stored == sorted(reference_pseudonym(KEY, "acme_panel", r) for r in frame["resp"])


def test_a_warehouse_with_hex_pseudonyms_is_migrated_in_place(tmp_path):
    from social_leadership.warehouse import RAW_DDL

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    old_ddl = RAW_DDL.replace("respondent_key ubigint", "respondent_key varchar")
    con.execute(old_ddl)
    con.execute(
        "insert into raw.survey_respondent_answers values "
        "('acme_panel', 2024, 'DE', 'aa11', 1.0, [1], 'sha', now()), "
        "('acme_panel', 2024, 'DE', 'bb22', 2.0, [2], 'sha', now())"
    )
    ensure_schema(con)
    ensure_schema(con)
    rows = con.execute(
        "select typeof(respondent_key), count(distinct respondent_key), sum(weight) "
        "from raw.survey_respondent_answers group by 1"
    ).fetchall()
    con.close()
    assert rows == [("UBIGINT", 2, 3.0)]
