"""The forms and items of the ODM export: OIDs, data types, and English and Chinese labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Item:
    name: str
    data_type: str  # ODM DataType
    en: str
    zh: str
    value: Callable[[Any], Any] | None = None  # default: the row's attribute `name`


@dataclass(frozen=True)
class Form:
    key: str  # FORM.<key>, IG.<key>, IT.<key>.<item>
    en: str
    zh: str
    event: str  # COURSE (repeating per cycle) or COMMON
    items: tuple[Item, ...]


def _day(row) -> Any:
    return row.day


FORMS: tuple[Form, ...] = (
    Form("COURSE", "Course (ADC cycle)", "疗程（ADC周期）", "COURSE", (
        Item("cycle_number", "integer", "Cycle number", "周期序号"),
        Item("adc_drug", "text", "ADC given", "所用ADC药物"),
        Item("infusion_date", "date", "ADC infusion date", "ADC输注日期"),
        Item("start_date", "date", "Course day 1", "疗程第1天"),
        Item("starting_dose_mg", "float", "Starting dose (mg/day)", "起始剂量（毫克/天）"))),
    Form("DAY", "Course days", "疗程每日情况", "COURSE", (
        Item("day", "integer", "Course day", "疗程日", _day),
        Item("date", "date", "Local date", "当地日期"),
        Item("dose_mg", "float", "Prescribed dose (mg)", "处方剂量（毫克）"),
        Item("tablets", "integer", "Tablets prescribed", "处方片数"),
        Item("status", "text", "Day status (taken, not_taken, missed, held, …)", "当日状态",
             lambda r: str(r.status)),
        Item("draw_day", "boolean", "Blood draw day", "抽血日"))),
    Form("DOSE", "Dose log", "服药记录", "COURSE", (
        Item("course_day", "integer", "Course day", "疗程日"),
        Item("outcome", "text", "Outcome (taken, not_taken, retracted)", "结果"),
        Item("taken_at", "datetime", "Time taken (stated)", "服药时间（本人所述）"),
        Item("reason", "text", "Reason not taken", "未服原因"),
        Item("fasting", "text", "Taken on an empty stomach (yes, no, unsure; absent: not said)",
             "是否空腹服用（yes 是、no 否、unsure 不确定；缺失：未回答）"),
        Item("source", "text", "Recorded by (participant, staff, sms)", "记录来源"))),
    Form("LAB", "Blood count", "血常规", "COURSE", (
        Item("course_day", "integer", "Course day (0 = baseline)", "疗程日（0=基线）"),
        Item("drawn_on", "date", "Draw date", "采血日期"),
        Item("plt", "float", "Platelets (×10⁹/L)", "血小板（×10⁹/L）"),
        Item("hb", "float", "Haemoglobin (g/L)", "血红蛋白（g/L）"),
        Item("anc", "float", "Neutrophils (×10⁹/L)", "中性粒细胞（×10⁹/L）"))),
    Form("DECISION", "Dose decision", "剂量决定", "COURSE", (
        Item("effective_day", "integer", "Effective from course day", "生效疗程日"),
        Item("dose_mg", "float", "Prescribed dose (mg/day; 0 = hold)", "处方剂量（毫克/天；0=暂停）"),
        Item("action", "text", "Decided action", "决定的措施"),
        Item("suggested_action", "text", "Suggested action", "建议的措施"),
        Item("suggested_dose_mg", "float", "Suggested dose (mg/day)", "建议剂量（毫克/天）"),
        Item("rule", "text", "Rule applied", "适用规则"),
        Item("lab_result_id", "integer", "Blood count that prompted it", "依据的血常规"),
        Item("override_reason", "text", "Reason for departing from the suggestion", "偏离建议的原因"))),
    Form("DRUG", "Drug accountability", "药物清点", "COURSE", (
        Item("kind", "text", "Movement (dispensed, returned)", "类型（发放、回收）"),
        Item("on_date", "date", "Date", "日期"),
        Item("tablets", "integer", "Tablets", "片数"),
        Item("bottles", "integer", "Bottles", "瓶数"),
        Item("strength_mg", "float", "Tablet strength (mg)", "药片规格（毫克）"),
        Item("lot_number", "text", "Lot number", "批号"),
        Item("expiry", "date", "Expiry date", "有效期"),
        Item("warnings", "text", "Lot warnings accepted", "已确认的批次警告", lambda r: ";".join(r.warnings)))),
    Form("SYMPTOM", "Symptom report", "症状报告", "COMMON", (
        Item("noticed_at", "datetime", "Noticed at", "发现时间"),
        Item("symptoms", "text", "Symptoms and severity (JSON)", "症状及严重程度（JSON）",
             lambda r: json.dumps(r.symptoms, ensure_ascii=False, sort_keys=True)),
        Item("danger", "boolean", "Danger answer given", "报告了危险症状"),
        Item("note", "text", "Note", "备注"),
        Item("source", "text", "Recorded by (participant, staff, sms)", "记录来源"))),
    Form("AE", "Adverse event", "不良事件", "COMMON", (
        Item("status", "text", "Status (draft, recorded)", "状态（草稿、已记录）"),
        Item("term", "text", "Term (CTCAE v5.0 key, or other)", "术语（CTCAE v5.0）"),
        Item("term_text", "text", "Other term (free text)", "其他术语"),
        Item("grade", "integer", "Grade (CTCAE v5.0)", "分级（CTCAE v5.0）"),
        Item("onset_date", "date", "Onset date", "发生日期"),
        Item("end_date", "date", "End date", "结束日期"),
        Item("serious", "boolean", "Serious adverse event", "严重不良事件"),
        Item("sae_criteria", "text", "Seriousness criteria (ICH E2A)", "严重性标准（ICH E2A）",
             lambda r: ";".join(r.sae_criteria)),
        Item("relatedness", "text", "Relatedness to hetrombopag", "与海曲泊帕的相关性"),
        Item("action", "text", "Action taken with the study drug", "对研究药物采取的措施"),
        Item("outcome", "text", "Outcome", "转归"),
        Item("description", "text", "Description", "描述"),
        Item("source", "text", "Drafted from (symptom_report:id, lab_result:id)", "起草来源",
             lambda r: f"{r.source_kind}:{r.source_id}" if r.source_kind else None))),
    Form("CONMED", "Concomitant medication", "合并用药", "COMMON", (
        Item("drug", "text", "Medicine", "药物"),
        Item("dose", "text", "Dose", "剂量"),
        Item("route", "text", "Route", "给药途径"),
        Item("start_date", "date", "Start date", "开始日期"),
        Item("stop_date", "date", "Stop date", "停止日期"),
        Item("indication", "text", "Indication", "适应症"),
        Item("matched", "text", "Prohibited or restricted list match", "禁用或限用清单匹配",
             lambda r: ";".join(r.matched)),
        Item("retracted", "boolean", "Entered in error", "误录"))),
    Form("DEVIATION", "Protocol deviation", "方案偏离", "COMMON", (
        Item("status", "text", "Status (proposed, confirmed, dismissed, closed)", "状态"),
        Item("category", "text", "Category", "类别"),
        Item("description", "text", "Description", "描述"),
        Item("occurred_on", "date", "Date of the deviation", "偏离日期"),
        Item("classification", "text", "Classification (minor, major)", "分级（轻微、重大）"),
        Item("found_by", "text", "Found by (staff id, or system)", "发现者"))),
    Form("SAEREPORT", "SAE reported to the sponsor", "严重不良事件已报告申办方", "COMMON", (
        Item("adverse_event", "integer", "Adverse event (ItemGroupRepeatKey of the AE)", "对应的不良事件",
             lambda r: r.adverse_event_id),
        Item("reported_at", "datetime", "Reported at", "报告时间"),
        Item("note", "text", "How and to whom", "报告方式及对象"))),
)
EVENTS = {"COURSE": ("Course (one per ADC cycle)", "疗程（每个ADC周期一次）", "Yes", "Scheduled"),
          "COMMON": ("Throughout the study", "整个研究期间", "No", "Common")}
