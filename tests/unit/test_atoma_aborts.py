from __future__ import annotations

from atoma_operator.atoma.aborts import (
    ABORTS,
    EBASE,
    Disposition,
    classify_abort,
    code,
)

# Every code atoma-chain.md names, with the disposition the operator relies on.
DESIGN_CODES = {
    312012023: Disposition.TERMINAL,
    312012024: Disposition.ALREADY_SETTLED,
    312012025: Disposition.TERMINAL,
    312012026: Disposition.TERMINAL,
    312012027: Disposition.TERMINAL,
    312012028: Disposition.RETRYABLE,
    312012029: Disposition.TERMINAL,
    312012030: Disposition.TERMINAL,
    312012031: Disposition.TERMINAL,
    312012032: Disposition.RETRYABLE,
    312012033: Disposition.TERMINAL,
    312012041: Disposition.TERMINAL,
    312012042: Disposition.TERMINAL,
    312012053: Disposition.ALREADY_CLAIMED,
}


def test_design_codes_are_covered_with_expected_disposition() -> None:
    for c, disposition in DESIGN_CODES.items():
        assert classify_abort(c).disposition is disposition, c


def test_table_is_complete_0_to_54_without_8() -> None:
    assert set(ABORTS) == {EBASE + n for n in range(55) if n != 8}
    for c, info in ABORTS.items():
        assert info.code == c
        assert info.name.startswith("E")
        assert info.meaning


# Every code named in shared/design/atoma-chain.md (copied here: the design folder
# lives outside the repository).
DESIGN_DOC_CODES = (23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 41, 42, 53)


def test_design_doc_codes_all_in_table() -> None:
    for n in DESIGN_DOC_CODES:
        assert EBASE + n in ABORTS


def test_names_match_contract_constants() -> None:
    assert code("ENodeNotSelectedForStack") == 312012023
    assert code("EStackInSettlementDispute") == 312012024
    assert code("EStackAlreadyInDispute") == 312012046
    assert code("EStackAlreadyClaimed") == 312012053


def test_already_settled_is_neither_retryable_nor_terminal() -> None:
    info = classify_abort(312012024)
    assert not info.retryable and not info.terminal
    assert "already" in info.meaning


def test_unknown_code_is_terminal_and_names_the_code() -> None:
    info = classify_abort(999, "0xabc::other")
    assert info.terminal and info.name == "Unknown"
    assert "999" in info.meaning and "0xabc::other" in info.meaning
    assert classify_abort(312012008).name == "Unknown"


def test_dynamic_field_abort_means_not_found() -> None:
    info = classify_abort(1, "0x2::dynamic_field")
    assert info.name == "EFieldDoesNotExist" and info.terminal
    assert classify_abort(0, "0x2::dynamic_field").name == "Unknown"
    # without the module, small codes are not guessed
    assert classify_abort(1).name == "Unknown"
