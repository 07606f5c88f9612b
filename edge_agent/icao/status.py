"""Status words as typed errors, in one place (ISO/IEC 7816-4 §5.6, Tables 5 and 6).

Every status word other than 9000 that a protocol step does not expect becomes an exception of a
class that says what kind of refusal it is, so callers handle refusals by type instead of
comparing numbers. The mapping is an *error-checking chain* on the model of pyscard's
``smartcard.sw`` package (``ErrorCheckingChain`` of ``ErrorChecker`` objects, each mapping SW1 SW2
to an exception class, with filters for the exceptions a caller tolerates):

- a checker is a function ``sw -> class or None``; :func:`iso7816_4_checker` knows the
  interindustry status words; :func:`emrtd_checker` adds the meanings ICAO 9303-11 gives some of
  them during access control (6300 / 63Cx on the last authentication step: wrong password;
  6985 on GET CHALLENGE: the application is not selected);
- :class:`ErrorCheckingChain` asks its checkers in order; the first answer wins and an unknown
  word falls back to :class:`CardStatusError` itself; ``tolerated`` classes (pyscard's filters)
  are not raised;
- :func:`check` is the one place a response's status word becomes an exception.

The class tree (every class a :class:`~edge_agent.icao.errors.IcaoError`)::

    CardStatusError
    ├── StatusWarning                    62xx, 63xx
    │   ├── EndOfFile                    6282 (fewer bytes than Le before the end of the file)
    │   └── AuthenticationFailed         6300, 63Cx
    ├── ExecutionError                   64xx, 65xx, 66xx
    ├── WrongLength                      67xx
    │   └── WrongLe                      6Cxx (``exact`` holds the length the card offers)
    ├── UnsupportedFunction              68xx, 6A81, 6D00, 6E00
    │   └── SelectMfRefused              6D00 / 6A86 / 6A81 answered to SELECT MF (9303-10 §3.6)
    ├── CommandNotAllowed                69xx
    │   ├── SecurityStatusNotSatisfied   6982
    │   ├── AuthenticationBlocked        6983, 6984
    │   ├── ConditionsNotSatisfied       6985, 6986
    │   │   └── ApplicationNotSelected   6985 to GET CHALLENGE (BAC before SELECT, 9303-11 §4.3)
    │   └── SecureMessagingRejected      6987, 6988
    ├── WrongParameters                  6Axx (other), 6Bxx
    │   └── NotFound                     6A82, 6A83, 6A88
    └── NoPreciseDiagnosis               6Fxx
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_agent.icao.errors import IcaoError

SW_SUCCESS = 0x9000
SW_END_OF_FILE = 0x6282

STATUS_WORDS: dict[int, str] = {
    0x9000: "success",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before reading Le bytes",
    0x6283: "warning: selected file deactivated",
    0x6284: "warning: file control information not formatted",
    0x6300: "warning: authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}
"""Status words of ISO 7816-4 §5.6 (Tables 5 and 6) met on eMRTDs."""


def sw_meaning(sw: int) -> str:
    """Human-readable meaning of a status word, including the parameterised families."""
    if sw in STATUS_WORDS:
        return STATUS_WORDS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"success, {sw2 or 256} more bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le, exact length is {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 in (0x62, 0x63):
        return "warning"
    if sw1 in (0x64, 0x65, 0x66):
        return "execution error"
    if sw1 == 0x67:
        return "wrong length"
    if sw1 == 0x68:
        return "functions in CLA not supported"
    if sw1 == 0x69:
        return "command not allowed"
    if sw1 == 0x6A:
        return "wrong parameters"
    return "unknown status word"


class CardStatusError(IcaoError):
    """The card answered a status word other than success; carries the SW and its meaning.

    ``context`` names the command (``"SELECT application"``); ``reason`` is the whole message.
    """

    def __init__(self, sw: int, context: str = "") -> None:
        self.sw = sw
        self.meaning = sw_meaning(sw)
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}card returned {sw:04X} ({self.meaning})")


class StatusWarning(CardStatusError):
    """62xx / 63xx: a warning (ISO 7816-4 Table 5); the command did not fully succeed."""


class EndOfFile(StatusWarning):
    """6282: the end of the file came before Le bytes (READ BINARY tolerates it)."""


class AuthenticationFailed(StatusWarning):
    """6300 / 63Cx: authentication or verification failed (a wrong key or password)."""


class ExecutionError(CardStatusError):
    """64xx-66xx: the card failed to execute the command (memory, security issue)."""


class WrongLength(CardStatusError):
    """67xx: wrong length (Lc or Le, or an extended length the card does not accept)."""


class WrongLe(WrongLength):
    """6Cxx: wrong Le; ``exact`` is the number of bytes the card offers (256 for 6C00)."""

    @property
    def exact(self) -> int:
        """The length to ask for instead."""
        return (self.sw & 0xFF) or 256


class UnsupportedFunction(CardStatusError):
    """68xx, 6A81, 6D00, 6E00: the class, instruction or function is not supported."""


class SelectMfRefused(UnsupportedFunction):
    """SELECT MF refused (6D00, 6A86, 6A81, …): select EF.CardAccess directly by its FID."""


class CommandNotAllowed(CardStatusError):
    """69xx: command not allowed in the current state."""


class SecurityStatusNotSatisfied(CommandNotAllowed):
    """6982: access conditions not met (no or the wrong authentication)."""


class AuthenticationBlocked(CommandNotAllowed):
    """6983 / 6984: the authentication method is blocked or the reference data unusable."""


class ConditionsNotSatisfied(CommandNotAllowed):
    """6985 / 6986: conditions of use not satisfied (a step missing before this one)."""


class ApplicationNotSelected(ConditionsNotSatisfied):
    """6985 to GET CHALLENGE: BAC needs the eMRTD application selected first (9303-11 §4.3)."""


class SecureMessagingRejected(CommandNotAllowed):
    """6987 / 6988: secure-messaging data objects missing or incorrect; the session ended."""


class WrongParameters(CardStatusError):
    """6Axx / 6Bxx: wrong parameters (P1-P2, data field, offset)."""


class NotFound(WrongParameters):
    """6A82 / 6A83 / 6A88: file, application, record or referenced data not found."""


class NoPreciseDiagnosis(CardStatusError):
    """6Fxx: the card failed without saying why."""


StatusClass = type[CardStatusError]
Checker = Callable[[int, str], StatusClass | None]
"""An error checker: ``(sw, context) -> exception class``, or None when it has no opinion."""

_EXACT: dict[int, StatusClass] = {
    0x6282: EndOfFile,
    0x6300: AuthenticationFailed,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: AuthenticationBlocked,
    0x6984: AuthenticationBlocked,
    0x6985: ConditionsNotSatisfied,
    0x6986: ConditionsNotSatisfied,
    0x6987: SecureMessagingRejected,
    0x6988: SecureMessagingRejected,
    0x6A81: UnsupportedFunction,
    0x6A82: NotFound,
    0x6A83: NotFound,
    0x6A88: NotFound,
}

_BY_SW1: dict[int, StatusClass] = {
    0x62: StatusWarning,
    0x63: StatusWarning,
    0x64: ExecutionError,
    0x65: ExecutionError,
    0x66: ExecutionError,
    0x67: WrongLength,
    0x68: UnsupportedFunction,
    0x69: CommandNotAllowed,
    0x6A: WrongParameters,
    0x6B: WrongParameters,
    0x6C: WrongLe,
    0x6D: UnsupportedFunction,
    0x6E: UnsupportedFunction,
    0x6F: NoPreciseDiagnosis,
}


def iso7816_4_checker(sw: int, context: str = "") -> StatusClass | None:
    """The interindustry meanings (ISO 7816-4 §5.6, Tables 5 and 6)."""
    exact = _EXACT.get(sw)
    if exact is not None:
        return exact
    if sw >> 8 == 0x63 and sw & 0xF0 == 0xC0:
        return AuthenticationFailed
    return _BY_SW1.get(sw >> 8)


SELECT_MF = "SELECT MF"
GET_CHALLENGE = "GET CHALLENGE"


def emrtd_checker(sw: int, context: str = "") -> StatusClass | None:
    """Meanings ICAO 9303 gives some status words at a given step (9303-10 §3.6, 9303-11 §4)."""
    if context == GET_CHALLENGE and sw == 0x6985:
        return ApplicationNotSelected
    if context == SELECT_MF and (sw >> 8 in (0x68, 0x6D, 0x6E) or sw in (0x6A81, 0x6A86)):
        return SelectMfRefused
    return None


@dataclass(frozen=True, slots=True)
class ErrorCheckingChain:
    """Checkers asked in order; ``tolerated`` classes are not raised (pyscard's filters)."""

    checkers: tuple[Checker, ...]
    tolerated: tuple[StatusClass, ...] = ()

    def classify(self, sw: int, context: str = "") -> StatusClass:
        """The exception class for ``sw`` (:class:`CardStatusError` when no checker knows it)."""
        for checker in self.checkers:
            found = checker(sw, context)
            if found is not None:
                return found
        return CardStatusError

    def error_for(self, sw: int, context: str = "") -> CardStatusError | None:
        """The exception to raise for ``sw`` at ``context``, None for success or a tolerated SW."""
        if sw == SW_SUCCESS:
            return None
        cls = self.classify(sw, context)
        if self.tolerated and issubclass(cls, self.tolerated):
            return None
        return cls(sw, context)

    def tolerating(self, *classes: StatusClass) -> ErrorCheckingChain:
        """The same chain with more tolerated classes."""
        return ErrorCheckingChain(self.checkers, self.tolerated + tuple(classes))

    def with_checkers(self, checkers: Iterable[Checker]) -> ErrorCheckingChain:
        """A chain asking ``checkers`` before this chain's own."""
        return ErrorCheckingChain(tuple(checkers) + self.checkers, self.tolerated)


DEFAULT_CHAIN = ErrorCheckingChain((emrtd_checker, iso7816_4_checker))
"""The chain every command of this package is checked with."""

READ_BINARY_CHAIN = DEFAULT_CHAIN.tolerating(EndOfFile)
"""READ BINARY accepts 6282: the last bytes of the file came with a warning."""


def check(sw: int, context: str = "", chain: ErrorCheckingChain = DEFAULT_CHAIN) -> None:
    """Raise the typed error for ``sw`` (nothing for 9000 or a word the chain tolerates)."""
    error = chain.error_for(sw, context)
    if error is not None:
        raise error
