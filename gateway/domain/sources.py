"""Where each pre-check comes from: the seed's row, or the national/provincial text.

The seed (shared/seed/, the provincial plan of 2023-06-13) numbers its pre-check rows
separately in each of the three lists of §八: (一) 职工正常退休, (二) 职工提前退休,
(三) 城乡居民养老保险待遇申领. A check shared by several lists (H01, J02, F01 …) has a
different row in each, so a source depends on the key AND the initiating item. Ages
and minimum years follow national law since 2025 (retirement-age.md), and the Hunan
medical minimum follows the provincial 办法; those texts are named after the seed row.
"""

from __future__ import annotations

from typing import Final

from gateway.domain.items import Item

__all__ = ["IDENTITY_SOURCE", "SEED_ROWS", "check_source"]

# Seed §八, "事项受理前置校验内容": the check key of each numbered row, in row order.
SEED_ROWS: Final[dict[Item, tuple[str, ...]]] = {
    Item.RETIRE_NORMAL: (
        *("P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "P13"),  # 1–13
        *("J01", "J02"),  # 14–15
        *("M01", "M02", "M03", "M04", "M05", "M06", "M07"),  # 16–22
        *("H01", "H02", "H03"),  # 23–25
        *("F01", "F02", "F03"),  # 26–28
    ),
    Item.RETIRE_EARLY: (
        *("P01", "E01", "E02", "E03", "P02", "P03E"),  # 1–6
        *("P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "P13"),  # 7–16
        *("J01", "J02"),  # 17–18
        *("H01", "H02", "H03"),  # 19–21
        *("F01", "F02", "F03"),  # 22–24
    ),
    Item.RESIDENT_PENSION: (
        *("R01", "R02", "R03", "R04", "R05", "R06", "R07", "R08", "R09", "R10"),  # 1–10
        "J02",  # 11
        *("H01", "H02", "H03"),  # 12–14
    ),
}
_SECTION: Final = {Item.RETIRE_NORMAL: "§八(一)1", Item.RETIRE_EARLY: "§八(二)1", Item.RESIDENT_PENSION: "§八(三)1"}

_AGE_LAW: Final = "全国人大常委会关于实施渐进式延迟法定退休年龄的决定（2025-01-01施行）及国务院办法附件1–3"
_MIN_YEARS_LAW: Final = "国务院渐进式延迟法定退休年龄办法附件4（最低缴费年限）"
# Text that replaces or completes the seed for a key (retirement-age.md; domain.md §5, §7).
_LAW: Final[dict[str, str]] = {
    "P03": _AGE_LAW,
    "P03E": _AGE_LAW,
    "P12": _MIN_YEARS_LAW,
    "P13": _MIN_YEARS_LAW,
    "E04": "实施弹性退休制度暂行办法（人社部发〔2024〕94号）；不在2023年的方案内",
    "M07": "湖南省职工基本医疗保险实施办法第二十六条（本省实际缴费年限逐年提高）",
}
IDENTITY_SOURCE: Final = "seed §五(一)（通过申请人有效身份证件进行前置校验）、§七（需调用公安部门数据）"


def check_source(key: str, initiating: Item) -> str:
    """The seed row (and the law that changed it) a check key comes from, for this initiating item.

    Raises KeyError for a key that the initiating item's list does not contain and no law names.
    """
    rows = SEED_ROWS[initiating]
    parts = []
    if key in rows:
        parts.append(f"seed {_SECTION[initiating]} 第{rows.index(key) + 1}项")
    if key in _LAW:
        parts.append(_LAW[key])
    if not parts:
        raise KeyError(f"{key} has no source for {initiating}")
    return "；".join(parts)
