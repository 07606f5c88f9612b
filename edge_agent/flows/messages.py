"""The kiosk's words, in Vietnamese and English (docs/design.md §1: obvious within a second, in
Vietnamese). One :class:`Text` per outcome; ``{placeholders}`` are filled by the flows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Text:
    vi: str
    en: str

    def format(self, **values: object) -> Text:
        return Text(self.vi.format(**values), self.en.format(**values))

    def __add__(self, other: Text) -> Text:
        return Text(f"{self.vi} {other.vi}".strip(), f"{self.en} {other.en}".strip())


EMPTY = Text("", "")

# Titles (the big line on the green or red screen).
T_ENTRY = Text("Mời vào", "Please enter")
T_EXIT = Text("Tạm biệt", "Goodbye")
T_DUPLICATE = Text("Đã ghi nhận", "Already counted")
T_FULL = Text("Đã đủ sức chứa", "Site full")
T_REJECTED = Text("Không hợp lệ", "Not accepted")
T_NOT_RECORDED = Text("Chưa ghi nhận", "Not recorded")
T_VISIT = Text("Đã tiếp nhận", "Checked in")
T_ADMITTED = Text("Đã nhập viện", "Admitted")
T_DISCHARGED = Text("Đã ra viện", "Discharged")
T_ROOM_IN = Text("Đã nhận phòng", "Checked in")
T_ROOM_OUT = Text("Đã trả phòng", "Checked out")
T_MANUAL = Text("Đã ghi nhận thủ công", "Manual entry recorded")
T_STAY_PROBLEM = Text("Không thực hiện được", "Not done")
T_INPATIENT = Text("Đang nội trú", "In-patient")

# Messages.
M_ENTRY = Text("Đã ghi nhận lượt vào ({count} người).", "Entry recorded ({count} people).")
M_EXIT = Text("Đã ghi nhận lượt ra ({count} người).", "Exit recorded ({count} people).")
M_DUPLICATE = Text("Thẻ này vừa được ghi nhận, không tính lại.",
                   "This card was just counted; it is not counted again.")
M_CAPACITY_WARN = Text("Khu di tích đã đủ sức chứa ({occupancy}/{capacity}).",
                       "The site is at capacity ({occupancy}/{capacity}).")
M_CAPACITY_FULL = Text("Khu di tích đã đủ sức chứa ({occupancy}/{capacity}), vui lòng chờ.",
                       "The site is full ({occupancy}/{capacity}); please wait.")
M_NOT_RECORDED = Text("Lỗi lưu dữ liệu, vui lòng thử lại.", "Could not save; please try again.")
T_SELECTED = Text("Đã chọn người bệnh", "Patient selected")
M_SELECTED_FOR_STAY = Text("Không ghi lượt khám. Chọn Nhập viện hoặc Ra viện trên màn hình quầy.",
                           "No visit recorded. Choose Admit or Discharge on the desk page.")
M_SELECTED_IN_PATIENT = Text("Đang nằm viện: không ghi lượt khám. Chọn Ra viện nếu ra viện.",
                             "An in-patient: no visit recorded. Choose Discharge to discharge.")
M_SELECTED_VISITED = Text("Đã tiếp nhận khám hôm nay: không ghi lượt khám thứ hai.",
                          "Already checked in today: no second visit recorded.")
M_VISIT = Text("Đã tiếp nhận khám bệnh.", "Visit checked in.")
M_ADMITTED = Text("Khoa/phòng {room}, dự kiến ra viện {departure}. Thông báo lưu trú sẽ được gửi.",
                  "Ward {room}, expected discharge {departure}. The accommodation notice will be "
                  "filed.")
M_DISCHARGED = Text("Đã ghi nhận ra viện (khoa/phòng {room}).", "Discharge recorded (ward {room}).")
M_ROOM_IN = Text("Phòng {room}, dự kiến trả phòng {departure}. Thông báo lưu trú sẽ được gửi.",
                 "Room {room}, expected departure {departure}. The accommodation notice will be "
                 "filed.")
M_ROOM_OUT = Text("Đã ghi nhận trả phòng {room}.", "Check-out of room {room} recorded.")
M_MANUAL = Text("Đã ghi nhận {count} người ({reason}).", "Recorded {count} people ({reason}).")
M_INPATIENT = Text("Đang nội trú ({room}): không ghi lượt khám. Chọn Ra viện nếu ra viện.",
                   "Admitted ({room}): no visit recorded. Choose Discharge to discharge.")
M_STAY_NOT_FOUND = Text("Không có lượt lưu trú đang mở cho thẻ này.",
                        "There is no open stay for this card.")
M_STAY_ALREADY_OPEN = Text("Người này đang có lượt lưu trú chưa kết thúc.",
                           "This person already has an open stay.")
M_STAY_OTHER_PERSON = Text("Lượt lưu trú này thuộc về người khác.",
                           "This stay belongs to someone else.")
M_QR_FLAGS = Text("Lưu ý mã QR: {flags}.", "QR note: {flags}.")
QR_FLAGS = {
    "card-expired": Text("thẻ có thể đã hết hạn", "the card may have expired"),
    "issue-date-future": Text("ngày cấp ở tương lai", "issue date in the future"),
}
M_QR_MISMATCH = Text("Mã QR vừa quét không khớp với chip ({fields}).",
                     "The QR just scanned does not match the chip ({fields}).")

INSURANCE = {
    "valid": Text("Thẻ BHYT còn hiệu lực.", "Health insurance valid."),
    "invalid": Text("BHYT không hợp lệ hoặc hết hạn.", "Health insurance not valid or expired."),
    "unknown": Text("Chưa tra cứu được BHYT, vui lòng kiểm tra lại sau.",
                    "Health insurance could not be checked; check again later."),
    "not-checked": Text("Không tra cứu BHYT.", "Health insurance not checked."),
    "pending": Text("Đang kiểm tra BHYT, kết quả sẽ được gửi sau.",
                    "Checking health insurance; the answer follows later."),
}

MANUAL_REASONS = {
    "child": Text("trẻ em", "child"),
    "paper-insurance": Text("thẻ BHYT giấy", "paper insurance card"),
    "no-card": Text("không có thẻ", "no card"),
    "other": Text("lý do khác", "other reason"),
}

_UNVERIFIED = Text("Dữ liệu chip không xác thực được.", "The chip data could not be verified.")
_NO_ACCESS = Text("Không mở được chip, hãy quét mã QR trên thẻ rồi chạm lại.",
                  "Could not open the chip; scan the card's QR code, then tap again.")
REJECTED_REASONS = {
    "qr-invalid": Text("Mã QR không phải CCCD/VNeID hoặc không đọc được.",
                       "The QR code is not a readable CCCD or VNeID code."),
    "expired-card": Text("Thẻ căn cước đã hết hạn.", "The ID card has expired."),
    "issue-date-future": Text("Ngày cấp trên mã QR ở tương lai, vui lòng kiểm tra giấy tờ.",
                              "The QR's issue date lies in the future; please check the card."),
    "vneid-unavailable": Text("Không kết nối được VNeID. Vui lòng chạm thẻ CCCD hoặc quét mã QR "
                              "thẻ CCCD trong ứng dụng VNeID.",
                              "VNeID cannot be reached. Please tap the ID card or scan the card "
                              "QR shown in the VNeID app."),
    "vneid-expired": Text("Mã VNeID đã hết hạn, vui lòng tạo mã mới trong ứng dụng.",
                          "The VNeID code has expired; please show a new one."),
    "vneid-replayed": Text("Mã VNeID đã được sử dụng, vui lòng tạo mã mới trong ứng dụng.",
                           "This VNeID code was already used; please show a new one."),
    "vneid-revoked": Text("Mã VNeID đã bị thu hồi.", "This VNeID code has been revoked."),
    "vneid-unknown": Text("Mã VNeID không hợp lệ.", "The VNeID code is not valid."),
    "bhyt-not-accepted": Text("Thẻ BHYT chỉ dùng khi khám bệnh; vui lòng dùng thẻ CCCD hoặc "
                              "VNeID.", "The insurance card is for hospital visits only; please "
                              "use the ID card or VNeID."),
    "card-lost": Text("Thẻ bị nhấc ra quá sớm, vui lòng đặt lại thẻ.",
                      "The card was removed too early; please tap again."),
    "deadline": Text("Đọc thẻ quá lâu, vui lòng thử lại.",
                     "Reading took too long; please try again."),
    "no-key-material": _NO_ACCESS,
    "access-denied": _NO_ACCESS,
    "dg-hash-mismatch": _UNVERIFIED,
    "signature-invalid": _UNVERIFIED,
    "signer-expired": _UNVERIFIED,
    "csca-untrusted": _UNVERIFIED,
    "clone-suspected": Text("Nghi ngờ thẻ giả, vui lòng kiểm tra giấy tờ.",
                            "Suspected cloned card; please check the document."),
    "inconsistent-data": _UNVERIFIED,
}
REJECTED_DEFAULT = Text("Không đọc được thẻ, vui lòng thử lại.",
                        "The card could not be read; please try again.")


def rejected_text(reason: str) -> Text:
    return REJECTED_REASONS.get(reason, REJECTED_DEFAULT)
