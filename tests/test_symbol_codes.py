"""A dictionary-encoded symbol column (the vendor readers' and Parquet's) is coded per distinct
value, with the verdict a text column of the same rows gets."""

from __future__ import annotations

import pyarrow as pa

from ticktape.store.parsing import symbol_codes


def test_a_dictionary_column_gives_the_codes_of_its_text() -> None:
    first = pa.DictionaryArray.from_arrays(
        pa.array([2, 0, None, 2, 1], pa.int32()), pa.array(["BBB", " AAA", "AAA "])
    )
    second = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 1, 0], pa.int32()), pa.array(["CCC", None])
    ).slice(1)
    dictionary = pa.chunked_array([first, second])
    text = pa.chunked_array([chunk.cast(pa.string()) for chunk in dictionary.chunks])
    # rows: AAA, BBB, (none), AAA, AAA, (none), (none), CCC; names in order of first appearance
    expected = (["AAA", "BBB", "", "CCC"], [0, 1, 2, 0, 0, 2, 2, 3])
    for column in (dictionary, text):
        names, codes = symbol_codes(column)
        assert (names, codes.tolist()) == expected


def test_an_empty_dictionary_column_has_no_symbols() -> None:
    names, codes = symbol_codes(pa.chunked_array([], pa.dictionary(pa.int32(), pa.string())))
    assert names == [] and codes.tolist() == []
