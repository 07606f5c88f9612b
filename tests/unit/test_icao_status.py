"""Status words as typed errors (ISO/IEC 7816-4 §5.6) and the icao package's one error root."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

import edge_agent.icao
from edge_agent.icao import status
from edge_agent.icao.apdu import ResponseApdu
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.status import (
    DEFAULT_CHAIN,
    READ_BINARY_CHAIN,
    ApplicationNotSelected,
    AuthenticationBlocked,
    AuthenticationFailed,
    CardStatusError,
    CommandNotAllowed,
    ConditionsNotSatisfied,
    EndOfFile,
    ErrorCheckingChain,
    ExecutionError,
    NoPreciseDiagnosis,
    NotFound,
    SecureMessagingRejected,
    SecurityStatusNotSatisfied,
    SelectMfRefused,
    StatusWarning,
    UnsupportedFunction,
    WrongLe,
    WrongLength,
    WrongParameters,
)


@pytest.mark.parametrize(("sw", "cls"), [
    (0x6282, EndOfFile), (0x6281, StatusWarning), (0x6300, AuthenticationFailed),
    (0x63C2, AuthenticationFailed), (0x6581, ExecutionError), (0x6700, WrongLength),
    (0x6C10, WrongLe), (0x6882, UnsupportedFunction), (0x6D00, UnsupportedFunction),
    (0x6E00, UnsupportedFunction), (0x6A81, UnsupportedFunction),
    (0x6982, SecurityStatusNotSatisfied), (0x6983, AuthenticationBlocked),
    (0x6985, ConditionsNotSatisfied), (0x6986, ConditionsNotSatisfied),
    (0x6987, SecureMessagingRejected), (0x6988, SecureMessagingRejected),
    (0x6900, CommandNotAllowed), (0x6A82, NotFound), (0x6A88, NotFound),
    (0x6A86, WrongParameters), (0x6B00, WrongParameters), (0x6F00, NoPreciseDiagnosis),
    (0x6FAB, NoPreciseDiagnosis), (0x1234, CardStatusError),
])
def test_iso7816_4_status_words_map_to_classes(sw: int, cls: type[CardStatusError]) -> None:
    assert DEFAULT_CHAIN.classify(sw) is cls
    error = DEFAULT_CHAIN.error_for(sw, "READ BINARY at 0")
    assert type(error) is cls and error is not None
    assert error.sw == sw and isinstance(error, IcaoError)
    assert error.reason.startswith(f"READ BINARY at 0: card returned {sw:04X} (")


def test_emrtd_meanings_depend_on_the_step() -> None:
    assert DEFAULT_CHAIN.classify(0x6985, status.GET_CHALLENGE) is ApplicationNotSelected
    assert DEFAULT_CHAIN.classify(0x6985, "MSE:Set AT") is ConditionsNotSatisfied
    for sw in (0x6D00, 0x6A86, 0x6A81, 0x6E00):
        assert DEFAULT_CHAIN.classify(sw, status.SELECT_MF) is SelectMfRefused
    assert DEFAULT_CHAIN.classify(0x6A82, status.SELECT_MF) is NotFound
    assert DEFAULT_CHAIN.classify(0x6D00, "SELECT application") is UnsupportedFunction


def test_success_and_tolerated_words_raise_nothing() -> None:
    assert DEFAULT_CHAIN.error_for(0x9000) is None
    assert isinstance(DEFAULT_CHAIN.error_for(0x6282), EndOfFile)
    assert READ_BINARY_CHAIN.error_for(0x6282) is None
    assert isinstance(READ_BINARY_CHAIN.error_for(0x6281), StatusWarning)
    assert ResponseApdu(b"ab", 0x62, 0x82).check("x", READ_BINARY_CHAIN) == b"ab"
    with pytest.raises(EndOfFile):
        ResponseApdu(b"ab", 0x62, 0x82).check("x")
    status.check(0x9000)
    with pytest.raises(NotFound):
        status.check(0x6A82, "SELECT 0101")


def test_chains_compose_like_pyscards() -> None:
    class Custom(CardStatusError):
        pass

    chain = DEFAULT_CHAIN.with_checkers([lambda sw, context: Custom if sw == 0x6A82 else None])
    assert chain.classify(0x6A82) is Custom
    assert chain.classify(0x6A83) is NotFound
    assert ErrorCheckingChain(()).classify(0x6A82) is CardStatusError
    assert chain.tolerating(NotFound).error_for(0x6A83) is None


def test_wrong_le_exact_length() -> None:
    assert WrongLe(0x6C10).exact == 0x10
    assert WrongLe(0x6C00).exact == 256


@given(st.integers(0, 0xFFFF))
def test_every_status_word_maps_to_one_error_or_success(sw: int) -> None:
    error = DEFAULT_CHAIN.error_for(sw)
    if sw == 0x9000:
        assert error is None
    else:
        assert isinstance(error, CardStatusError) and error.sw == sw and error.meaning


def _icao_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(edge_agent.icao.__path__):
        module = importlib.import_module(f"edge_agent.icao.{info.name}")
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, BaseException) and obj.__module__ == module.__name__
                    and not name.startswith("_")):
                found[f"{module.__name__}.{name}"] = obj
    return list(found.values())


def test_every_icao_error_sits_under_one_root() -> None:
    classes = _icao_exception_classes()
    assert len(classes) >= 30  # the status tree plus one error per module
    strays = [c.__qualname__ for c in classes if not issubclass(c, IcaoError)]
    assert strays == []
